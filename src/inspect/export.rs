//! Writing an inspection into a folder: CSV, `.npy`, JSON, PNG, and optionally WAV and MIDI.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};

use super::notes::note_name;
use super::{InspectParams, Inspection, Inspector, charts};
use crate::atomic;
use crate::atomic::{check_destination, move_into_place};
use crate::audio::{self, Audio, ClipReport, OutputFormat};
use crate::error::{Error, Param, ParamError, Result};
use crate::formats::midi::{self, NoteEvent};
use crate::formats::npy::{NpyArray, write_npy};
use crate::formats::plot::encode_png;
use crate::nmf::Progress;
use crate::separate::{Input, write_stems};

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
/// # Errors
/// Any error of [`audio::read_audio`] or [`inspect`](fn@super::inspect); [`Error::OutputExists`],
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

        let audio = audio::read_audio(input)?;

        let parent = match out_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Removes what was written on an error, including the MIDI file outside the folder
        // (temporary or already in place).
        let mut staging = atomic::Staging::new(&parent, &name)?;
        let tmp_dir = staging.tmp_dir.clone();
        let inspection = self.inspect(&audio, progress)?;
        let notes = inspection.notes();
        let input_name = input
            .file_name()
            .map_or_else(|| input.to_string_lossy(), |n| n.to_string_lossy());
        let mut written = write_all(&inspection, &notes, &audio, &input_name, &tmp_dir, output)?;
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
            components: inspection.components.len(),
            notes: notes.len(),
            clipped: written
                .clipped
                .into_iter()
                .map(|(p, c)| (relocate(p), c))
                .collect(),
            iterations: inspection.nmf.iterations,
            final_cost: inspection.nmf.final_cost(),
            converged: inspection.nmf.converged,
            duration_secs: audio.duration_secs(),
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

/// Files written and clipping reports.
struct Written {
    files: Vec<PathBuf>,
    clipped: Vec<(PathBuf, ClipReport)>,
}

/// Creates `path` (inside the temporary folder, so no rename is needed) with buffered
/// writes, naming `path` in any error.
fn write_file(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let result = (|| {
        let mut file = io::BufWriter::new(fs::File::create(path)?);
        write(&mut file)?;
        file.flush()
    })();
    result.map_err(|e| Error::write(path, e))
}

fn write_all(
    inspection: &Inspection,
    notes: &[NoteEvent],
    audio: &Audio,
    input_name: &str,
    dir: &Path,
    output: &InspectOutput,
) -> Result<Written> {
    let mut files = Vec::new();
    let mut add = |name: &str, write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>| {
        let path = dir.join(name);
        write_file(&path, |w| write(w))?;
        files.push(path);
        Ok::<(), Error>(())
    };
    let ids: Vec<&str> = inspection
        .components
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let (w, h) = (&inspection.nmf.w, &inspection.nmf.h);
    let (times, freqs) = (inspection.time_s(), inspection.freq_hz());

    add("activations.csv", &mut |f| {
        write_csv(f, "time_s", &ids, &times, |t, c| h[[c, t]])
    })?;
    add("templates.csv", &mut |f| {
        write_csv(f, "freq_hz", &ids, &freqs, |k, c| w[[k, c]])
    })?;
    let npy = |a: NpyArray| move |f: &mut dyn Write| write_npy_io(f, &a);
    add("W.npy", &mut npy(NpyArray::F32(w.clone().into_dyn())))?;
    add("H.npy", &mut npy(NpyArray::F32(h.clone().into_dyn())))?;
    add(
        "freq_hz.npy",
        &mut npy(NpyArray::F64(
            ArrayD::from_shape_vec(IxDyn(&[freqs.len()]), freqs.clone()).expect("1-d"),
        )),
    )?;
    add(
        "time_s.npy",
        &mut npy(NpyArray::F64(
            ArrayD::from_shape_vec(IxDyn(&[times.len()]), times.clone()).expect("1-d"),
        )),
    )?;
    add("components.json", &mut |f| {
        f.write_all(components_json(inspection).as_bytes())
    })?;
    add("notes.csv", &mut |f| write_notes_csv(f, notes))?;
    for (name, chart) in [
        (
            "spectrogram.png",
            charts::spectrogram_chart as fn(&Inspection, &str) -> _,
        ),
        ("templates.png", charts::templates_chart),
        ("activations.png", charts::activations_chart),
    ] {
        let image = chart(inspection, input_name);
        add(name, &mut |mut f| encode_png(&mut f, &image))?;
    }

    let mut clipped = Vec::new();
    if let Some(format) = output.audio {
        let audio_dir = dir.join("audio");
        fs::create_dir(&audio_dir).map_err(|e| Error::write(&audio_dir, e))?;
        let separation = inspection.separation();
        let output = crate::separate::OutputOptions {
            format,
            ..Default::default()
        };
        let clips = write_stems(&separation, Input::Memory(audio), &audio_dir, &output)?;
        for (source, clip) in separation.sources.iter().zip(clips) {
            let path = audio_dir.join(format!("{}.wav", source.name));
            if clip.clipped > 0 {
                clipped.push((path.clone(), clip));
            }
            files.push(path);
        }
    }
    Ok(Written { files, clipped })
}

