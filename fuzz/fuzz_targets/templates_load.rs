//! Any bytes → `demix::Templates::load` (a `.npz` archive of `.npy` members), and the same
//! bytes → `demix::formats::npy::read_npy`. Loading may fail, with a one-line error, but must
//! neither panic nor allocate without bound (libFuzzer's -rss_limit_mb and -malloc_limit_mb
//! catch the latter); what loads must be templates separation can use. The checks are
//! tests/it/fuzz_checks.rs, which `cargo test` runs on the committed inputs too.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/it/fuzz_checks.rs"]
mod fuzz_checks;

/// `Templates::load` takes a path: the bytes are written to this file first.
static SCRATCH: LazyLock<PathBuf> = LazyLock::new(|| fuzz_checks::scratch_file("t.npz"));

fuzz_target!(|data: &[u8]| {
    let _ = fuzz_checks::templates(data, &SCRATCH);
});
