//! `demix learn --notes`: one template per note, learned from recordings of an instrument's
//! notes played one at a time, which `demix inspect --source` transcribes with.

use std::fs;
use std::path::Path;

use demix::audio::{Audio, OutputFormat, write_wav};
use demix::formats::midi::read_midi;
use demix::inspect::notes::midi_to_hz;
use demix::sources::Templates;

use crate::common::{assert_ok, demix};
use crate::inspect::{RATE, onset_f_measure};

/// A reed-like note, far from the `n^-1` partials of inspect's harmonic templates: odd
/// partials only, the third twice as loud as the fundamental, a 10 ms attack and a 30 ms
/// release.
fn reed(out: &mut [f32], f0: f64, onset: f64, duration: f64, gain: f64) {
    let rate = f64::from(RATE);
    let start = (onset * rate) as usize;
    let end = (((onset + duration + 0.03) * rate) as usize).min(out.len());
    let partials = [(1.0, 0.5), (3.0, 1.0), (5.0, 0.6), (7.0, 0.3), (9.0, 0.15)];
    for (i, sample) in out.iter_mut().enumerate().take(end).skip(start) {
        let t = (i - start) as f64 / rate;
        let envelope = (t / 0.01).min(1.0) * (1.0 - (t - duration).max(0.0) / 0.03);
        let tone: f64 = partials
            .iter()
            .filter(|(n, _)| n * f0 < 0.9 * rate / 2.0)
            .map(|(n, a)| a * (std::f64::consts::TAU * n * f0 * t).sin())
            .sum();
        *sample += (0.2 * gain * envelope * tone) as f32;
    }
}

/// Writes `notes` (onset s, duration s, MIDI note, gain) played by [`reed`] as a mono WAV.
fn write_reed(path: &Path, seconds: f64, notes: &[(f64, f64, u8, f64)]) {
    let mut x = vec![0f32; (seconds * f64::from(RATE)) as usize];
    for &(onset, duration, midi, gain) in notes {
        reed(&mut x, midi_to_hz(f64::from(midi)), onset, duration, gain);
    }
    write_wav(
        path,
        &Audio::new(RATE, vec![x]).unwrap(),
        OutputFormat::Float32,
    )
    .unwrap();
}

/// The reed's notes C3 to C6 one at a time, rising, but for C#4 and A#4.
fn write_scale(path: &Path) -> Vec<u8> {
    let played: Vec<u8> = (48..=84).filter(|&m| m != 61 && m != 70).collect();
    let scale: Vec<(f64, f64, u8, f64)> = played
        .iter()
        .enumerate()
        .map(|(i, &m)| (0.1 + 0.5 * i as f64, 0.4, m, 0.6 + 0.1 * (i % 4) as f64))
        .collect();
    write_reed(path, 0.5 + 0.5 * played.len() as f64, &scale);
    played
}

/// A melody of the reed with chords of two notes, none of them C#4 or A#4, low enough that
/// third partials (an octave and a fifth up) fall in the range C3-C6.
const MELODY: [(f64, f64, u8, f64); 12] = [
    (0.20, 0.30, 55, 0.8),
    (0.60, 0.50, 48, 1.0),
    (0.60, 0.50, 52, 0.7),
    (1.30, 0.25, 60, 0.9),
    (1.70, 0.40, 50, 1.0),
    (1.70, 0.40, 57, 0.8),
    (2.30, 0.30, 62, 0.9),
    (2.80, 0.30, 53, 0.7),
    (3.20, 0.60, 51, 1.0),
    (3.20, 0.60, 58, 0.8),
    (4.00, 0.30, 64, 0.9),
    (4.40, 0.40, 56, 0.8),
];

/// Onset F of the notes `demix inspect melody.wav ARGS --midi` writes, against [`MELODY`].
fn transcribe(d: &Path, args: &[&str], midi: &str) -> f64 {
    let mut all = vec!["inspect", "melody.wav", "--midi", midi, "-o", "out"];
    all.extend_from_slice(args);
    assert_ok(&demix(d, &all));
    let notes = read_midi(&fs::read(d.join(midi)).unwrap()).unwrap();
    let reference: Vec<(f64, u8)> = MELODY.iter().map(|&(t, _, p, _)| (t, p)).collect();
    let estimate: Vec<(f64, u8)> = notes.iter().map(|n| (n.onset_s, n.pitch)).collect();
    onset_f_measure(&reference, &estimate, 0.05)
}

