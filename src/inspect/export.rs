//! Writing an inspection into a folder: CSV, `.npy`, JSON, PNG, and optionally WAV and MIDI.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::tables::write_all;
use super::{InspectParams, Inspector};
use crate::atomic;
use crate::atomic::{check_destination, move_into_place};
use crate::audio::{ClipReport, OutputFormat};
use crate::error::{Error, Param, ParamError, Result};
use crate::formats::midi::{self, NoteEvent};
use crate::nmf::Progress;
use crate::separate::{Input, Scan};

/// The names [`inspect_file`] writes into its output folder (`audio` is a folder, written only
/// with [`InspectOutput::audio`]). A MIDI file inside the output folder may not take one.
pub const OUTPUT_NAMES: [&str; 12] = [
    "activations.csv",
    "templates.csv",
    "W.npy",
    "H.npy",
    "freq_hz.npy",
    "time_s.npy",
    "components.json",
    "notes.csv",
    "spectrogram.png",
    "templates.png",
    "activations.png",
    "audio",
];

/// What [`inspect_file`] writes besides the data and charts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InspectOutput {
    /// Write each component's audio as `audio/<id>.wav` in this format (default: none).
    pub audio: Option<OutputFormat>,
    /// Write the notes as a standard MIDI file here (default: none).
    pub midi: Option<PathBuf>,
    /// Replace an existing output folder and MIDI file (default no).
    pub force: bool,
}

/// What [`inspect_file`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectReport {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
    /// Number of components.
    pub components: usize,
    /// Number of notes found (in `notes.csv` and the MIDI file).
    pub notes: usize,
    /// Component WAV files whose samples were limited to full scale, with what was limited.
    pub clipped: Vec<(PathBuf, ClipReport)>,
    /// Iterations the NMF ran.
    pub iterations: usize,
    /// The cost after the last iteration.
    pub final_cost: f64,
    /// Whether the NMF stopped on its tolerance.
    pub converged: bool,
    /// The input's duration in seconds.
    pub duration_secs: f64,
}

/// Inspects the audio file `input` and writes into the folder `out_dir`:
///
/// - `activations.csv` (`time_s`, then one column per component) and `templates.csv`
///   (`freq_hz`, then one column per component), named by component id;
/// - `W.npy` `(bins, K)`, `H.npy` `(K, frames)`, and their axes `freq_hz.npy` and
///   `time_s.npy`;
/// - `components.json`: per component its id, template note, estimated fundamental, `pitch`
///   (the nearest MIDI note number, as in `notes.csv`), `note` with cents (or `unpitched`),
///   share of the energy, and when it is active;
/// - `notes.csv`: the note events (`onset_s,offset_s,pitch,note,velocity`);
/// - `spectrogram.png`, `templates.png` and `activations.png`
///   ([`CHART_WIDTH`](super::CHART_WIDTH) × [`CHART_HEIGHT`](super::CHART_HEIGHT)), titled
///   with `input`'s file name, with octave lines at every C and, on the activations, the
///   notes of `notes.csv` outlined;
/// - with `output.audio`, `audio/<id>.wav` for every component, masked as in separation;
///
/// and with `output.midi` the notes as a MIDI file at that path. Everything is written into
/// a hidden temporary folder beside `out_dir`, renamed into place when complete: a failure
/// leaves nothing behind. An existing `out_dir` (or MIDI file) is replaced only with
/// `output.force`.
///
/// The recording is read in passes, never held: a file of any length is inspected in memory
/// bounded by [`InspectParams::max_frames`], its activations kept in a file in the output
/// folder until written out.
///
/// # Errors
/// Any error of [`read_audio`](crate::audio::read_audio) or [`inspect`](fn@super::inspect); [`Error::OutputExists`],
/// [`Error::OutputIsInput`] and [`Error::Write`] for the output.
///
/// ```
/// use demix::inspect::{inspect_file, InspectOutput, InspectParams};
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("mix");
/// let report = inspect_file("samples/mix.flac".as_ref(), &out, &InspectParams::free(4),
///                           &InspectOutput::default(), &mut |_| {})?;
/// assert_eq!(report.components, 4);
/// assert!(out.join("activations.png").is_file() && out.join("components.json").is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inspect_file(
    input: &Path,
    out_dir: &Path,
    params: &InspectParams,
    output: &InspectOutput,
    progress: &mut dyn FnMut(Progress),
) -> Result<InspectReport> {
    params
        .check()?
        .inspect_file(input, out_dir, output, progress)
}

