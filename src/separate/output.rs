//! Output: the stems of one input file written into its track folder, whole or not at all.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::render::Separation;
use super::stream::{Input, Scan};
use super::{SeparateParams, Separator};
use crate::atomic::{self, check_destination, move_into_place};
use crate::audio::{
    ClipReport, Container, OutputFormat, StemWriter, WAV_MAX_BYTES, check_flac, wav_size,
};
use crate::error::{Error, Result};
use crate::nmf::Progress;

/// How stems are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputOptions {
    /// Sample format of the files (default 16-bit).
    pub format: OutputFormat,
    /// WAV or FLAC files (default WAV).
    pub container: Container,
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
    /// The NMF components fitted (learned templates included).
    pub components: usize,
    /// Iterations the NMF ran.
    pub iterations: usize,
    /// The final NMF cost.
    pub final_cost: f64,
    /// Whether the NMF stopped on the tolerance.
    pub converged: bool,
    /// The input's duration in seconds.
    pub duration_secs: f64,
    /// The K a rank selection chose (`-k auto`), if one ran.
    pub chosen_k: Option<usize>,
}

/// One written stem.
#[derive(Debug, Clone, PartialEq)]
pub struct StemReport {
    /// Source name.
    pub name: String,
    /// The WAV or FLAC file.
    pub path: PathBuf,
    /// Samples limited to full scale in integer output.
    pub clip: ClipReport,
}

/// Separates the audio file `input` into `out_dir/<input file stem>/<source>.wav` (or `.flac`).
///
/// A stem that would pass the 4 GiB limit of a WAV file is refused before the work starts
/// ([`Error::WavTooLarge`](crate::Error::WavTooLarge)), and so is a layout FLAC cannot hold
/// ([`Error::OutputFormat`](crate::Error::OutputFormat)).
///
/// The stems are written into a temporary folder next to the track folder, which is renamed
/// into place when every file is complete: a failure leaves no partial output. An existing
/// track folder is replaced only with `output.force`, and never when the input lies inside it.
///
/// # Errors
/// Any error of [`crate::audio::read_audio`] or [`analyze`](super::analyze); [`Error::OutputExists`](crate::Error::OutputExists),
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

        // A first pass decodes the whole file, checking every sample, without keeping it.
        let scan = Scan::of(input, &|frames, channels, rate| {
            check_output(output, frames, channels, rate)
        })?;
        let recording = Input::File(input, scan);

        // The output folders are made before the long computation, so that an unwritable
        // destination fails at once; they are removed again if anything fails.
        let staging = atomic::Staging::new(out_dir, &stem)?;
        let spill = staging.tmp_dir.join(".activations.f32");
        let mut separation = self.analyze_input(recording, progress, Some(spill))?;
        let clips = write_stems(&separation, recording, &staging.tmp_dir, output)?;
        // The activations' file is removed before the folder becomes the track folder.
        separation.spill = None;
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
                    path: track_dir.join(format!(
                        "{}.{}",
                        source.name,
                        output.container.extension()
                    )),
                    clip,
                })
                .collect(),
            track_dir,
            components: separation.nmf.w.ncols(),
            chosen_k: separation.rank.as_ref().map(|r| r.chosen),
            iterations: separation.nmf.iterations,
            final_cost: separation.nmf.final_cost(),
            converged: separation.nmf.converged,
            duration_secs: scan.len as f64 / f64::from(scan.sample_rate),
        })
    }
}

/// Whether stems of `frames` frames of `channels` channels at `sample_rate` can be written as
/// `output` asks: a WAV file holds at most 4 GiB, FLAC at most 8 channels of integers.
///
/// # Errors
/// [`Error::WavTooLarge`] and [`Error::OutputFormat`].
pub fn check_output(
    output: &OutputOptions,
    frames: u64,
    channels: usize,
    sample_rate: u32,
) -> Result<()> {
    match output.container {
        Container::Flac => check_flac(channels, sample_rate, output.format),
        Container::Wav => {
            let bytes = wav_size(frames, channels, output.format);
            if bytes > WAV_MAX_BYTES {
                return Err(Error::WavTooLarge { bytes });
            }
            Ok(())
        }
    }
}

/// Writes one file per source of `separation` into `dir` (`<source name>.wav` or `.flac`),
/// rendered block by block; returns what each had to clip.
pub(crate) fn write_stems(
    separation: &Separation,
    recording: Input<'_>,
    dir: &Path,
    output: &OutputOptions,
) -> Result<Vec<ClipReport>> {
    let mut writers = separation
        .sources
        .iter()
        .map(|s| {
            StemWriter::create(
                dir.join(format!("{}.{}", s.name, output.container.extension())),
                recording.num_channels(),
                recording.sample_rate(),
                output.format,
                output.container,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    separation.render_input(recording, &mut writers)?;
    writers.into_iter().map(StemWriter::finish).collect()
}
