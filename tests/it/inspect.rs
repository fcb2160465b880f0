//! `demix inspect`: pitch labels of synthesized tones, transcription of a synthesized note
//! sequence, the exported files read back, every rejected input, and folders inspected
//! through the batch runner (the charts are in `charts.rs`).

use std::f64::consts::PI;
use std::fs;
use std::path::Path;

use demix::audio::{Audio, OutputFormat, write_wav};
use demix::formats::midi::{NoteEvent, read_midi};
use demix::formats::npy::load_npy;
use demix::inspect::notes::{hz_to_midi, midi_to_hz};
use demix::inspect::{
    InspectOutput, InspectParams, OUTPUT_NAMES, TranscribeParams, inspect, inspect_file,
};

use crate::common::{TestRng, assert_fails, assert_ok, assert_usage_error, demix};

pub(crate) const RATE: u32 = 22_050;

/// A plucked-string-like note: partials `n f0` with amplitudes `1/n` below 0.9 × Nyquist, a
/// 5 ms attack, an exponential decay (time constant 0.6 s) and a 30 ms release.
pub(crate) fn pluck(out: &mut [f32], f0: f64, onset: f64, duration: f64, gain: f64) {
    let rate = f64::from(RATE);
    let start = (onset * rate) as usize;
    let release = 0.03;
    let end = (((onset + duration + release) * rate) as usize).min(out.len());
    let partials: Vec<usize> = (1..=12)
        .filter(|&n| n as f64 * f0 < 0.9 * rate / 2.0)
        .collect();
    for (i, sample) in out.iter_mut().enumerate().take(end).skip(start) {
        let t = (i - start) as f64 / rate;
        let attack = (t / 0.005).min(1.0);
        let tail = if t > duration {
            (1.0 - (t - duration) / release).max(0.0)
        } else {
            1.0
        };
        let env = gain * attack * tail * (-t / 0.6).exp();
        let s: f64 = partials
            .iter()
            .map(|&n| (2.0 * PI * n as f64 * f0 * t).sin() / n as f64)
            .sum();
        *sample += (0.2 * env * s) as f32;
    }
}

fn mono(samples: Vec<f32>) -> Audio {
    Audio::new(RATE, vec![samples]).unwrap()
}

#[test]
fn harmonic_tones_are_labelled_within_20_cents() {
    // Off-grid pitches (cents away from the nearest note), low to high.
    let pitches = [
        (43.0, 0.0),
        (55.0, 12.0),
        (57.0, -7.0),
        (64.0, 31.0),
        (69.0, 3.0),
        (74.0, -18.0),
        (81.0, 45.0),
        (88.0, -40.0),
    ];
    let mut worst: f64 = 0.0;
    for (midi, cents) in pitches {
        let f0 = midi_to_hz(midi + cents / 100.0);
        let mut x = vec![0f32; RATE as usize];
        pluck(&mut x, f0, 0.05, 0.8, 1.0);
        let result = inspect(&mono(x), &InspectParams::free(1), &mut |_| {}).unwrap();
        let pitch = result.components[0]
            .pitch
            .expect("a harmonic tone is pitched");
        let error = 1200.0 * (pitch.f0_hz / f0).log2();
        worst = worst.max(error.abs());
        assert!(
            error.abs() < 20.0,
            "{f0:.2} Hz estimated as {:.2} Hz ({error:+.1} cents)",
            pitch.f0_hz
        );
        let label = result.components[0].pitch_label();
        let expected_note = demix::inspect::notes::note_name(hz_to_midi(f0).round() as i32);
        assert!(label.starts_with(&format!("{expected_note} ")), "{label}");
    }
    eprintln!("largest pitch error: {worst:.2} cents");
}

#[test]
fn white_noise_is_unpitched() {
    let mut rng = TestRng::new(7);
    let x: Vec<f32> = (0..RATE).map(|_| 0.3 * rng.signed()).collect();
    let result = inspect(&mono(x), &InspectParams::free(1), &mut |_| {}).unwrap();
    assert_eq!(result.components[0].pitch_label(), "unpitched");
}

/// (onset s, duration s, MIDI note, gain): several pitches, chords, overlaps and a repeat.
pub(crate) const SEQUENCE: [(f64, f64, u8, f64); 14] = [
    (0.20, 0.50, 60, 1.0),
    (0.20, 0.50, 64, 0.8),
    (0.70, 0.45, 67, 0.9),
    (0.90, 0.60, 72, 0.7),
    (1.50, 0.25, 62, 1.0),
    (1.80, 0.30, 62, 0.9),
    (2.10, 0.80, 55, 1.0),
    (2.30, 0.40, 71, 0.6),
    (2.70, 0.50, 65, 0.8),
    (3.00, 0.60, 59, 0.9),
    (3.10, 0.50, 76, 0.7),
    (3.40, 0.40, 48, 1.0),
    (3.80, 0.30, 69, 0.8),
    (3.80, 0.30, 57, 0.8),
];

