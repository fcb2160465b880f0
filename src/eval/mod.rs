//! How good separated sources are: BSS Eval v4 (as museval computes it), v3 (as mir_eval's
//! `bss_eval_sources` and `bss_eval_images` compute it), and SI-SDR.
//!
//! BSS Eval splits each estimate `ŝ` into the reference `s_true`, a spatial or filtering
//! distortion `e_spat`, interference from the other sources `e_interf` and artifacts
//! `e_artif`, using least-squares filters of [`EvalParams::with_filter_len`] taps (512 by
//! default) from the references to the estimate, and reports energy ratios in dB:
//!
//! | metric | ratio (images: v4, and v3 for several channels) | v3 with one channel (`bss_eval_sources`) |
//! |---|---|---|
//! | SDR | `‖s_true‖² / ‖e_spat + e_interf + e_artif‖²` | `‖s_true + e_spat‖² / ‖e_interf + e_artif‖²` |
//! | ISR | `‖s_true‖² / ‖e_spat‖²` | does not apply (`None`) |
//! | SIR | `‖s_true + e_spat‖² / ‖e_interf‖²` | the same |
//! | SAR | `‖s_true + e_spat + e_interf‖² / ‖e_artif‖²` | the same |
//!
//! - **v4** ([`Mode::V4`], `museval.evaluate` and `museval.metrics.bss_eval` with their
//!   defaults): the filters are fitted once on the whole track, then the ratios are computed in
//!   windows of 1 s every 1 s. Windows start at `t · hop` and only whole windows are used, so
//!   the samples after the last whole window are left out (a track shorter than one window is
//!   one window). A window in which any reference or any estimate is silent (its channels sum
//!   to zero at every sample) gives NaN for every source. A source's figure is the median over
//!   its windows, leaving out NaN and infinite values as museval's `TrackStore` does; it is NaN
//!   when no window is left.
//! - **v3** ([`Mode::V3`]): filters and ratios over the whole signal: with one channel,
//!   `mir_eval.separation.bss_eval_sources`; with several, `bss_eval_images`. A ratio whose
//!   denominator is exactly zero is `+∞` (the SIR of a lone source, for example).
//! - **SI-SDR** (Le Roux et al. 2019) of the whole signal, all channels together, without
//!   removing the mean: `‖α s‖² / ‖α s - ŝ‖²` with `α = ⟨ŝ, s⟩ / ‖s‖²`.
//!
//! Estimate `i` is scored against reference `i`; with [`EvalParams::with_permute`] every
//! assignment is tried and the one with the highest mean SIR is kept, as both Python packages
//! do with `compute_permutation=True`.

mod bss;
mod params;
mod permutation;
mod run;
mod scores;

use crate::audio::Audio;
use crate::error::Result;

pub use params::{
    DEFAULT_FILTER_LEN, DEFAULT_HOP, DEFAULT_WINDOW, EvalParams, Evaluator, MAX_FILTER_LEN,
    MAX_PERMUTED_SOURCES, Mode,
};
pub use scores::{Metrics, Scores, SourceScores, si_sdr};

/// Evaluates `estimates` against `references` (one [`Audio`] per source, all with the same
/// sample rate, channel count and length).
///
/// The parameters are checked on every call; to score many tracks with one set of settings,
/// check them once with [`EvalParams::check`] and call [`Evaluator::evaluate`].
///
/// # Errors
/// [`Error::Param`](crate::Error::Param) for parameters that fail [`EvalParams::check`]; [`Error::Eval`](crate::Error::Eval) for no
/// sources, unequal counts, a different sample rate, channel count or length, a silent
/// signal, a NaN or infinite sample, too many sources to permute, a window shorter than one
/// sample, or references so dependent that no filter can be fitted.
///
/// ```
/// use demix::audio::Audio;
/// use demix::eval::{evaluate, EvalParams};
///
/// // Two sources of pseudo-random noise, 2 s at 8 kHz; each estimate leaks 10 % of the other.
/// let noise = |seed: u32| -> Vec<f32> {
///     let mut x = seed;
///     (0..16_000)
///         .map(|_| {
///             x ^= x << 13;
///             x ^= x >> 17;
///             x ^= x << 5;
///             x as f32 / u32::MAX as f32 - 0.5
///         })
///         .collect()
/// };
/// let (a, b) = (noise(1), noise(2));
/// let leak = |x: &[f32], y: &[f32]| -> Vec<f32> { x.iter().zip(y).map(|(x, y)| x + 0.1 * y).collect() };
/// let references = vec![Audio::new(8000, vec![a.clone()])?, Audio::new(8000, vec![b.clone()])?];
/// let estimates = vec![Audio::new(8000, vec![leak(&a, &b)])?, Audio::new(8000, vec![leak(&b, &a)])?];
///
/// let scores = evaluate(&references, &estimates, &EvalParams::new())?;
/// // Interference 20 dB below the source; no artifacts.
/// assert!((scores.sources[0].metrics.sir - 20.0).abs() < 0.5);
/// assert!(scores.sources[0].metrics.sar > 60.0);
/// # Ok::<(), demix::Error>(())
/// ```
pub fn evaluate(references: &[Audio], estimates: &[Audio], params: &EvalParams) -> Result<Scores> {
    params.check()?.evaluate(references, estimates)
}
