//! All integration tests, in one binary (faster to build than one binary per file).

mod cli;
mod common;
mod decode;
mod eval;
mod inspect;
mod nmf;
mod separate;
mod sklearn;
mod stft;