/// [`SEQUENCE`] at [`RATE`], 4.5 s.
pub(crate) fn sequence_audio() -> Audio {
    let mut x = vec![0f32; (4.5 * f64::from(RATE)) as usize];
    for (onset, duration, midi, gain) in SEQUENCE {
        pluck(&mut x, midi_to_hz(f64::from(midi)), onset, duration, gain);
    }
    mono(x)
}

/// Onset precision, recall and F-measure as mir_eval's `precision_recall_f1_overlap` with
/// `offset_ratio=None`: a reference and an estimate match when their pitches are equal and
/// their onsets within `tolerance`; the matching is a maximum bipartite matching.
pub(crate) fn onset_f_measure(
    reference: &[(f64, u8)],
    estimate: &[(f64, u8)],
    tolerance: f64,
) -> f64 {
    let edges: Vec<Vec<usize>> = reference
        .iter()
        .map(|&(t, p)| {
            (0..estimate.len())
                .filter(|&j| estimate[j].1 == p && (estimate[j].0 - t).abs() <= tolerance + 1e-9)
                .collect()
        })
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; estimate.len()];
    fn augment(
        i: usize,
        edges: &[Vec<usize>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for &j in &edges[i] {
            if !seen[j] {
                seen[j] = true;
                if owner[j].is_none_or(|k| augment(k, edges, seen, owner)) {
                    owner[j] = Some(i);
                    return true;
                }
            }
        }
        false
    }
    let matched = (0..reference.len())
        .filter(|&i| augment(i, &edges, &mut vec![false; estimate.len()], &mut owner))
        .count() as f64;
    if matched == 0.0 {
        return 0.0;
    }
    let (p, r) = (
        matched / estimate.len() as f64,
        matched / reference.len() as f64,
    );
    2.0 * p * r / (p + r)
}

#[test]
fn a_note_sequence_is_transcribed_with_onset_f_measure_above_0_9() {
    let audio = sequence_audio();
    let params = InspectParams::notes("C3-C6".parse().unwrap());
    let notes = inspect(&audio, &params, &mut |_| {}).unwrap().notes();
    let reference: Vec<(f64, u8)> = SEQUENCE.iter().map(|&(t, _, p, _)| (t, p)).collect();
    let estimate: Vec<(f64, u8)> = notes.iter().map(|n| (n.onset_s, n.pitch)).collect();
    let f = onset_f_measure(&reference, &estimate, 0.05);
    eprintln!(
        "adapted templates: onset F-measure {f:.3} ({} notes for {})",
        notes.len(),
        SEQUENCE.len()
    );
    assert!(f >= 0.9, "onset F-measure {f:.3}: {notes:#?}");

    let fixed = InspectParams::notes("C3-C6".parse().unwrap());
    let fixed = InspectParams {
        notes: fixed.notes.map(|n| n.with_fixed(true)),
        ..fixed
    };
    let notes = inspect(&audio, &fixed, &mut |_| {}).unwrap().notes();
    let estimate: Vec<(f64, u8)> = notes.iter().map(|n| (n.onset_s, n.pitch)).collect();
    let f = onset_f_measure(&reference, &estimate, 0.05);
    eprintln!("fixed templates: onset F-measure {f:.3}");
    assert!(f >= 0.9, "fixed templates: onset F-measure {f:.3}");
}

#[test]
fn the_onset_f_measure_counts_as_mir_eval_does() {
    let reference = [(1.0, 60), (2.0, 62), (2.02, 64)];
    // One right, one 60 ms late, one wrong pitch, one extra.
    let estimate = [(1.03, 60), (2.06, 62), (2.02, 65), (3.0, 70)];
    let f = onset_f_measure(&reference, &estimate, 0.05);
    let (p, r) = (1.0 / 4.0, 1.0 / 3.0);
    assert!((f - 2.0 * p * r / (p + r)).abs() < 1e-12);
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect();
    (header, rows)
}

