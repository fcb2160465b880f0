//! Any bytes → `demix::formats::midi::read_midi`. Reading may fail, with a one-line error, but
//! must neither panic, nor allocate without bound, nor take long (libFuzzer's -timeout); the
//! notes read must be well formed and writable again. The checks are tests/it/fuzz_checks.rs,
//! which `cargo test` runs on the committed inputs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/it/fuzz_checks.rs"]
mod fuzz_checks;

fuzz_target!(|data: &[u8]| {
    let _ = fuzz_checks::midi(data);
});
