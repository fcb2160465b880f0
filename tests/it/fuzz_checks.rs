//! What the readers of untrusted files must make of any bytes, in one place for the cargo-fuzz
//! targets (fuzz/fuzz_targets/templates_load.rs, report_load.rs, midi_read.rs include this
//! file) and their stable counterpart (fuzz_regressions.rs). Each check returns the reader's
//! error message, or `Ok` once what was read passed its checks; it panics where the reader
//! broke a promise: an error of more than one line, or something read that is not usable.
//! Panics and giant allocations inside the readers are the callers' to catch.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use demix::Templates;
use demix::batch::Report;
use demix::formats::midi::{read_midi, write_midi};
use demix::formats::npy::read_npy;

/// A file for the readers that take a path, for this process alone: in /dev/shm where there
/// is one, so that no disk is involved.
pub fn scratch_file(name: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("demix-fuzz-{}-{name}", std::process::id()))
}

/// Writes `bytes` to `path` as a new file: ext4 flushes a file truncated and written again to
/// the disk when it is closed, which made thousands of rewrites take seconds.
fn rewrite(path: &Path, bytes: &[u8]) {
    let _ = fs::remove_file(path);
    fs::write(path, bytes).expect("the scratch file is writable");
}

/// The error's message, which must be one line, and not a long one (text quoted from the file
/// is cut short).
fn one_line(error: impl std::fmt::Display) -> String {
    let message = error.to_string();
    assert!(
        !message.contains('\n') && message.chars().count() < 500,
        "an error of more than a line: {message}"
    );
    message
}

/// The bytes as an `.npz` template file (written to `scratch`), and as one `.npy` array:
/// templates that load must fit their own settings.
pub fn templates(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    if let Err(e) = read_npy(&mut &bytes[..]) {
        one_line(e);
    }
    rewrite(scratch, bytes);
    let t = Templates::load(scratch).map_err(one_line)?;
    assert_eq!(t.w.nrows(), t.n_fft / 2 + 1);
    assert!(!t.is_empty() && t.w.iter().all(|a| a.is_finite() && *a >= 0.0));
    if let Some(s) = &t.spatial {
        let (bins, c, c2) = s.dim();
        assert!(bins == t.w.nrows() && c == c2 && c >= 2, "{:?}", s.dim());
    }
    Ok(())
}

/// The bytes as a run report (written to `scratch`): a report that loads must load again,
/// unchanged, once written back as `Report::save` writes it (a resumed run rewrites the report
/// it read).
pub fn report(bytes: &[u8], scratch: &Path) -> Result<(), String> {
    rewrite(scratch, bytes);
    let report = Report::load(scratch).map_err(one_line)?;
    let json = serde_json::to_vec_pretty(&report).expect("a report serializes");
    rewrite(scratch, &json);
    let again = Report::load(scratch).expect("a written report loads");
    assert_eq!(again, report, "the report changed in a round trip");
    Ok(())
}

/// The bytes as a standard MIDI file: the notes read must be well formed, sorted, and
/// writable again (or refused as beyond what MIDI can express).
pub fn midi(bytes: &[u8]) -> Result<(), String> {
    let notes = read_midi(bytes).map_err(one_line)?;
    for n in &notes {
        assert!(n.onset_s.is_finite() && n.onset_s >= 0.0, "{n:?}");
        assert!(n.offset_s.is_finite() && n.offset_s >= n.onset_s, "{n:?}");
        assert!(n.pitch <= 127 && (1..=127).contains(&n.velocity), "{n:?}");
    }
    assert!(notes.windows(2).all(|w| w[0].onset_s <= w[1].onset_s));
    if let Err(e) = write_midi(&mut Vec::new(), &notes) {
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    }
    Ok(())
}
