#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod atomic;
pub mod audio;
pub mod error;
pub mod eval;
pub mod mask;
pub mod nmf;
pub mod npy;
pub mod separate;
pub mod stft;

pub use error::{Error, ParamError, Result};
