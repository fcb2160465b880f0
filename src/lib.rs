#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod atomic;
pub mod audio;
pub mod batch;
pub mod error;
pub mod eval;
mod group;
mod hugepages;
pub mod inspect;
pub mod mask;
pub mod midi;
pub mod nmf;
pub mod notes;
pub mod npy;
pub mod plot;
pub mod separate;
mod spatial;
pub mod stft;
pub mod templates;

pub use error::{Error, ParamError, Result};
