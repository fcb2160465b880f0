//! `demix inspect` of recordings longer than `--max-frames`: read in passes and solved in
//! blocks, the same as the library call in memory, close to one block, on one thread or all,
//! with every array and table complete.

use std::fs;
use std::path::Path;

use demix::audio::{Audio, OutputFormat, read_audio, write_wav};
use demix::formats::npy::load_npy;
use demix::formats::plot::{Image, encode_png};
use demix::inspect::{
    InspectParams, OUTPUT_NAMES, Overview, activations_chart, inspect, spectrogram_chart,
    templates_chart,
};
use ndarray::{Array2, ArrayD, Ix2};

use crate::alloc::largest_allocation;
use crate::common::{TestRng, assert_ok, demix, gated_harmonic, max_abs_diff};
use crate::inspect::{RATE, SEQUENCE, onset_f_measure, sequence_audio};

/// Times the note sequence is repeated.
const REPEATS: usize = 4;

/// The note sequence four times over (18 s at 22.05 kHz: 776 frames of hop 512, the note
/// templates' frames at this rate), and its notes as (onset s, MIDI note).
fn long_sequence() -> (Audio, Vec<(f64, u8)>) {
    let once = sequence_audio();
    let samples = once.channels[0].repeat(REPEATS);
    let seconds = once.len() as f64 / f64::from(RATE);
    let notes = (0..REPEATS)
        .flat_map(|r| {
            SEQUENCE
                .iter()
                .map(move |&(t, _, p, _)| (t + r as f64 * seconds, p))
        })
        .collect();
    (Audio::new(RATE, vec![samples]).unwrap(), notes)
}

/// What `demix inspect long.wav -o out ARGS...` wrote, read back.
struct Outputs {
    w: Array2<f32>,
    h: Array2<f32>,
    times: Vec<f64>,
    /// `activations.csv`: the header, then the rows.
    activations: (Vec<String>, Vec<Vec<f64>>),
    /// `notes.csv`: (onset s, MIDI note) of each row.
    notes: Vec<(f64, u8)>,
    /// Each component's id and pitch (`A3 +0`), from `components.json`.
    components: Vec<(String, String)>,
    /// The final cost of the fit, from the run's report.
    final_cost: f64,
}

fn matrix(a: ArrayD<f32>) -> Array2<f32> {
    a.into_dimensionality::<Ix2>().unwrap()
}

/// Runs `demix inspect long.wav -o out --force ARGS...` in `dir` and reads its outputs.
fn inspected(dir: &Path, args: &[&str]) -> Outputs {
    let out = demix(
        dir,
        &[&["inspect", "long.wav", "-o", "out", "--force"], args].concat(),
    );
    assert_ok(&out);
    let folder = dir.join("out/long");
    // The activations' file is gone: the folder holds only what inspect writes.
    for entry in fs::read_dir(&folder).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            OUTPUT_NAMES.iter().any(|n| name == *n) || name == "notes.mid",
            "{name:?} in the output folder"
        );
    }
    let npy = |name: &str| load_npy(&folder.join(name)).unwrap();
    let csv = |name: &str| {
        let text = fs::read_to_string(folder.join(name)).unwrap();
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
        let rows: Vec<Vec<f64>> = lines
            .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
            .collect();
        (header, rows)
    };
    let notes_csv = fs::read_to_string(folder.join("notes.csv")).unwrap();
    let json = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    };
    let components = json(&folder.join("components.json"))["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].to_string(), c["note"].to_string()))
        .collect();
    let report = json(&dir.join("out/demix-report.json"));
    Outputs {
        components,
        final_cost: report["files"][0]["final_cost"].as_f64().unwrap(),
        w: matrix(npy("W.npy").to_f32().unwrap()),
        h: matrix(npy("H.npy").to_f32().unwrap()),
        times: npy("time_s.npy").to_f64().unwrap().into_iter().collect(),
        activations: csv("activations.csv"),
        notes: notes_csv
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect(),
    }
}

/// The relative difference `|a - b| / |b|` (Frobenius norms).
fn relative_difference(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    let norm =
        |x: ndarray::ArrayView2<f32>| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    norm((a - b).view()) / norm(b.view())
}