#[test]
fn inspect_names_components_as_separate_names_the_same_stems() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(
        dir.path().join("seq.wav"),
        &sequence_audio(),
        OutputFormat::Float32,
    )
    .unwrap();
    let common = ["seq.wav", "-k", "3", "--float32", "--iter", "50"];
    assert_ok(&demix(
        dir.path(),
        &[&["separate"], &common[..], &["-o", "sep"]].concat(),
    ));
    assert_ok(&demix(
        dir.path(),
        &[&["inspect"], &common[..], &["--audio", "-o", "ins"]].concat(),
    ));
    // The same layout: OUT/<file stem>/.
    let json: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join("ins/seq/components.json")).unwrap(),
    )
    .unwrap();
    let mut ids: Vec<String> = json["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["source1", "source2", "source3"]);
    // Each id's audio is the stem separate wrote under that name.
    for id in &ids {
        let stem = demix::audio::read_audio(dir.path().join(format!("sep/seq/{id}.wav"))).unwrap();
        let component =
            demix::audio::read_audio(dir.path().join(format!("ins/seq/audio/{id}.wav"))).unwrap();
        let worst = stem.channels[0]
            .iter()
            .zip(&component.channels[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "{id}: {worst}");
    }
}

#[test]
fn exported_csv_and_npy_load_back_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("seq.wav");
    let audio = sequence_audio();
    write_wav(&input, &audio, OutputFormat::Float32).unwrap();
    let out = dir.path().join("out");
    let params = InspectParams::notes("C3-C6".parse().unwrap());
    let midi = dir.path().join("seq.mid");
    let options = InspectOutput {
        midi: Some(midi.clone()),
        ..Default::default()
    };
    let report = inspect_file(&input, &out, &params, &options, &mut |_| {}).unwrap();
    let expected = inspect(&audio, &params, &mut |_| {}).unwrap();
    let (w, h) = (&expected.nmf.w, &expected.nmf.h);
    assert_eq!(report.components, 37);

    let npy = |name: &str| load_npy(&out.join(name)).unwrap();
    let w_npy = npy("W.npy").to_f32().unwrap();
    let h_npy = npy("H.npy").to_f32().unwrap();
    assert_eq!(w_npy.shape(), &[w.nrows(), w.ncols()]);
    assert_eq!(w_npy, w.clone().into_dyn());
    assert_eq!(h_npy, h.clone().into_dyn());
    let times = npy("time_s.npy").to_f64().unwrap();
    let freqs = npy("freq_hz.npy").to_f64().unwrap();
    assert_eq!(times.as_slice().unwrap(), expected.time_s().as_slice());
    assert_eq!(freqs.as_slice().unwrap(), expected.freq_hz().as_slice());

    let ids: Vec<String> = expected.components.iter().map(|c| c.id.clone()).collect();
    let (header, rows) = read_csv(&out.join("activations.csv"));
    assert_eq!(header[0], "time_s");
    assert_eq!(&header[1..], ids.as_slice());
    assert_eq!(header[1], "C3");
    assert_eq!(rows.len(), h.ncols());
    for (t, row) in rows.iter().enumerate() {
        assert_eq!(row[0], expected.time_s()[t]);
        for (c, &v) in row[1..].iter().enumerate() {
            assert_eq!(v as f32, h[[c, t]], "H[{c}, {t}]");
        }
    }
    let (header, rows) = read_csv(&out.join("templates.csv"));
    assert_eq!(header[0], "freq_hz");
    assert_eq!(rows.len(), w.nrows());
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row[0], expected.freq_hz()[k]);
        for (c, &v) in row[1..].iter().enumerate() {
            assert_eq!(v as f32, w[[k, c]], "W[{k}, {c}]");
        }
    }

    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("components.json")).unwrap()).unwrap();
    let components = json["components"].as_array().unwrap();
    assert_eq!(components.len(), 37);
    let shares: f64 = components
        .iter()
        .map(|c| c["energy_share"].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-4, "{shares}");
    // C4 (MIDI 60) sounds once at 0.2 s: its template's pitch is C4 and it is active then.
    let c4 = &components[12];
    assert_eq!(c4["id"], "C4");
    assert_eq!(c4["template_note"], "C4");
    assert!(c4["note"].as_str().unwrap().starts_with("C4 "), "{c4}");
    assert_eq!(c4["pitch"], 60, "{c4}");
    let active = c4["active_s"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{c4}");
    assert!((active[0][0].as_f64().unwrap() - 0.2).abs() < 0.05, "{c4}");

    // The MIDI file holds the notes of notes.csv, to its tick resolution.
    let from_midi = read_midi(&fs::read(&midi).unwrap()).unwrap();
    let notes = expected.notes();
    assert_eq!(from_midi.len(), notes.len());
    assert_eq!(report.notes, notes.len());
    let mut sorted: Vec<NoteEvent> = notes.clone();
    sorted.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s).then(a.pitch.cmp(&b.pitch)));
    for (a, b) in from_midi.iter().zip(&sorted) {
        assert_eq!((a.pitch, a.velocity), (b.pitch, b.velocity));
        assert!(
            (a.onset_s - b.onset_s).abs() <= 0.6e-3 && (a.offset_s - b.offset_s).abs() <= 0.6e-3
        );
    }
    let (header, rows) = {
        let text = fs::read_to_string(out.join("notes.csv")).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap().to_string();
        (header, lines.map(String::from).collect::<Vec<_>>())
    };
    assert_eq!(header, "onset_s,offset_s,pitch,note,velocity");
    assert_eq!(rows.len(), notes.len());
}

