#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod atomic;
pub mod audio;
pub mod error;
mod group;
pub mod mask;
pub mod nmf;
pub mod npy;
pub mod separate;
pub mod stft;
pub mod templates;

pub use error::{Error, ParamError, Result};