impl Inspector {
    /// [`inspect_file`] with these checked parameters.
    ///
    /// # Errors
    /// As [`inspect_file`], except for parameter errors.
    pub fn inspect_file(
        &self,
        input: &Path,
        out_dir: &Path,
        output: &InspectOutput,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<InspectReport> {
        let name: OsString = match out_dir.file_name() {
            Some(n) => n.to_os_string(),
            None => return Err(Error::OutputExists(out_dir.to_path_buf())),
        };
        check_destination(input, out_dir, output.force)?;
        let midi_plan = output
            .midi
            .as_deref()
            .map(|m| plan_midi(input, out_dir, m, output.force))
            .transpose()?;

        // A first pass decodes the whole file, checking every sample, without keeping it.
        let scan = Scan::of(input, &|_, _, _| Ok(()))?;
        let recording = Input::File(input, scan);

        let parent = match out_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Removes what was written on an error, including the MIDI file outside the folder
        // (temporary or already in place).
        let mut staging = atomic::Staging::new(&parent, &name)?;
        let tmp_dir = staging.tmp_dir.clone();
        // The activations of a long recording wait in the folder, removed once written out.
        let spill = tmp_dir.join(".activations.f32");
        let analysis = self.analyze(recording, progress, Some(spill))?;
        let notes = analysis.notes();
        let (components, iterations, final_cost, converged) = (
            analysis.components.len(),
            analysis.fitted.iterations,
            analysis
                .fitted
                .cost_history
                .last()
                .map_or(f64::NAN, |c| c.cost),
            analysis.fitted.converged,
        );
        let input_name = input
            .file_name()
            .map_or_else(|| input.to_string_lossy(), |n| n.to_string_lossy());
        let mut written = write_all(analysis, &notes, recording, &input_name, &tmp_dir, output)?;
        let mut midi_tmp = None;
        if let Some(plan) = &midi_plan {
            midi_tmp = write_midi_file(plan, &tmp_dir, &notes)?;
            staging.extra_file = midi_tmp.clone();
            written.files.push(plan.target.clone());
        }
        check_destination(input, out_dir, output.force)?;
        // The MIDI file outside the folder goes into place first: if the folder then fails to
        // move, it is removed again.
        if let (Some(tmp), Some(plan)) = (&midi_tmp, &midi_plan) {
            fs::rename(tmp, &plan.target).map_err(|e| Error::write(&plan.target, e))?;
            staging.extra_file = Some(plan.target.clone());
        }
        move_into_place(&tmp_dir, out_dir, &name)?;
        staging.finish();

        let relocate = |p: PathBuf| match p.strip_prefix(&tmp_dir) {
            Ok(rel) => out_dir.join(rel),
            Err(_) => p,
        };
        Ok(InspectReport {
            out_dir: out_dir.to_path_buf(),
            files: written.files.into_iter().map(relocate).collect(),
            components,
            notes: notes.len(),
            clipped: written
                .clipped
                .into_iter()
                .map(|(p, c)| (relocate(p), c))
                .collect(),
            iterations,
            final_cost,
            converged,
            duration_secs: scan.len as f64 / f64::from(scan.sample_rate),
        })
    }
}

/// Where the MIDI file goes: inside the output folder (then it is written with the folder),
/// or elsewhere (then beside its target under a temporary name, renamed at the end).
struct MidiPlan {
    target: PathBuf,
    inside: Option<PathBuf>,
}

fn plan_midi(input: &Path, out_dir: &Path, midi: &Path, force: bool) -> Result<MidiPlan> {
    // `out/../notes.mid` is `notes.mid`, beside the folder, whether or not `out` exists yet.
    let midi = &lexical(midi);
    if let (Ok(a), Ok(b)) = (input.canonicalize(), midi.canonicalize())
        && a == b
    {
        return Err(Error::OutputIsInput(midi.to_path_buf()));
    }
    let inside = place_in_folder(out_dir, midi)?;
    if inside.as_ref().is_some_and(|r| r.as_os_str().is_empty()) {
        return Err(Error::OutputExists(midi.to_path_buf()));
    }
    let first = inside
        .as_ref()
        .and_then(|r| r.components().next())
        .map(|c| c.as_os_str().to_owned());
    if first.is_some_and(|f| OUTPUT_NAMES.iter().any(|n| f == *n)) {
        return Err(Error::Param(ParamError::Conflict {
            param: Param::Midi,
            message: "the MIDI file would replace one of the files inspect writes; choose another name",
        }));
    }
    if inside.is_none() && !force && fs::symlink_metadata(midi).is_ok() {
        return Err(Error::OutputExists(midi.to_path_buf()));
    }
    Ok(MidiPlan {
        target: midi.to_path_buf(),
        inside,
    })
}

/// Where the [`lexical`] path `path` lies inside the folder `out_dir`: the relative path, or
/// `None` outside it.
fn place_in_folder(out_dir: &Path, path: &Path) -> Result<Option<PathBuf>> {
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| Error::write(p, e));
    let (path, folder) = (absolute(path)?, absolute(&lexical(out_dir))?);
    Ok(path.strip_prefix(folder).ok().map(Path::to_path_buf))
}

/// `path` with `.` dropped and each `..` taking away the name before it, as written (links are
/// not followed: the folder named may not exist yet).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Where `inspect_file` writes the MIDI file `midi` when that lies outside the output folder
/// `out_dir` (then it is no file of the folder): the path as written there, `.` and `..`
/// resolved as [`InspectReport::files`] lists it. `None` when it goes inside the folder.
///
/// # Errors
/// [`Error::Write`] if the current directory, needed to compare the paths, is unknown.
pub fn midi_apart(out_dir: &Path, midi: &Path) -> Result<Option<PathBuf>> {
    let midi = lexical(midi);
    Ok(place_in_folder(out_dir, &midi)?.is_none().then_some(midi))
}

/// Writes the MIDI file: into the temporary folder, or beside its target. Returns the
/// temporary file to rename into place, if any.
fn write_midi_file(
    plan: &MidiPlan,
    tmp_dir: &Path,
    notes: &[NoteEvent],
) -> Result<Option<PathBuf>> {
    let path = match &plan.inside {
        Some(rel) => tmp_dir.join(rel),
        None => atomic::temp_name(&plan.target),
    };
    let result = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| {
            let mut file = io::BufWriter::new(fs::File::create(&path)?);
            midi::write_midi(&mut file, notes)?;
            file.flush()
        });
    match result {
        Ok(()) => Ok(plan.inside.is_none().then_some(path)),
        Err(e) => {
            if plan.inside.is_none() {
                let _ = fs::remove_file(&path);
            }
            Err(Error::write(&plan.target, e))
        }
    }
}