#[test]
fn a_recording_inspected_in_blocks_gives_what_the_library_gives_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (audio, _) = long_sequence();
    write_wav(dir.path().join("long.wav"), &audio, OutputFormat::Float32).unwrap();
    // Note templates, and free components with the smoothness penalty's margins between
    // blocks: 776 frames in blocks of 256, templates fitted on a sample of 256 frames.
    let notes = InspectParams {
        max_frames: 256,
        ..InspectParams::notes("C3-C6".parse().unwrap())
    };
    let free = InspectParams {
        max_frames: 256,
        nmf: demix::NmfParams::new(3).with_smoothness(0.1),
        ..InspectParams::default()
    };
    for (args, params) in [
        (&["--notes", "C3-C6"][..], notes),
        (&["-k", "3", "--smoothness", "0.1"][..], free),
    ] {
        let args = [args, &["--max-frames", "256"]].concat();
        let expected = inspect(&audio, &params, &mut |_| {}).unwrap();
        let frames = expected.nmf.h.ncols();
        assert_eq!(frames, 776, "{args:?}");
        let streamed = inspected(dir.path(), &args);
        assert_eq!(streamed.w, expected.nmf.w, "{args:?}: W");
        assert_eq!(streamed.h, expected.nmf.h, "{args:?}: H");
        assert_eq!(streamed.times, expected.time_s(), "{args:?}: time_s");
        let (header, rows) = &streamed.activations;
        assert_eq!(header.len(), 1 + expected.components.len(), "{args:?}");
        assert_eq!(rows.len(), frames, "{args:?}: a row per frame");
        for (t, row) in rows.iter().enumerate() {
            assert_eq!(row.len(), header.len(), "{args:?}: row {t}");
            for (c, &v) in row[1..].iter().enumerate() {
                assert_eq!(v as f32, expected.nmf.h[[c, t]], "{args:?}: H[{c}, {t}]");
            }
        }
        let notes: Vec<(f64, u8)> = expected
            .notes()
            .iter()
            .map(|n| (n.onset_s, n.pitch))
            .collect();
        assert_eq!(streamed.notes, notes, "{args:?}: notes");
        // The charts, drawn from pixel columns gathered block by block, are those of the
        // whole arrays.
        let overview = expected.overview();
        for (name, chart) in [
            (
                "spectrogram.png",
                spectrogram_chart as fn(&Overview, &str) -> Image,
            ),
            ("templates.png", templates_chart),
            ("activations.png", activations_chart),
        ] {
            let mut png = Vec::new();
            encode_png(&mut png, &chart(&overview, "long.wav")).unwrap();
            let written = fs::read(dir.path().join("out/long").join(name)).unwrap();
            assert!(png == written, "{args:?}: {name}");
        }
        let one_thread = inspected(dir.path(), &[&["--threads", "1"], &args[..]].concat());
        assert_eq!(
            (one_thread.h, one_thread.notes),
            (streamed.h, streamed.notes),
            "{args:?}: one thread or all"
        );
    }
}

/// Three harmonic tones (A3, E4, C#5), each switched on and off at its own pace, over faint
/// noise: 18 s at 22.05 kHz, 776 frames of the default hop.
fn three_tones() -> Audio {
    let seconds = 18.0;
    let mut x = vec![0f32; (seconds * f64::from(RATE)) as usize];
    for (f0, period) in [(220.0, 1.3), (330.0, 0.7), (550.0, 1.9)] {
        let partials = [0.2, 0.1, 0.067, 0.05, 0.04];
        let tone = gated_harmonic(RATE, seconds, f0, &partials, |t| (t / period).fract() < 0.5);
        x.iter_mut().zip(tone).for_each(|(a, b)| *a += b);
    }
    let mut rng = TestRng::new(3);
    x.iter_mut().for_each(|a| *a += 0.002 * rng.signed());
    Audio::new(RATE, vec![x]).unwrap()
}

/// The tolerance of an inspection in blocks: its activations H within this fraction of
/// those of one block (Frobenius norm of the difference over that of H). Measured: 0.016
/// for the note templates of the note sequence, 0.016 for the three free components of the
/// three tones (whose cost rose by 0.5 %).
const TOLERANCE: f64 = 0.05;