fn write_npy_io(f: &mut dyn Write, a: &NpyArray) -> io::Result<()> {
    let mut f = f;
    write_npy(&mut f, a).map_err(io::Error::from)
}

/// A CSV table: a header `first,<ids>`, then one row per axis value. Numbers are written
/// in their shortest form that reads back to the same value.
fn write_csv(
    f: &mut dyn Write,
    first: &str,
    ids: &[&str],
    axis: &[f64],
    value: impl Fn(usize, usize) -> f32,
) -> io::Result<()> {
    let mut line = String::from(first);
    for id in ids {
        line.push(',');
        line.push_str(id);
    }
    line.push('\n');
    f.write_all(line.as_bytes())?;
    for (i, x) in axis.iter().enumerate() {
        line.clear();
        write!(line, "{x}").expect("writing to a String");
        for c in 0..ids.len() {
            write!(line, ",{}", value(i, c)).expect("writing to a String");
        }
        line.push('\n');
        f.write_all(line.as_bytes())?;
    }
    Ok(())
}

fn write_notes_csv(f: &mut dyn Write, notes: &[NoteEvent]) -> io::Result<()> {
    writeln!(f, "onset_s,offset_s,pitch,note,velocity")?;
    for n in notes {
        writeln!(
            f,
            "{},{},{},{},{}",
            n.onset_s,
            n.offset_s,
            n.pitch,
            note_name(n.pitch.into()),
            n.velocity
        )?;
    }
    Ok(())
}

/// `components.json`: the analysis settings and one object per component.
fn components_json(inspection: &Inspection) -> String {
    let mut s = String::new();
    let stft = inspection.stft();
    let _ = write!(
        s,
        "{{\n  \"sample_rate\": {},\n  \"n_fft\": {},\n  \"hop\": {},\n  \"frames\": {},\n  \
         \"note_templates\": {},\n  \"components\": [",
        inspection.sample_rate,
        stft.n_fft(),
        stft.hop(),
        inspection.nmf.h.ncols(),
        inspection.has_note_templates()
    );
    for (i, c) in inspection.components.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let template_note = c
            .note
            .map_or_else(|| "null".to_string(), |m| json_string(&note_name(m.into())));
        let (f0, midi, cents) = match c.pitch {
            Some(p) => {
                let (m, cents) = super::notes::nearest_note(p.f0_hz);
                (format!("{:.3}", p.f0_hz), m.to_string(), cents.to_string())
            }
            None => ("null".into(), "null".into(), "null".into()),
        };
        let active: Vec<String> = c
            .active
            .iter()
            .map(|a| format!("[{:.4}, {:.4}]", a.start_s, a.end_s))
            .collect();
        let _ = write!(
            s,
            "{sep}\n    {{\"index\": {i}, \"id\": {}, \"template_note\": {template_note}, \
             \"f0_hz\": {f0}, \"pitch\": {midi}, \"note\": {}, \"cents\": {cents}, \
             \"harmonic_fraction\": {}, \"energy_share\": {:.6}, \"active_s\": [{}]}}",
            json_string(&c.id),
            json_string(&c.pitch_label()),
            c.pitch
                .map_or_else(|| "null".into(), |p| format!("{:.3}", p.harmonic_fraction)),
            c.energy_share,
            active.join(", ")
        );
    }
    s.push_str("\n  ]\n}\n");
    s
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}
