//! All integration tests, in one binary (faster to build than one binary per file).

mod alloc;
mod bands;
mod batch;
mod charts;
mod cli;
mod common;
mod decode;
mod drums;
mod eval;
mod flac;
mod fuzz_checks;
mod fuzz_regressions;
mod grouping;
mod handicaps;
mod hostile;
mod inspect;
mod inspect_sources;
mod inspect_stream;
mod learn_notes;
mod nmf;
mod pitch;
mod rank;
mod separate;
mod sklearn;
mod stft;
mod stream;
mod templates;

#[global_allocator]
static ALLOCATOR: alloc::Tracking = alloc::Tracking;