#[test]
fn a_recording_inspected_in_blocks_is_within_tolerance_of_one_block() {
    let dir = tempfile::tempdir().unwrap();
    let (audio, reference) = long_sequence();
    write_wav(dir.path().join("long.wav"), &audio, OutputFormat::Float32).unwrap();
    let whole = inspected(dir.path(), &["--notes", "C3-C6"]);
    let blocks = inspected(dir.path(), &["--notes", "C3-C6", "--max-frames", "256"]);
    let difference = relative_difference(&blocks.h, &whole.h);
    let f_whole = onset_f_measure(&reference, &whole.notes, 0.05);
    let f_blocks = onset_f_measure(&reference, &blocks.notes, 0.05);
    let agreement = onset_f_measure(&whole.notes, &blocks.notes, 0.05);
    eprintln!(
        "notes in blocks: H differs by {difference:.4}, onset F {f_blocks:.3} (one block \
         {f_whole:.3}), the notes of the two agree with F {agreement:.3}"
    );
    assert!(difference < TOLERANCE, "H differs by {difference}");
    assert!(f_blocks >= 0.9 && f_whole >= 0.9, "{f_blocks} {f_whole}");
    assert!(agreement >= 0.95, "{agreement}");

    // Free components: templates fitted on a sample of 256 frames of the 776 find the same
    // tones, and model the recording almost as well.
    write_wav(
        dir.path().join("long.wav"),
        &three_tones(),
        OutputFormat::Float32,
    )
    .unwrap();
    let whole = inspected(dir.path(), &["-k", "3"]);
    let blocks = inspected(dir.path(), &["-k", "3", "--max-frames", "256"]);
    assert_eq!(blocks.components, whole.components, "ids and pitches");
    let difference = relative_difference(&blocks.h, &whole.h);
    let cost = blocks.final_cost / whole.final_cost - 1.0;
    eprintln!(
        "3 free components in blocks: H differs by {difference:.4}, cost {:+.2} %",
        100.0 * cost
    );
    assert!(difference < TOLERANCE, "H differs by {difference}");
    assert!(cost.abs() < 0.02, "cost {cost:+}");
}

#[test]
fn per_component_audio_of_a_recording_in_blocks_adds_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (audio, _) = long_sequence();
    write_wav(dir.path().join("long.wav"), &audio, OutputFormat::Float32).unwrap();
    let args = ["-k", "3", "--max-frames", "256", "--audio", "--float32"];
    let outputs = inspected(dir.path(), &args);
    let mut sum = vec![0f32; audio.len()];
    for id in &outputs.activations.0[1..] {
        let path = dir.path().join(format!("out/long/audio/{id}.wav"));
        for (s, x) in sum.iter_mut().zip(&read_audio(path).unwrap().channels[0]) {
            *s += x;
        }
    }
    assert!(max_abs_diff(&sum, &audio.channels[0]) < 1e-4);
}

#[test]
fn a_long_recording_is_inspected_without_an_allocation_the_size_of_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    // Four minutes at 8 kHz: 7.3 MiB of samples decoded, 30 001 frames of 129 bins (14.8 MiB
    // of spectrogram) in blocks of 1024 frames (0.5 MiB). The largest allocation that does
    // not depend on the length is a chart's pixels (2.4 MiB).
    let rate = 8000;
    let mut rng = TestRng::new(11);
    let x: Vec<f32> = (0..240 * rate)
        .map(|i| {
            let t = f64::from(i) / f64::from(rate);
            let gate = if (t / 0.9).fract() < 0.5 { 0.3 } else { 0.02 };
            (gate * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as f32 + 0.01 * rng.signed()
        })
        .collect();
    let input = dir.path().join("long.wav");
    let audio = Audio::new(rate as u32, vec![x]).unwrap();
    write_wav(&input, &audio, OutputFormat::Int16).unwrap();
    let params = InspectParams {
        stft: demix::spectral::StftParams::new(256).with_hop(64),
        nmf: demix::NmfParams::new(2).with_max_iter(30),
        max_frames: 1024,
        ..InspectParams::default()
    };
    let out = dir.path().join("out");
    let options = demix::inspect::InspectOutput::default();
    let (report, largest) = largest_allocation(|| {
        demix::inspect::inspect_file(&input, &out, &params, &options, &mut |_| {}).unwrap()
    });
    assert_eq!(report.components, 2);
    let h = matrix(load_npy(&out.join("H.npy")).unwrap().to_f32().unwrap());
    assert_eq!(h.dim(), (2, 30_001));
    let samples = audio.len() * 4;
    assert!(
        largest < samples / 2,
        "an allocation of {largest} bytes; the decoded recording is {samples}"
    );
}
