//! `demix inspect --source`: transcribing with templates learned from recordings of an
//! instrument's notes.

use std::fs;
use std::path::Path;

use demix::audio::{Audio, OutputFormat, write_wav};
use demix::formats::midi::read_midi;
use demix::inspect::notes::midi_to_hz;

use crate::common::{assert_ok, demix};
use crate::inspect::{RATE, onset_f_measure, pluck};

/// Writes `notes` (onset s, duration s, MIDI note, gain) as a mono WAV of `seconds`.
fn write_notes(path: &Path, seconds: f64, notes: &[(f64, f64, u8, f64)]) {
    let mut x = vec![0f32; (seconds * f64::from(RATE)) as usize];
    for &(onset, duration, midi, gain) in notes {
        pluck(&mut x, midi_to_hz(f64::from(midi)), onset, duration, gain);
    }
    let audio = Audio::new(RATE, vec![x]).unwrap();
    write_wav(path, &audio, OutputFormat::Float32).unwrap();
}

/// Learns three templates from C4, E4 and G4 played one after another, in `dir/notes.npz`.
fn learn_three_notes(dir: &Path) {
    let scale: Vec<(f64, f64, u8, f64)> = [60u8, 64, 67, 60, 64, 67]
        .iter()
        .enumerate()
        .map(|(i, &m)| (0.1 + 0.5 * i as f64, 0.4, m, 1.0))
        .collect();
    write_notes(&dir.join("scale.wav"), 3.2, &scale);
    let out = demix(
        dir,
        &[
            "learn",
            "scale.wav",
            "-k",
            "3",
            "--name",
            "keys",
            "-o",
            "notes.npz",
        ],
    );
    assert_ok(&out);
}

#[test]
fn learned_templates_of_an_instrument_transcribe_a_melody_of_its_notes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    learn_three_notes(d);
    // Another rhythm and order, with two notes sounding together.
    let melody = [
        (0.20, 0.30, 67, 0.8),
        (0.60, 0.50, 60, 1.0),
        (0.60, 0.50, 64, 0.7),
        (1.30, 0.25, 67, 0.9),
        (1.70, 0.40, 64, 1.0),
        (2.30, 0.30, 60, 0.9),
    ];
    write_notes(&d.join("melody.wav"), 3.0, &melody);
    let out = demix(
        d,
        &[
            "inspect",
            "melody.wav",
            "--source",
            "notes.npz",
            "--midi",
            "melody.mid",
            "-o",
            "out",
        ],
    );
    assert_ok(&out);

    let notes = read_midi(&fs::read(d.join("melody.mid")).unwrap()).unwrap();
    let reference: Vec<(f64, u8)> = melody.iter().map(|&(t, _, p, _)| (t, p)).collect();
    let estimate: Vec<(f64, u8)> = notes.iter().map(|n| (n.onset_s, n.pitch)).collect();
    let f = onset_f_measure(&reference, &estimate, 0.05);
    assert!(f >= 0.9, "onset F {f:.3}: {notes:#?}");

    // The components are the three templates, named after the source, with their notes.
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("out/melody/components.json")).unwrap()).unwrap();
    let components = json["components"].as_array().unwrap();
    let mut ids: Vec<&str> = components
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["keys1", "keys2", "keys3"], "{json}");
    let mut pitches: Vec<u64> = components
        .iter()
        .map(|c| c["pitch"].as_u64().unwrap())
        .collect();
    pitches.sort_unstable();
    assert_eq!(pitches, [60, 64, 67], "{json}");
}

#[test]
fn learned_templates_and_note_templates_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    learn_three_notes(d);
    write_notes(&d.join("melody.wav"), 1.0, &[(0.2, 0.3, 60, 1.0)]);
    let out = demix(
        d,
        &[
            "inspect",
            "melody.wav",
            "--source",
            "notes.npz",
            "--notes",
            "C3-C5",
            "-o",
            "out",
        ],
    );
    // clap's own message, over several lines.
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--source") && stderr.contains("--notes"),
        "{stderr}"
    );
    assert!(!d.join("out").exists());
}

#[test]
fn learned_templates_of_another_sample_rate_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    learn_three_notes(d);
    let x = vec![0.1f32; 44_100];
    let audio = Audio::new(44_100, vec![x]).unwrap();
    write_wav(d.join("other.wav"), &audio, OutputFormat::Int16).unwrap();
    let out = demix(
        d,
        &["inspect", "other.wav", "--source", "notes.npz", "-o", "out"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("other.wav") && stderr.contains("sample rate"),
        "{stderr}"
    );
    assert!(!d.join("out/other").exists());
}
