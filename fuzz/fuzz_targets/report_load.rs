//! Any bytes → `demix::batch::Report::load`. Loading may fail, with a one-line error, but must
//! not panic nor allocate without bound; a report that loads must load again, unchanged, once
//! written back (a resumed run rewrites the report it read). The checks are
//! tests/it/fuzz_checks.rs, which `cargo test` runs on the committed inputs too.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/it/fuzz_checks.rs"]
mod fuzz_checks;

/// `Report::load` takes a path: the bytes are written to this file first.
static SCRATCH: LazyLock<PathBuf> = LazyLock::new(|| fuzz_checks::scratch_file("r.json"));

fuzz_target!(|data: &[u8]| {
    let _ = fuzz_checks::report(data, &SCRATCH);
});
