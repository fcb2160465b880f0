//! Separate mixed audio recordings into stems with non-negative matrix factorization.
//!
//! The pipeline, one module per stage, each using only the stages before it:
//!
//! ```text
//! audio::read_audio ─► spectral::Stft ─► nmf::fit ─► spectral masks / Wiener filter ─► stems
//!     (decode)          (|STFT|, summed     (W·H, β-       (soft masks, inverse STFT)     (WAV)
//!                        over channels)      divergence)
//! ```
//!
//! [`sources`] holds what the stems are (learned [`Templates`], grouping, names),
//! [`separate`](mod@separate) the whole job, [`inspect`](mod@inspect) the notes that play
//! when, [`eval`] BSS Eval scores, [`batch`] whole folders, and [`formats`] the files that are
//! not audio.
//!
//! Named stems in a few lines: learn each source from an isolated example, then separate a
//! mixture with the templates held fixed.
//!
//! ```
//! use demix::{Audio, NmfParams, SeparateParams, learn};
//! let tone = |hz: f32| -> Vec<f32> {
//!     (0..16_000).map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / 8_000.0).sin()).collect()
//! };
//! let (low, high) = (Audio::new(8_000, vec![tone(110.0)])?, Audio::new(8_000, vec![tone(880.0)])?);
//! let stft = Default::default();
//! let bass = learn("bass", &[low.clone()], &stft, &NmfParams::new(2), &mut |_| {})?;
//! let lead = learn("lead", &[high.clone()], &stft, &NmfParams::new(2), &mut |_| {})?;
//! let mix: Vec<f32> = low.channels[0].iter().zip(&high.channels[0]).map(|(a, b)| a + b).collect();
//! let mix = Audio::new(8_000, vec![mix])?;
//! let params = SeparateParams { templates: vec![bass, lead], nmf: NmfParams::new(0), ..Default::default() };
//! let separation = params.check()?.analyze(&mix, &mut |_| {})?;
//! let names: Vec<&str> = separation.sources.iter().map(|s| s.name.as_str()).collect();
//! assert_eq!(names, ["bass", "lead"]);
//! let stems = separation.render_to_memory(&mix)?; // one Audio per name, summing to the mix
//! let error: f32 = stems[0].channels[0].iter().zip(&low.channels[0]).map(|(a, b)| (a - b).abs()).sum();
//! assert!(error / 16_000.0 < 0.05);
//! # Ok::<(), demix::Error>(())
//! ```
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
pub mod rank;
pub mod separate;
pub mod sources;
pub mod spectral;

pub use audio::{Audio, read_audio};
pub use error::{Error, ParamError, Result};
pub use eval::evaluate;
pub use inspect::inspect;
pub use nmf::{Nmf, NmfParams, fit, select_rank};
pub use rank::choose_rank;
pub use separate::{SeparateParams, Separation, Separator, analyze, separate, separate_file};
pub use sources::{Templates, learn};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
