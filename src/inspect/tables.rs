//! The files of an inspection, written as they are computed: the tables row by row and the
//! arrays after their headers, from passes over the activations (which may be in a file),
//! and the charts from their pixel columns.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::notes::note_name;
use super::overview::{ColumnMax, reorder};
use super::{Analysis, InspectOutput, Overview, charts};
use crate::audio::ClipReport;
use crate::error::{Error, Result};
use crate::formats::midi::NoteEvent;
use crate::formats::npy::{NpyArray, write_npy, write_npy_header};
use crate::formats::plot::encode_png;
use crate::nmf::Nmf;
use crate::separate::{Input, Separation, write_stems};
use crate::sources::Source;

/// Frames of activations read at a time.
const CHUNK: usize = 4096;

/// Files written and clipping reports.
pub(super) struct Written {
    pub(super) files: Vec<PathBuf>,
    pub(super) clipped: Vec<(PathBuf, ClipReport)>,
}

/// Why writing one file failed: the file itself, or reading what it is made from.
enum Failure {
    Io(io::Error),
    Other(Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

/// Creates `path` (inside the temporary folder, so no rename is needed) and writes it,
/// naming `path` in any error of the file.
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut fs::File) -> std::result::Result<(), Failure>,
) -> Result<()> {
    let result = fs::File::create(path)
        .map_err(Failure::from)
        .and_then(|mut file| write(&mut file));
    match result {
        Ok(()) => Ok(()),
        Err(Failure::Io(e)) => Err(Error::write(path, e)),
        Err(Failure::Other(e)) => Err(e),
    }
}

/// [`write_file`] through a buffer, flushed at the end.
fn write_buffered(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::result::Result<(), Failure>,
) -> Result<()> {
    write_file(path, |file| {
        let mut buffered = io::BufWriter::with_capacity(1 << 16, file);
        write(&mut buffered)?;
        buffered.flush()?;
        Ok(())
    })
}