#[test]
fn per_component_audio_adds_up_to_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("seq.wav");
    let audio = sequence_audio();
    write_wav(&input, &audio, OutputFormat::Float32).unwrap();
    let out = dir.path().join("out");
    let options = InspectOutput {
        audio: Some(OutputFormat::Float32),
        ..Default::default()
    };
    let report =
        inspect_file(&input, &out, &InspectParams::free(3), &options, &mut |_| {}).unwrap();
    let mut sum = vec![0f32; audio.len()];
    // The free components are named as `demix separate` names the same components.
    for id in ["source1", "source2", "source3"] {
        let stem = demix::audio::read_audio(out.join("audio").join(format!("{id}.wav"))).unwrap();
        for (s, x) in sum.iter_mut().zip(&stem.channels[0]) {
            *s += x;
        }
    }
    assert_eq!(
        report
            .files
            .iter()
            .filter(|f| f.extension() == Some("wav".as_ref()))
            .count(),
        3
    );
    assert!(crate::common::max_abs_diff(&sum, &audio.channels[0]) < 1e-4);
}

// ---- The command line ----

/// The folder holds exactly `names` (hidden temporary files included).
#[track_caller]
fn assert_entries(dir: &Path, names: &[&str]) {
    let mut found: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    names.sort();
    assert_eq!(found, names);
}

/// `dir/in.wav`: one second of A4 at 8 kHz.
fn short_input(dir: &Path) {
    tone_file(&dir.join("in.wav"), 440.0);
}

/// `demix inspect in.wav ARGS...` is a command-line mistake (exit 2) naming `needles`, and
/// writes nothing.
#[track_caller]
fn assert_rejected(args: &[&str], needles: &[&str]) {
    let out = assert_nothing_written_by(args);
    assert_usage_error(&out, needles);
}

/// `demix inspect in.wav ARGS...` fails on the file (exit 1), naming `needles`, and writes
/// nothing.
#[track_caller]
fn assert_file_refused(args: &[&str], needles: &[&str]) {
    let out = assert_nothing_written_by(args);
    assert_fails(&out, needles);
}

#[track_caller]
fn assert_nothing_written_by(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    short_input(dir.path());
    let out = demix(dir.path(), &[&["inspect", "in.wav"], args].concat());
    assert_entries(dir.path(), &["in.wav"]);
    out
}

const FAST: [&str; 4] = ["--n-fft", "512", "--iter", "20"];

/// `demix inspect in.wav -o out -k 1 --midi MIDI EXTRA...` (fast settings) in `dir`.
fn inspect_with_midi(dir: &Path, midi: &str, extra: &[&str]) -> std::process::Output {
    let args = ["inspect", "in.wav", "-o", "out", "-k", "1", "--midi", midi];
    demix(dir, &[&args[..], &FAST[..], extra].concat())
}

#[test]
fn inspect_writes_every_file_and_the_midi() {
    let dir = tempfile::tempdir().unwrap();
    short_input(dir.path());
    let mut args = vec![
        "inspect", "in.wav", "-o", "out", "--notes", "A3-A5", "--audio", "--midi", "in.mid",
    ];
    args.extend(FAST);
    let out = demix(dir.path(), &args);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("in.wav: 25 components, 1 notes in out/in and in.mid"),
        "{stdout}"
    );
    assert_entries(dir.path(), &["in.wav", "in.mid", "out"]);
    // One file is written into OUT/<file stem>, as `demix separate` writes it.
    assert_entries(&dir.path().join("out"), &["demix-report.json", "in"]);
    assert_entries(
        &dir.path().join("out/in"),
        &[
            "activations.csv",
            "activations.png",
            "audio",
            "components.json",
            "freq_hz.npy",
            "H.npy",
            "notes.csv",
            "spectrogram.png",
            "templates.csv",
            "templates.png",
            "time_s.npy",
            "W.npy",
        ],
    );
    // OUTPUT_NAMES lists what is written.
    assert_entries(&dir.path().join("out/in"), &OUTPUT_NAMES);
    assert_eq!(
        fs::read_dir(dir.path().join("out/in/audio"))
            .unwrap()
            .count(),
        25
    );
    let notes = read_midi(&fs::read(dir.path().join("in.mid")).unwrap()).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].pitch, 69);
}

