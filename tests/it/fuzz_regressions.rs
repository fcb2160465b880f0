//! The stable-Rust counterpart of the cargo-fuzz targets for template files, run reports and
//! MIDI files (fuzz/fuzz_targets/templates_load.rs, report_load.rs, midi_read.rs): every file
//! in tests/data/fuzz/TARGET/ (the seeds of each corpus, and the inputs of past findings) is
//! read again, then thousands of seeded mutations of the seeds. No reader may panic or make a
//! giant allocation, and each must pass the target's checks (fuzz_checks.rs): one-line errors,
//! and what reads is usable. (tests/it/hostile.rs does the same for the decoder.)

use std::collections::BTreeMap;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use demix::formats::midi::{NoteEvent, read_midi};

use crate::alloc::largest_allocation;
use crate::common::{FAST, TestRng, demix, two_tones};
use crate::fuzz_checks;
use crate::hostile::mutate;

/// No single allocation may be larger than this while reading a file of a few KiB.
const GIANT: usize = 16 << 20;

/// The files of tests/data/fuzz/`target`, by name.
fn committed(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// What reading one input came to: `"ok"` or the kind of error.
type Outcome = String;

/// Reads `bytes` with `read`, one of the checks of fuzz_checks.rs; panics naming `what` if it
/// panicked (in the reader or in a check) or allocated a giant buffer.
fn survive(what: &str, bytes: &[u8], read: impl FnOnce(&[u8]) -> Result<(), String>) -> Outcome {
    let caught = panic::catch_unwind(AssertUnwindSafe(|| largest_allocation(|| read(bytes))));
    let Ok((result, largest)) = caught else {
        panic!("{what} panicked ({} bytes)", bytes.len());
    };
    assert!(largest < GIANT, "{what}: an allocation of {largest} bytes");
    match result {
        Ok(()) => "ok".into(),
        Err(message) => kind_of(&message),
    }
}

/// The kind of an error message, for counting which paths the mutations reached.
fn kind_of(message: &str) -> Outcome {
    const KINDS: [&str; 8] = [
        "not a readable .npz archive",
        "not a supported .npy file",
        "not JSON",
        "not a demix report",
        "format '",
        "\"files\"",
        "not a report this version",
        "not a standard MIDI file",
    ];
    KINDS
        .iter()
        .find(|k| message.contains(*k))
        .map_or("other", |k| k)
        .to_string()
}

/// Runs `mutations` seeded mutations of each seed of `target` through `read`, and returns how
/// many ended in each outcome.
fn mutate_seeds(
    target: &str,
    mutations: usize,
    mut read: impl FnMut(&[u8]) -> Result<(), String>,
) -> BTreeMap<Outcome, usize> {
    let mut outcomes = BTreeMap::new();
    for (name, valid) in committed(target)
        .into_iter()
        .filter(|(n, _)| n.starts_with("seed-"))
    {
        let mut rng = TestRng::new(2025);
        for case in 0..mutations {
            let bytes = mutate(&valid, &mut rng);
            let outcome = survive(&format!("{target}: {name} case {case}"), &bytes, &mut read);
            *outcomes.entry(outcome).or_default() += 1;
        }
    }
    outcomes
}

/// A scratch file for the readers that take a path, in a folder of its own.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn committed_fuzz_inputs_read_without_panicking_and_seeds_read_cleanly() {
    let (_dir, npz) = scratch("t.npz");
    let (_dir2, json) = scratch("r.json");
    type Reader<'a> = Box<dyn Fn(&[u8]) -> Result<(), String> + 'a>;
    let targets: [(&str, Reader); 3] = [
        (
            "templates_load",
            Box::new(|b| fuzz_checks::templates(b, &npz)),
        ),
        ("report_load", Box::new(|b| fuzz_checks::report(b, &json))),
        ("midi_read", Box::new(fuzz_checks::midi)),
    ];
    for (target, read) in &targets {
        let files = committed(target);
        assert!(
            files.iter().any(|(n, _)| n.starts_with("seed-")),
            "{target}"
        );
        for (name, bytes) in files {
            let outcome = survive(&format!("{target}/{name}"), &bytes, read);
            if name.starts_with("seed-") {
                assert_eq!(outcome, "ok", "{target}/{name}");
            }
        }
    }
}

#[test]
fn seeded_mutations_of_template_files_never_panic_nor_allocate_giant_buffers() {
    let (_dir, path) = scratch("t.npz");
    let outcomes = mutate_seeds("templates_load", 3000, |b| fuzz_checks::templates(b, &path));
    // Clean loads, and errors at each level: the archive, a member, the arrays' contents.
    for kind in [
        "ok",
        "not a readable .npz archive",
        "not a supported .npy file",
        "other",
    ] {
        assert!(
            outcomes.contains_key(kind),
            "none ended {kind}: {outcomes:?}"
        );
    }
}

#[test]
fn seeded_mutations_of_run_reports_never_panic_and_what_loads_round_trips() {
    let (_dir, path) = scratch("r.json");
    let mut outcomes = mutate_seeds("report_load", 2000, |b| fuzz_checks::report(b, &path));
    // Byte mutations mostly break the JSON; these change its values instead.
    let mut rng = TestRng::new(7);
    for (name, valid) in committed("report_load")
        .into_iter()
        .filter(|(n, _)| n.starts_with("seed-"))
    {
        let value: Value = serde_json::from_slice(&valid).unwrap();
        for case in 0..2000 {
            let mut value = value.clone();
            mutate_json(&mut value, &mut rng);
            let bytes = serde_json::to_vec(&value).unwrap();
            let what = format!("report_load: {name} value case {case}");
            let outcome = survive(&what, &bytes, |b| fuzz_checks::report(b, &path));
            *outcomes.entry(outcome).or_default() += 1;
        }
    }
    for kind in [
        "ok",
        "not JSON",
        "not a demix report",
        "\"files\"",
        "not a report this version",
    ] {
        assert!(
            outcomes.contains_key(kind),
            "none ended {kind}: {outcomes:?}"
        );
    }
}