/// Writes every file of `analysis` into `dir`, and with `output.audio` the audio of every
/// component of `recording` (reading the activations a last time, then removing their file).
pub(super) fn write_all(
    analysis: Analysis,
    notes: &[NoteEvent],
    recording: Input<'_>,
    input_name: &str,
    dir: &Path,
    output: &InspectOutput,
) -> Result<Written> {
    let mut files = Vec::new();
    let mut add = |name: &str, write: &mut dyn FnMut(&Path) -> Result<()>| {
        let path = dir.join(name);
        write(&path)?;
        files.push(path);
        Ok::<(), Error>(())
    };
    let ids: Vec<&str> = analysis.components.iter().map(|c| c.id.as_str()).collect();
    let w = analysis.templates();
    let frames = analysis.fitted.frames;

    add("activations.csv", &mut |path| {
        write_buffered(path, |f| write_activations_csv(f, &analysis, &ids))
    })?;
    add("templates.csv", &mut |path| {
        write_buffered(path, |f| {
            write_header(f, "freq_hz", &ids)?;
            let mut line = String::new();
            for (k, row) in w.rows().into_iter().enumerate() {
                write_row(f, &mut line, analysis.freq_of(k), row.iter().copied())?;
            }
            Ok(())
        })
    })?;
    add("W.npy", &mut |path| {
        let array = NpyArray::F32(w.clone().into_dyn());
        write_buffered(path, |mut f| {
            write_npy(&mut f, &array).map_err(io::Error::from)?;
            Ok(())
        })
    })?;
    add("H.npy", &mut |path| {
        write_file(path, |f| write_h_npy(f, &analysis))
    })?;
    add("freq_hz.npy", &mut |path| {
        let bins = analysis.stft.n_bins();
        write_buffered(path, |f| {
            write_axis_npy(f, (0..bins).map(|k| analysis.freq_of(k)), bins)
        })
    })?;
    add("time_s.npy", &mut |path| {
        write_buffered(path, |f| {
            write_axis_npy(f, (0..frames).map(|t| analysis.time_of(t)), frames)
        })
    })?;
    add("components.json", &mut |path| {
        write_buffered(path, |f| {
            Ok(f.write_all(components_json(&analysis).as_bytes())?)
        })
    })?;
    add("notes.csv", &mut |path| {
        write_buffered(path, |f| Ok(write_notes_csv(f, notes)?))
    })?;
    let overview = overview(&analysis, w.clone())?;
    for (name, chart) in [
        (
            "spectrogram.png",
            charts::spectrogram_chart as fn(&Overview, &str) -> _,
        ),
        ("templates.png", charts::templates_chart),
        ("activations.png", charts::activations_chart),
    ] {
        let image = chart(&overview, input_name);
        add(name, &mut |path| {
            write_buffered(path, |mut f| Ok(encode_png(&mut f, &image)?))
        })?;
    }

    let mut clipped = Vec::new();
    if let Some(format) = output.audio {
        let audio_dir = dir.join("audio");
        fs::create_dir(&audio_dir).map_err(|e| Error::write(&audio_dir, e))?;
        let separation = separation(analysis);
        let output = crate::separate::OutputOptions {
            format,
            ..Default::default()
        };
        let clips = write_stems(&separation, recording, &audio_dir, &output)?;
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

/// The header of a CSV table: `first,<ids>`.
fn write_header(f: &mut dyn Write, first: &str, ids: &[&str]) -> io::Result<()> {
    let mut line = String::from(first);
    for id in ids {
        line.push(',');
        line.push_str(id);
    }
    line.push('\n');
    f.write_all(line.as_bytes())
}

/// One row of a CSV table: the axis value `x`, then `values`. Numbers are written in their
/// shortest form that reads back to the same value.
fn write_row(
    f: &mut dyn Write,
    line: &mut String,
    x: f64,
    values: impl Iterator<Item = f32>,
) -> io::Result<()> {
    line.clear();
    write!(line, "{x}").expect("writing to a String");
    for v in values {
        write!(line, ",{v}").expect("writing to a String");
    }
    line.push('\n');
    f.write_all(line.as_bytes())
}

/// `activations.csv`: `time_s`, then one column per component, one row per frame, read from
/// the activations a block at a time.
fn write_activations_csv(
    f: &mut dyn Write,
    analysis: &Analysis,
    ids: &[&str],
) -> std::result::Result<(), Failure> {
    write_header(f, "time_s", ids)?;
    let frames = analysis.fitted.frames;
    let mut h = analysis.fitted.h.reader()?;
    let mut line = String::new();
    for start in (0..frames).step_by(CHUNK) {
        let block = h.block(start, CHUNK.min(frames - start))?;
        for (t, frame) in block.columns().into_iter().enumerate() {
            let values = analysis.order.iter().map(|&c| frame[c]);
            write_row(f, &mut line, analysis.time_of(start + t), values)?;
        }
    }
    Ok(())
}

/// `H.npy`, K × frames in C order: its header, then each component's activations of a block
/// of frames at their place in the file, the activations read once, a block at a time.
fn write_h_npy(file: &mut fs::File, analysis: &Analysis) -> std::result::Result<(), Failure> {
    let (k, frames) = (analysis.order.len(), analysis.fitted.frames);
    let mut header = Vec::new();
    write_npy_header(&mut header, "<f4", &[k, frames]).map_err(io::Error::from)?;
    file.write_all(&header)?;
    let data = header.len() as u64;
    let mut h = analysis.fitted.h.reader()?;
    let mut bytes = Vec::with_capacity(CHUNK * 4);
    for start in (0..frames).step_by(CHUNK) {
        let block = h.block(start, CHUNK.min(frames - start))?;
        for (i, &c) in analysis.order.iter().enumerate() {
            bytes.clear();
            for &a in block.row(c) {
                bytes.extend_from_slice(&a.to_le_bytes());
            }
            file.seek(SeekFrom::Start(data + 4 * (i * frames + start) as u64))?;
            file.write_all(&bytes)?;
        }
    }
    Ok(())
}

/// A one-dimensional `.npy` file of `len` values, written as they come.
fn write_axis_npy(
    f: &mut dyn Write,
    values: impl Iterator<Item = f64>,
    len: usize,
) -> std::result::Result<(), Failure> {
    let mut f = f;
    write_npy_header(&mut f, "<f8", &[len]).map_err(io::Error::from)?;
    for v in values {
        f.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

/// What the charts of `analysis` draw; `w` its templates in the order of its components. The
/// activations are read once, a block at a time.
fn overview(analysis: &Analysis, w: ndarray::Array2<f32>) -> Result<Overview> {
    let frames = analysis.fitted.frames;
    let components = &analysis.components;
    let mut columns = ColumnMax::new(
        charts::activation_columns(components, analysis.notes_mode),
        frames,
        components.len(),
    );
    let mut h = analysis.fitted.h.reader()?;
    for start in (0..frames).step_by(CHUNK) {
        columns.add(start, h.block(start, CHUNK.min(frames - start))?.t());
    }
    Ok(Overview {
        sample_rate: analysis.sample_rate,
        n_fft: analysis.stft.n_fft(),
        hop: analysis.stft.hop(),
        frames,
        notes_mode: analysis.notes_mode,
        components: components.clone(),
        w,
        transcription: analysis.transcription(),
        spectrum: analysis.fitted.spectrum.values().clone(),
        activations: reorder(&columns, &analysis.order),
    })
}

/// A separation with one source per component, named by its id, rendering from the
/// activations wherever they are.
fn separation(analysis: Analysis) -> Separation {
    let sources = analysis
        .components
        .iter()
        .zip(&analysis.order)
        .map(|(c, &i)| Source {
            name: c.id.clone(),
            components: vec![i],
        })
        .collect();
    let fitted = analysis.fitted;
    let k = fitted.w.ncols();
    let (h, spill) = fitted.h.split(k);
    let nmf = Nmf {
        w: fitted.w,
        h,
        cost_history: fitted.cost_history,
        iterations: fitted.iterations,
        converged: fitted.converged,
    };
    let separation = Separation::new(nmf, sources, analysis.stft, analysis.mask_power);
    match spill {
        Some(spill) => separation.with_spill(spill),
        None => separation,
    }
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
fn components_json(analysis: &Analysis) -> String {
    let mut s = String::new();
    let stft = &analysis.stft;
    let _ = write!(
        s,
        "{{\n  \"sample_rate\": {},\n  \"n_fft\": {},\n  \"hop\": {},\n  \"frames\": {},\n  \
         \"note_templates\": {},\n  \"components\": [",
        analysis.sample_rate,
        stft.n_fft(),
        stft.hop(),
        analysis.fitted.frames,
        analysis.notes_mode
    );
    for (i, c) in analysis.components.iter().enumerate() {
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