#[test]
fn a_midi_file_inside_the_output_folder_is_written_with_it() {
    let dir = tempfile::tempdir().unwrap();
    short_input(dir.path());
    let out = inspect_with_midi(dir.path(), "out/notes.mid", &[]);
    assert_ok(&out);
    assert!(dir.path().join("out/notes.mid").is_file());
    assert_entries(dir.path(), &["in.wav", "out"]);
}

#[test]
fn a_midi_path_that_leaves_the_output_folder_by_dotdot_is_beside_it_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    short_input(dir.path());
    fs::write(dir.path().join("notes.mid"), b"keep").unwrap();
    let out = inspect_with_midi(dir.path(), "out/../notes.mid", &[]);
    assert_fails(&out, &["notes.mid", "already exists"]);
    assert_eq!(fs::read(dir.path().join("notes.mid")).unwrap(), b"keep");
    assert_entries(dir.path(), &["in.wav", "notes.mid"]);

    let out = inspect_with_midi(dir.path(), "out/../notes.mid", &["--force"]);
    assert_ok(&out);
    let notes = read_midi(&fs::read(dir.path().join("notes.mid")).unwrap()).unwrap();
    assert_eq!(notes.len(), 1);
    assert_entries(dir.path(), &["in.wav", "notes.mid", "out"]);
}

#[test]
fn missing_input_is_reported_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = demix(dir.path(), &["inspect", "nope.wav", "-o", "out"]);
    assert_fails(&out, &["nope.wav", "no such file"]);
    assert_entries(dir.path(), &[]);
}

#[test]
fn text_file_as_input_is_reported_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in.wav"), "not audio at all, just text").unwrap();
    let out = demix(dir.path(), &["inspect", "in.wav", "-o", "out"]);
    assert_fails(&out, &["in.wav", "unsupported"]);
    assert_entries(dir.path(), &["in.wav"]);
}

#[test]
fn unknown_note_name_is_rejected() {
    assert_rejected(
        &["-o", "out", "--notes", "H2-C4"],
        &["--notes", "'H2'", "note letter"],
    );
}

#[test]
fn reversed_note_range_is_rejected() {
    assert_rejected(&["-o", "out", "--notes", "C5-C4"], &["--notes", "'C5-C4'"]);
}

#[test]
fn notes_above_the_nyquist_frequency_are_rejected_naming_the_file() {
    assert_file_refused(
        &[&["-o", "out/deeper", "--notes", "A0-C8"], &FAST[..]].concat(),
        &["in.wav", "--notes", "C8", "Nyquist"],
    );
}

#[test]
fn negative_harmonic_decay_is_rejected() {
    assert_rejected(
        &["-o", "out", "--notes", "A3-A5", "--harmonic-decay=-1"],
        &["--harmonic-decay", "-1"],
    );
}

#[test]
fn out_of_range_note_confidence_is_rejected() {
    assert_rejected(
        &["-o", "out", "--notes", "A3-A5", "--note-confidence", "1.5"],
        &["--note-confidence", "1.5"],
    );
}

#[test]
fn the_note_model_drops_candidates_that_a_confidence_of_0_keeps() {
    // Every candidate the thresholds find is a note at confidence 0; the model keeps a subset.
    let audio = sequence_audio();
    let all = InspectParams {
        transcribe: TranscribeParams::for_notes().with_confidence(0.0),
        ..InspectParams::notes("C3-C6".parse().unwrap())
    };
    let every = inspect(&audio, &all, &mut |_| {}).unwrap().notes();
    let kept = inspect(
        &audio,
        &InspectParams::notes("C3-C6".parse().unwrap()),
        &mut |_| {},
    )
    .unwrap()
    .notes();
    assert!(
        kept.len() < every.len(),
        "{} of {}",
        kept.len(),
        every.len()
    );
    assert!(kept.iter().all(|n| every.contains(n)), "{kept:#?}");
}

#[test]
fn out_of_range_threshold_is_rejected() {
    assert_rejected(
        &["-o", "out", "--onset-threshold", "1.5"],
        &["--onset-threshold", "1.5"],
    );
}

#[test]
fn max_frames_below_256_are_rejected_naming_the_flag() {
    assert_rejected(
        &["-o", "out", "--max-frames", "100"],
        &["--max-frames", "256", "100"],
    );
}