/// One seeded change to a JSON value: a node somewhere in it replaced (by another type, an
/// extreme number, a string with a newline, deep nesting) or a field removed.
fn mutate_json(value: &mut Value, rng: &mut TestRng) {
    // Walks down to a random node, stopping at each level with probability 1/4.
    let mut node = value;
    loop {
        let children = match node {
            Value::Array(items) => items.len(),
            Value::Object(fields) => fields.len(),
            _ => 0,
        };
        if children == 0 || rng.next_u64().is_multiple_of(4) {
            break;
        }
        let i = (rng.next_u64() % children as u64) as usize;
        node = match node {
            Value::Array(items) => &mut items[i],
            Value::Object(fields) => {
                if rng.next_u64().is_multiple_of(8) {
                    let key = fields.keys().nth(i).unwrap().clone();
                    fields.remove(&key);
                    return;
                }
                fields.values_mut().nth(i).unwrap()
            }
            _ => unreachable!(),
        };
    }
    let deep = (0..200).fold(Value::Null, |v, _| Value::Array(vec![v]));
    *node = match rng.next_u64() % 10 {
        0 => Value::Null,
        1 => Value::Bool(true),
        2 => serde_json::json!(-1),
        3 => serde_json::json!(u64::MAX),
        4 => serde_json::json!(1e308),
        5 => serde_json::json!(0.029_999_999_329_447_746),
        6 => Value::String("a\nb/../\u{fffd}".into()),
        7 => Value::Array(Vec::new()),
        8 => serde_json::json!({"lossy": "x", "hex": "zz"}),
        _ => deep,
    };
}

#[test]
fn seeded_mutations_of_midi_files_never_panic_and_what_reads_is_well_formed() {
    let outcomes = mutate_seeds("midi_read", 5000, fuzz_checks::midi);
    for kind in ["ok", "not a standard MIDI file"] {
        assert!(
            outcomes.contains_key(kind),
            "none ended {kind}: {outcomes:?}"
        );
    }
}

/// Found by review beside midi_read: every note-off searched one list of all the notes
/// sounding and removed from its front, so a file of n notes held on one key took n² steps
/// (6 s for 1 MB). 400 000 such notes now read in well under a second.
#[test]
fn regression_many_notes_held_on_one_key_read_in_linear_time() {
    let n = 400_000;
    let mut track = vec![0x00, 0x90, 60, 100];
    for _ in 1..n {
        track.extend_from_slice(&[0x00, 60, 100]); // running status: another note-on
    }
    track.extend_from_slice(&[0x01, 60, 0]); // a tick later, the note-offs
    for _ in 1..n {
        track.extend_from_slice(&[0x00, 60, 0]);
    }
    track.extend_from_slice(&[0x00, 0xFF, 0x2F, 0x00]);
    let mut bytes = b"MThd\0\0\0\x06\0\0\0\x01\x01\xE0MTrk".to_vec();
    bytes.extend_from_slice(&(track.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&track);

    let start = Instant::now();
    let notes = read_midi(&bytes).unwrap();
    let took = start.elapsed();
    assert_eq!(notes.len(), n);
    let one_tick = 0.5 / 480.0;
    assert!(notes.iter().all(|note| note.offset_s == one_tick));
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// Notes never ended keep the order they began in, and a note-off ends the oldest note of its
/// key and channel, as before notes were queued per key.
#[test]
fn unended_notes_and_repeated_keys_keep_their_order() {
    // Tick 0: C4 (velocity 10) and E4 on channel 1, C4 (20) on channel 2, C4 (30) on
    // channel 1 again. Tick 480: one C4 off on channel 1, which ends the velocity-10 note.
    let track = [
        0x00, 0x90, 60, 10, 0x00, 0x90, 64, 50, 0x00, 0x91, 60, 20, 0x00, 0x90, 60, 30, 0x83, 0x60,
        0x80, 60, 0, 0x00, 0xFF, 0x2F, 0x00,
    ];
    let mut bytes = b"MThd\0\0\0\x06\0\0\0\x01\x01\xE0MTrk".to_vec();
    bytes.extend_from_slice(&(track.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&track);
    let notes = read_midi(&bytes).unwrap();
    let note = |offset_s, pitch, velocity| NoteEvent {
        onset_s: 0.0,
        offset_s,
        pitch,
        velocity,
    };
    assert_eq!(
        notes,
        [
            note(0.5, 60, 10),
            note(0.5, 60, 20),
            note(0.5, 60, 30),
            note(0.5, 64, 50)
        ]
    );
}

/// Found by report_load: serde_json read some numbers one bit off (0.029999999329447746,
/// which is `--sparsity 0.03` as recorded), so a rerun compared its parameters with changed
/// ones and refused files it had finished ("made with other parameters").
#[test]
fn regression_a_rerun_with_a_sparsity_of_0_03_finds_its_files_complete() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("in")).unwrap();
    demix::audio::write_wav(
        dir.path().join("in/a.wav"),
        &two_tones(1, 200.0),
        demix::audio::OutputFormat::Int16,
    )
    .unwrap();
    let run = || {
        let mut args = vec!["separate", "in", "-o", "out", "--sparsity", "0.03"];
        args.extend_from_slice(&FAST);
        demix(dir.path(), &args)
    };
    assert!(run().status.success());
    let again = run();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && stdout.contains("0 file(s) separated, 1 already complete"),
        "{stdout}{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