#[test]
fn note_templates_learned_from_an_instruments_notes_transcribe_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_scale(&d.join("scale.wav"));
    let out = demix(
        d,
        &["learn", "scale.wav", "--notes", "C3-C6", "-o", "reed.npz"],
    );
    assert_ok(&out);
    // The notes the recording does not play are named.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("2 not heard") && said.contains("C#4 A#4"),
        "{said}"
    );
    let learned = Templates::load(&d.join("reed.npz")).unwrap();
    assert_eq!(learned.notes, Some((48..=84).collect::<Vec<u8>>()));
    assert_eq!(learned.templates(), 37);

    write_reed(&d.join("melody.wav"), 5.2, &MELODY);
    let f_learned = transcribe(d, &["--source", "reed.npz"], "learned.mid");
    // The report names the templates, so that a batch run again with others redoes its files.
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("out/demix-report.json")).unwrap()).unwrap();
    let params = &report["files"][0]["params"];
    assert_eq!(params["sources"], serde_json::json!(["reed"]), "{params}");
    assert_eq!(params["notes"], "C3-C6", "{params}");
    assert!(params["harmonic_decay"].is_null(), "{params}");
    let f_generic = transcribe(d, &["--notes", "C3-C6", "--force"], "generic.mid");
    // The harmonic templates read the reed's loud third partial as notes of their own.
    assert!(
        f_learned >= 0.9 && f_learned > f_generic + 0.05,
        "onset F {f_learned:.3} learned, {f_generic:.3} with harmonic templates"
    );
}

#[test]
fn note_templates_are_inspected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_scale(&d.join("scale.wav"));
    for (out, args) in [
        ("a.npz", vec!["--notes", "C3-C6"]),
        ("b.npz", vec!["-k", "4"]),
    ] {
        let mut all = vec!["learn", "scale.wav", "-o", out];
        all.extend(args);
        assert_ok(&demix(d, &all));
    }
    write_reed(&d.join("melody.wav"), 1.0, &MELODY[..1]);
    let out = demix(
        d,
        &[
            "inspect",
            "melody.wav",
            "--source",
            "a.npz",
            "--source",
            "b.npz",
            "-o",
            "out",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("transcribe alone"), "{stderr}");
    assert!(!d.join("out").exists());
    // Alone, they take the options of note templates; without note templates those are refused.
    let with = [
        "--source",
        "a.npz",
        "--note-confidence",
        "0",
        "--fixed-templates",
    ];
    assert_ok(&demix(
        d,
        &[&["inspect", "melody.wav", "-o", "out"][..], &with].concat(),
    ));
    let out = demix(
        d,
        &["inspect", "melody.wav", "--fixed-templates", "-o", "other"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!d.join("other").exists());
}

#[test]
fn notes_the_frames_cannot_hold_are_refused_naming_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_scale(&d.join("scale.wav"));
    // C8 (4186 Hz) is above 95 % of the Nyquist frequency of 8 kHz audio.
    let low = vec![0.1f32; 8_000];
    write_wav(
        d.join("low.wav"),
        &Audio::new(8_000, vec![low]).unwrap(),
        OutputFormat::Int16,
    )
    .unwrap();
    let out = demix(d, &["learn", "low.wav", "--notes", "C7-C8", "-o", "x.npz"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("low.wav") && stderr.contains("C8"),
        "{stderr}"
    );
    assert!(!d.join("x.npz").exists());
    // A note range is checked as inspect --notes checks it, before any audio is read.
    let out = demix(
        d,
        &["learn", "scale.wav", "--notes", "C5-C3", "-o", "x.npz"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Options of a free fit are refused with --notes, which fits KL with combs held.
    for option in [
        ["-k", "3"],
        ["--loss", "is"],
        ["--smoothness", "1"],
        ["--restarts", "2"],
    ] {
        let args = [
            &["learn", "scale.wav", "--notes", "C3-C6", "-o", "x.npz"][..],
            &option,
        ];
        let out = demix(d, &args.concat());
        assert_eq!(out.status.code(), Some(2), "{option:?}: {out:?}");
    }
    assert!(!d.join("x.npz").exists());
}