#[test]
fn existing_output_folder_is_kept_without_force() {
    let dir = tempfile::tempdir().unwrap();
    short_input(dir.path());
    fs::create_dir_all(dir.path().join("out/in")).unwrap();
    fs::write(dir.path().join("out/in/keep.txt"), "mine").unwrap();
    let mut args = vec!["inspect", "in.wav", "-o", "out", "-k", "1"];
    args.extend(FAST);
    let out = demix(dir.path(), &args);
    assert_fails(&out, &["in.wav", "out/in", "already exists", "--force"]);
    assert_entries(&dir.path().join("out/in"), &["keep.txt"]);

    args.push("--force");
    let out = demix(dir.path(), &args);
    assert_ok(&out);
    assert!(dir.path().join("out/in/components.json").is_file());
    assert!(!dir.path().join("out/in/keep.txt").exists());
}

#[test]
fn existing_midi_file_is_kept_without_force() {
    let dir = tempfile::tempdir().unwrap();
    short_input(dir.path());
    fs::write(dir.path().join("notes.mid"), "mine").unwrap();
    let out = inspect_with_midi(dir.path(), "notes.mid", &[]);
    assert_fails(&out, &["in.wav", "notes.mid", "already exists"]);
    assert_eq!(
        fs::read_to_string(dir.path().join("notes.mid")).unwrap(),
        "mine"
    );
    assert_entries(dir.path(), &["in.wav", "notes.mid"]);
}

#[test]
fn midi_path_that_is_the_input_is_rejected() {
    assert_file_refused(
        &[
            &["-o", "out", "-k", "1", "--midi", "in.wav", "--force"],
            &FAST[..],
        ]
        .concat(),
        &["in.wav", "would replace the input"],
    );
}

#[test]
fn unwritable_midi_path_leaves_no_output_folder() {
    assert_file_refused(
        &[
            &["-o", "out", "-k", "1", "--midi", "in.wav/x.mid"],
            &FAST[..],
        ]
        .concat(),
        &["in.wav", "x.mid"],
    );
}

#[test]
fn output_folder_under_a_file_is_reported() {
    assert_file_refused(
        &[&["-o", "in.wav/out", "-k", "1"], &FAST[..]].concat(),
        &["in.wav", "cannot write"],
    );
}

#[test]
fn inspect_takes_the_model_options_of_separate() {
    let dir = tempfile::tempdir().unwrap();
    short_input(dir.path());
    let mut args = vec![
        "inspect",
        "in.wav",
        "-o",
        "out",
        "--notes",
        "A3-A5",
        "--loss",
        "is",
        "--init",
        "random",
        "--seed",
        "3",
        "--hop",
        "128",
        "--tol",
        "0",
        "--sparsity",
        "0.1",
        "--smoothness",
        "0.1",
        "--restarts",
        "2",
    ];
    args.extend(FAST);
    let out = demix(dir.path(), &args);
    assert_ok(&out);
    // 20 iterations twice with the templates fixed, then the adaptation from the best fit.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stopped = 20 + demix::inspect::ADAPT_ITERATIONS;
    assert!(
        stdout.contains(&format!(
            "25 components, 1 notes in out/in (stopped at {stopped} iterations"
        )),
        "{stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join("out/in/components.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["hop"], 128);
}

#[test]
fn zero_restarts_are_rejected_naming_the_flag() {
    assert_rejected(
        &["-o", "out", "--restarts", "0"],
        &["--restarts", "between 1 and 100"],
    );
    // A typo of a few more digits is refused rather than run for days.
    assert_rejected(
        &["-o", "out", "--restarts", "4000000000"],
        &["--restarts", "between 1 and 100", "4000000000"],
    );
}

#[test]
fn restarts_with_note_templates_report_progress_within_its_length() {
    let mut x = vec![0f32; RATE as usize];
    pluck(&mut x, 440.0, 0.1, 0.5, 1.0);
    let mut params = InspectParams::notes("A3-A5".parse().unwrap());
    params.nmf = params.nmf.with_max_iter(20).with_tol(0.0).with_restarts(2);
    let mut seen = Vec::new();
    let result = inspect(&mono(x), &params, &mut |p| {
        seen.push((p.iteration, p.max_iter))
    })
    .unwrap();
    assert!(seen.iter().all(|&(i, n)| i <= n), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    // Two fits of 20 with the templates fixed, then one adaptation.
    let adapt = demix::inspect::ADAPT_ITERATIONS;
    assert_eq!(seen.last(), Some(&(40 + adapt, 40 + adapt)));
    assert_eq!(result.nmf.iterations, 20 + adapt);
}

#[test]
fn a_panic_during_inspect_file_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    short_input(dir.path());
    let out = dir.path().join("new/deeper/out");
    let options = InspectOutput {
        midi: Some(dir.path().join("in.mid")),
        ..Default::default()
    };
    let panicked = std::panic::catch_unwind(|| {
        inspect_file(
            &dir.path().join("in.wav"),
            &out,
            &InspectParams::free(1),
            &options,
            &mut |p| {
                // As a cancelled batch job stops: by unwinding out of the progress callback.
                if p.iteration == 5 {
                    std::panic::resume_unwind(Box::new("stop"));
                }
            },
        )
    });
    assert!(panicked.is_err());
    assert_entries(dir.path(), &["in.wav"]);
}

