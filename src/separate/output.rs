//! Output: the stems of one input file written into its track folder, whole or not at all.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::render::Separation;
use super::{SeparateParams, Separator};
use crate::atomic::{self, check_destination, move_into_place};
use crate::audio::{self, Audio, ClipReport, OutputFormat, WavStreamWriter};
use crate::error::Result;
use crate::nmf::Progress;

/// How stems are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputOptions {
    /// Sample format of the WAV files (default 16-bit).
    pub format: OutputFormat,
    /// Replace an existing track folder (default no).
    pub force: bool,
}

/// What [`separate_file`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackReport {
    /// The folder holding the stems.
    pub track_dir: PathBuf,
    /// Each stem written, in source order.
    pub stems: Vec<StemReport>,
    /// Iterations the NMF ran.
    pub iterations: usize,
    /// The final NMF cost.
    pub final_cost: f64,
    /// Whether the NMF stopped on the tolerance.
    pub converged: bool,
    /// The input's duration in seconds.
    pub duration_secs: f64,
    /// Components fitted.
    pub components: usize,
    /// The K a rank selection chose (`-k auto`), if one ran.
    pub chosen_k: Option<usize>,
}

/// One written stem.
#[derive(Debug, Clone, PartialEq)]
pub struct StemReport {
    /// Source name.
    pub name: String,
    /// The WAV file.
    pub path: PathBuf,
    /// Samples limited to full scale in integer output.
    pub clip: ClipReport,
}

/// Separates the audio file `input` into `out_dir/<input file stem>/<source>.wav`.
///
/// The stems are written into a temporary folder next to the track folder, which is renamed
/// into place when every file is complete: a failure leaves no partial output. An existing
/// track folder is replaced only with `output.force`, and never when the input lies inside it.
///
/// # Errors
/// Any error of [`audio::read_audio`] or [`analyze`](super::analyze); [`Error::OutputExists`](crate::Error::OutputExists),
/// [`Error::OutputIsInput`](crate::Error::OutputIsInput) and [`Error::Write`](crate::Error::Write) for the output.
///
/// ```
/// use demix::nmf::NmfParams;
/// use demix::separate::{separate_file, OutputOptions, SeparateParams};
/// let out = tempfile::tempdir()?;
/// let params = SeparateParams { nmf: NmfParams::new(2), ..Default::default() };
/// let report = separate_file("samples/mix.flac".as_ref(), out.path(), &params,
///                            &OutputOptions::default(), &mut |_| {})?;
/// assert_eq!(report.track_dir, out.path().join("mix"));
/// assert!(report.stems.iter().all(|stem| stem.path.is_file()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn separate_file(
    input: &Path,
    out_dir: &Path,
    params: &SeparateParams,
    output: &OutputOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrackReport> {
    params
        .check()?
        .separate_file(input, out_dir, output, progress)
}

impl Separator {
    /// [`separate_file`] with these checked parameters.
    ///
    /// # Errors
    /// As [`separate_file`], except for parameter errors.
    pub fn separate_file(
        &self,
        input: &Path,
        out_dir: &Path,
        output: &OutputOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<TrackReport> {
        let stem: OsString = input
            .file_stem()
            .map_or_else(|| "track".into(), |s| s.to_os_string());
        let track_dir = out_dir.join(&stem);
        check_destination(input, &track_dir, output.force)?;

        let audio = audio::read_audio(input)?;

        // The output folders are made before the long computation, so that an unwritable
        // destination fails at once; they are removed again if anything fails.
        let staging = atomic::Staging::new(out_dir, &stem)?;
        let separation = self.analyze(&audio, progress)?;
        let clips = write_stems(&separation, &audio, &staging.tmp_dir, output.format)?;
        check_destination(input, &track_dir, output.force)?;
        move_into_place(&staging.tmp_dir, &track_dir, &stem)?;
        staging.finish();
        Ok(TrackReport {
            stems: separation
                .sources
                .iter()
                .zip(clips)
                .map(|(source, clip)| StemReport {
                    name: source.name.clone(),
                    path: track_dir.join(format!("{}.wav", source.name)),
                    clip,
                })
                .collect(),
            track_dir,
            components: separation.nmf.w.ncols(),
            chosen_k: separation.rank.as_ref().map(|r| r.chosen),
            iterations: separation.nmf.iterations,
            final_cost: separation.nmf.final_cost(),
            converged: separation.nmf.converged,
            duration_secs: audio.duration_secs(),
        })
    }
}

/// Writes one WAV file per source of `separation` into `dir` (`<source name>.wav`), rendered
/// block by block; returns what each had to clip.
pub(crate) fn write_stems(
    separation: &Separation,
    audio: &Audio,
    dir: &Path,
    format: OutputFormat,
) -> Result<Vec<ClipReport>> {
    let mut writers = separation
        .sources
        .iter()
        .map(|s| {
            WavStreamWriter::create(
                dir.join(format!("{}.wav", s.name)),
                audio.num_channels(),
                audio.sample_rate,
                format,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    separation.render(audio, &mut writers)?;
    writers.into_iter().map(WavStreamWriter::finish).collect()
}
