#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod atomic;
pub mod audio;
pub mod batch;
pub mod error;
pub mod eval;
pub mod formats;
mod hugepages;
pub mod inspect;
pub mod nmf;
pub mod separate;
pub mod sources;
pub mod spectral;

pub use error::{Error, ParamError, Result};