// ---- Files and folders through the batch runner ----

/// A second of a sine at `f0` Hz, 8 kHz, written as 16-bit WAV at `path` (folders made).
fn tone_file(path: &Path, f0: f64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let x = (0..8000)
        .map(|i| (0.3 * (2.0 * PI * f0 * f64::from(i) / 8000.0).sin()) as f32)
        .collect();
    write_wav(
        path,
        &Audio::new(8000, vec![x]).unwrap(),
        OutputFormat::Int16,
    )
    .unwrap();
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The report entry whose output folder is `output`.
#[track_caller]
fn report_entry<'a>(report: &'a serde_json::Value, output: &str) -> &'a serde_json::Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["output"] == output)
        .unwrap_or_else(|| panic!("no entry {output} in {report:#}"))
}

#[test]
fn a_folder_is_inspected_into_a_mirrored_tree_with_a_report_and_a_rerun_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tone_file(&d.join("in/a.wav"), 440.0);
    tone_file(&d.join("in/sub/b.wav"), 659.26);
    let mut args = vec![
        "inspect",
        "in",
        "-o",
        "out",
        "--notes",
        "A3-A5",
        "--midi",
        "notes.mid",
    ];
    args.extend(FAST);
    let out = demix(d, &args);
    assert_ok(&out);

    let mut names: Vec<&str> = OUTPUT_NAMES
        .iter()
        .copied()
        .filter(|n| *n != "audio")
        .collect();
    names.push("notes.mid");
    assert_entries(&d.join("out"), &["a", "demix-report.json", "sub"]);
    assert_entries(&d.join("out/a"), &names);
    assert_entries(&d.join("out/sub"), &["b"]);
    assert_entries(&d.join("out/sub/b"), &names);
    // Each file's notes in its own MIDI file: A4, and E5 (659.26 Hz).
    for (midi, pitch) in [("out/a/notes.mid", 69), ("out/sub/b/notes.mid", 76)] {
        let notes = read_midi(&fs::read(d.join(midi)).unwrap()).unwrap();
        assert_eq!(notes.len(), 1, "{midi}");
        assert_eq!(notes[0].pitch, pitch, "{midi}");
    }

    // Not a terminal: a line per file, then the summary.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for line in [
        "in/a.wav: 25 components, 1 notes in out/a (",
        "in/sub/b.wav: 25 components, 1 notes in out/sub/b (",
    ] {
        assert!(
            lines[..2]
                .iter()
                .any(|l| l.starts_with("[") && l.contains(line)),
            "{line} in {stdout}"
        );
    }
    assert!(lines[2].starts_with("2 file(s) inspected in "), "{stdout}");
    assert!(
        lines[2].ends_with("report out/demix-report.json"),
        "{stdout}"
    );

    let r = report(&d.join("out/demix-report.json"));
    assert_eq!(r["command"], "inspect");
    assert_eq!(r["summary"]["total"], 2);
    assert_eq!(r["summary"]["ok"], 2);
    for (output, input) in [("a", "in/a.wav"), ("sub/b", "in/sub/b.wav")] {
        let e = report_entry(&r, output);
        assert_eq!(e["input"], input);
        assert_eq!(e["status"], "ok");
        assert_eq!(e["params"]["notes"], "A3-A5");
        assert_eq!(e["params"]["midi"], "notes.mid");
        assert_eq!(e["params"]["n_fft"], 512);
        assert_eq!(e["components"], 25);
        assert_eq!(e["notes"], 1);
        assert!(e["final_cost"].as_f64().unwrap().is_finite());
        let outputs = e["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), names.len());
        for o in outputs {
            let path = o["path"].as_str().unwrap();
            assert!(path.starts_with(&format!("{output}/")), "{path}");
            let size = fs::metadata(d.join("out").join(path)).unwrap().len();
            assert_eq!(size, o["bytes"].as_u64().unwrap(), "{path}");
        }
        assert!(
            outputs
                .iter()
                .any(|o| o["path"] == format!("{output}/notes.mid"))
        );
    }

    // The same command again: nothing to do, nothing rewritten.
    let written = fs::metadata(d.join("out/a/W.npy"))
        .unwrap()
        .modified()
        .unwrap();
    let again = demix(d, &args);
    assert_ok(&again);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.starts_with("0 file(s) inspected, 2 already complete"),
        "{stdout}"
    );
    assert_eq!(
        fs::metadata(d.join("out/a/W.npy"))
            .unwrap()
            .modified()
            .unwrap(),
        written
    );

    // --force redoes both.
    args.push("--force");
    let forced = demix(d, &args);
    assert_ok(&forced);
    let stdout = String::from_utf8_lossy(&forced.stdout);
    assert!(stdout.contains("2 file(s) inspected in "), "{stdout}");
    assert_entries(&d.join("out/a"), &names);
}

#[test]
fn a_bad_file_in_a_folder_is_reported_and_the_others_are_inspected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tone_file(&d.join("in/a.wav"), 440.0);
    fs::write(d.join("in/b.wav"), "not audio at all, just text").unwrap();
    tone_file(&d.join("in/c.wav"), 550.0);
    let mut args = vec!["inspect", "in", "-o", "out", "-k", "1", "-j", "1"];
    args.extend(FAST);
    let out = demix(d, &args);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("demix: error: [2/3] in/b.wav: ") && lines[0].contains("unsupported"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("1 of 3 files failed; see out/demix-report.json"),
        "{stderr}"
    );
    // The files after the bad one were inspected.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[3/3] in/c.wav: 1 components"), "{stdout}");
    assert_entries(&d.join("out"), &["a", "c", "demix-report.json"]);

    let r = report(&d.join("out/demix-report.json"));
    assert_eq!(r["summary"]["ok"], 2);
    assert_eq!(r["summary"]["failed"], 1);
    let b = report_entry(&r, "b");
    assert_eq!(b["status"], "failed");
    assert!(b["error"].as_str().unwrap().contains("unsupported"), "{b}");
    assert!(b.get("outputs").is_none());

    // Mended, the bad file is the only one redone.
    tone_file(&d.join("in/b.wav"), 330.0);
    let again = demix(d, &args);
    assert_ok(&again);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("1 file(s) inspected, 2 already complete"),
        "{stdout}"
    );
    assert_entries(&d.join("out"), &["a", "b", "c", "demix-report.json"]);
}

#[test]
fn several_files_each_get_a_folder_and_midi_names_a_file_in_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tone_file(&d.join("a.wav"), 440.0);
    tone_file(&d.join("b.wav"), 550.0);
    let mut args = vec![
        "inspect",
        "a.wav",
        "b.wav",
        "-o",
        "out",
        "-k",
        "1",
        "--midi",
        "midi/notes.mid",
    ];
    args.extend(FAST);
    assert_ok(&demix(d, &args));
    assert_entries(d, &["a.wav", "b.wav", "out"]);
    assert_entries(&d.join("out"), &["a", "b", "demix-report.json"]);
    for track in ["a", "b"] {
        assert!(d.join("out").join(track).join("midi/notes.mid").is_file());
        assert!(d.join("out").join(track).join("components.json").is_file());
    }
}

#[test]
fn a_midi_path_outside_the_output_folders_is_rejected_with_several_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tone_file(&d.join("a.wav"), 440.0);
    tone_file(&d.join("b.wav"), 550.0);
    for bad in ["../notes.mid", "/tmp/notes.mid", "sub/../../notes.mid"] {
        let out = demix(
            d,
            &["inspect", "a.wav", "b.wav", "-o", "out", "--midi", bad],
        );
        assert_usage_error(&out, &["--midi", bad, "such as notes.mid"]);
        assert_entries(d, &["a.wav", "b.wav"]);
    }
}

#[test]
fn a_midi_name_that_inspect_writes_itself_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tone_file(&d.join("a.wav"), 440.0);
    tone_file(&d.join("b.wav"), 550.0);
    for bad in ["activations.csv", "audio/x.mid"] {
        let out = demix(
            d,
            &["inspect", "a.wav", "b.wav", "-o", "out", "--midi", bad],
        );
        assert_usage_error(&out, &["--midi", bad, "inspect writes"]);
        assert_entries(d, &["a.wav", "b.wav"]);
    }
    // A single file's MIDI path inside its output folder, checked by the library.
    let mut args = vec!["inspect", "a.wav", "-o", "out", "--midi", "out/a/W.npy"];
    args.extend(FAST);
    let out = demix(d, &args);
    assert_fails(
        &out,
        &["a.wav", "would replace one of the files inspect writes"],
    );
    assert_entries(d, &["a.wav", "b.wav"]);
}
