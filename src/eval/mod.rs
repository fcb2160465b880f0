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
mod linalg;

use std::ops::Range;

use crate::audio::Audio;
use crate::error::{Error, EvalError, Param, ParamError, Property, Result, Side};

use bss::{Correlations, Energies, Filters, Projector, Track};

/// Which BSS Eval to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// BSS Eval v4 as museval computes it: filters fitted on the whole track, ratios in
    /// windows, median over windows (the default).
    #[default]
    V4,
    /// BSS Eval v3 as mir_eval computes it: `bss_eval_sources` for one channel,
    /// `bss_eval_images` for several, over the whole signal.
    V3,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::V4 => "v4",
            Mode::V3 => "v3",
        })
    }
}

/// The most sources [`EvalParams::with_permute`] tries every assignment of.
pub const MAX_PERMUTED_SOURCES: usize = 9;

/// Settings of an evaluation. Build with [`EvalParams::new`] and the `with_*` setters; every
/// setter states its default.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalParams {
    mode: Mode,
    filter_len: usize,
    window: f64,
    hop: f64,
    permute: bool,
}

impl Default for EvalParams {
    fn default() -> Self {
        EvalParams::new()
    }
}

impl EvalParams {
    /// BSS Eval v4 with 512-tap filters, 1 s windows and hops, estimates matched in order.
    pub fn new() -> EvalParams {
        EvalParams {
            mode: Mode::V4,
            filter_len: 512,
            window: 1.0,
            hop: 1.0,
            permute: false,
        }
    }

    /// Which BSS Eval (default [`Mode::V4`]).
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Taps of the distortion filters (default 512, as in both Python packages).
    pub fn with_filter_len(mut self, taps: usize) -> Self {
        self.filter_len = taps;
        self
    }

    /// Window of v4 in seconds (default 1); `floor(seconds · sample rate)` samples.
    pub fn with_window(mut self, seconds: f64) -> Self {
        self.window = seconds;
        self
    }

    /// Hop between v4 windows in seconds (default 1); `floor(seconds · sample rate)` samples.
    pub fn with_hop(mut self, seconds: f64) -> Self {
        self.hop = seconds;
        self
    }

    /// Try every assignment of estimates to references and keep the one with the highest mean
    /// SIR (default off: estimate `i` belongs to reference `i`).
    pub fn with_permute(mut self, permute: bool) -> Self {
        self.permute = permute;
        self
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Taps of the distortion filters.
    pub fn filter_len(&self) -> usize {
        self.filter_len
    }

    /// The v4 window in seconds.
    pub fn window(&self) -> f64 {
        self.window
    }

    /// The v4 hop in seconds.
    pub fn hop(&self) -> f64 {
        self.hop
    }

    /// Whether every assignment is tried.
    pub fn permute(&self) -> bool {
        self.permute
    }

    /// Checks every parameter that does not depend on the data.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check(&self) -> Result<(), ParamError> {
        if self.filter_len == 0 {
            return Err(ParamError::OutOfRange {
                param: Param::FilterLen,
                expected: "at least 1",
                got: 0.0,
            });
        }
        for (name, value) in [(Param::EvalWindow, self.window), (Param::EvalHop, self.hop)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ParamError::OutOfRange {
                    param: name,
                    expected: "a finite number of seconds above 0",
                    got: value,
                });
            }
        }
        Ok(())
    }
}

/// SDR, SIR, SAR and ISR in dB, of one source in one window or over a whole track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// Source to distortion ratio.
    pub sdr: f64,
    /// Source to interference ratio.
    pub sir: f64,
    /// Source to artifacts ratio.
    pub sar: f64,
    /// Source image to spatial distortion ratio; `None` where it does not apply (v3 with one
    /// channel, which is `bss_eval_sources`).
    pub isr: Option<f64>,
}

impl Metrics {
    fn nan(with_isr: bool) -> Metrics {
        Metrics {
            sdr: f64::NAN,
            sir: f64::NAN,
            sar: f64::NAN,
            isr: with_isr.then_some(f64::NAN),
        }
    }
}

/// The scores of one reference source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceScores {
    /// The index of the estimate scored against this reference (its own index unless
    /// [`EvalParams::with_permute`] chose another).
    pub estimate: usize,
    /// BSS Eval: v4, the median over windows; v3, the whole-signal value.
    pub metrics: Metrics,
    /// Scale-invariant SDR of the whole signal, in dB.
    pub si_sdr: f64,
    /// v4 only: the metrics of each window, NaN in windows that were skipped.
    pub frames: Vec<Metrics>,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// The BSS Eval that was computed.
    pub mode: Mode,
    /// One entry per reference, in the order given.
    pub sources: Vec<SourceScores>,
    /// The median over sources of each metric, leaving out NaN values (NaN when none is left).
    pub median: Metrics,
    /// The median over sources of the SI-SDR.
    pub median_si_sdr: f64,
    /// v4: the window and hop in samples; v3: the signal length, twice.
    pub window: (usize, usize),
    /// Number of windows (1 for v3).
    pub frames: usize,
    /// Windows left out because a reference or an estimate is silent in them.
    pub silent_frames: usize,
    /// The largest diagonal loading, relative to the mean diagonal, that had to be added to a
    /// correlation matrix of the references to solve for the filters (0 almost always; see the
    /// README). Nonzero only when the references are nearly linearly dependent, as pure tones
    /// are; NumPy's LU solve then returns an unstable solution, so the Python packages' figures
    /// can differ.
    pub loading: f64,
}

/// Evaluates `estimates` against `references` (one [`Audio`] per source, all with the same
/// sample rate, channel count and length).
///
/// # Errors
/// [`Error::Param`] for parameters that fail [`EvalParams::check`]; [`Error::Eval`] for no
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
    params.check()?;
    check_inputs(references, estimates, params)?;
    let first = &references[0];
    let (n, rate, channels, sources) = (
        first.len(),
        first.sample_rate,
        first.num_channels(),
        references.len(),
    );
    let l = params.filter_len;
    let track = Track {
        refs: as_track(references),
        ests: as_track(estimates),
    };

    let (window, hop) = match params.mode {
        Mode::V4 => (samples(params.window, rate)?, samples(params.hop, rate)?),
        Mode::V3 => (n, n),
    };
    let windows: Vec<Option<Range<usize>>> = framing(window, hop, n)
        .into_iter()
        .map(|w| {
            let silent = bss::any_silent(&track.refs, &w) || bss::any_silent(&track.ests, &w);
            (!silent).then_some(w)
        })
        .collect();
    let silent_frames = windows.iter().filter(|w| w.is_none()).count();

    // Filters fitted once on the whole signal. museval adds the machine epsilon to the
    // diagonal; mir_eval does not.
    let eps = match params.mode {
        Mode::V4 => f64::EPSILON,
        Mode::V3 => 0.0,
    };
    let pairs: Vec<(usize, usize)> = if params.permute {
        (0..sources)
            .flat_map(|j| (0..sources).map(move |e| (j, e)))
            .collect()
    } else {
        (0..sources).map(|j| (j, j)).collect()
    };
    let corr = Correlations::compute(&track, 0..n, l);
    let all_channels: Vec<usize> = (0..sources * channels).collect();
    let (all, mut loading) = bss::solve_filters(
        || corr.gram(&all_channels),
        &corr.cross(&all_channels, &all_channels),
        eps,
    )
    .map_err(|_| EvalError::Singular)?;
    let per_estimate: Vec<_> = (0..sources)
        .map(|e| {
            all.slice(ndarray::s![.., e * channels..(e + 1) * channels])
                .to_owned()
        })
        .collect();
    drop(all);
    let mut own = vec![None; pairs.len()];
    for j in 0..sources {
        let mine: Vec<usize> = (j * channels..(j + 1) * channels).collect();
        let with: Vec<(usize, usize)> = pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.0 == j)
            .map(|(k, p)| (k, p.1))
            .collect();
        let est_channels: Vec<usize> = with
            .iter()
            .flat_map(|&(_, e)| e * channels..(e + 1) * channels)
            .collect();
        let (c, load) =
            bss::solve_filters(|| corr.gram(&mine), &corr.cross(&mine, &est_channels), eps)
                .map_err(|_| EvalError::Singular)?;
        loading = loading.max(load);
        for (i, &(k, _)) in with.iter().enumerate() {
            own[k] = Some(
                c.slice(ndarray::s![.., i * channels..(i + 1) * channels])
                    .to_owned(),
            );
        }
    }
    drop(corr);
    let own: Vec<_> = own.into_iter().map(|c| c.expect("every pair")).collect();
    let filters = Filters {
        l,
        sources,
        channels,
        all: per_estimate,
        pairs: pairs.clone(),
        own,
    };
    let projector = Projector::new(filters, window.min(n));
    let energies = projector.energies(&track, &windows);

    // metrics[k][t] for pair k in window t.
    let sources_version = params.mode == Mode::V3 && channels == 1;
    let metrics: Vec<Vec<Metrics>> = (0..pairs.len())
        .map(|k| {
            energies
                .iter()
                .map(|w| match w {
                    Some(e) => criteria(&e[k], sources_version),
                    None => Metrics::nan(!sources_version),
                })
                .collect()
        })
        .collect();

    let assignment = if params.permute {
        best_assignment(sources, |j, e| &metrics[j * sources + e])
    } else {
        (0..sources).collect()
    };
    let pair_of = |j: usize| {
        pairs
            .iter()
            .position(|&p| p == (j, assignment[j]))
            .expect("the assignment uses evaluated pairs")
    };
    let scores: Vec<SourceScores> = (0..sources)
        .map(|j| {
            let frames = &metrics[pair_of(j)];
            let metrics = match params.mode {
                Mode::V4 => Metrics {
                    sdr: finite_median(frames.iter().map(|m| m.sdr)),
                    sir: finite_median(frames.iter().map(|m| m.sir)),
                    sar: finite_median(frames.iter().map(|m| m.sar)),
                    isr: Some(finite_median(frames.iter().filter_map(|m| m.isr))),
                },
                Mode::V3 => frames[0],
            };
            SourceScores {
                estimate: assignment[j],
                metrics,
                si_sdr: si_sdr(&references[j], &estimates[assignment[j]]),
                frames: if params.mode == Mode::V4 {
                    frames.clone()
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    let median = Metrics {
        sdr: nan_median(scores.iter().map(|s| s.metrics.sdr)),
        sir: nan_median(scores.iter().map(|s| s.metrics.sir)),
        sar: nan_median(scores.iter().map(|s| s.metrics.sar)),
        isr: (!sources_version).then(|| nan_median(scores.iter().filter_map(|s| s.metrics.isr))),
    };
    let median_si_sdr = nan_median(scores.iter().map(|s| s.si_sdr));
    Ok(Scores {
        mode: params.mode,
        sources: scores,
        median,
        median_si_sdr,
        window: (window, hop),
        frames: windows.len(),
        silent_frames,
        loading,
    })
}

/// Scale-invariant SDR in dB of `estimate` against `reference`, over all channels together:
/// `10 log10(‖α s‖² / ‖α s - ŝ‖²)` with `α = ⟨ŝ, s⟩ / ‖s‖²` (no mean is removed). `+∞` for an
/// estimate that is an exact multiple of the reference, NaN for a silent reference.
///
/// # Panics
/// If the two have different channel counts or lengths.
///
/// ```
/// use demix::audio::Audio;
/// let s = Audio::new(8000, vec![vec![1.0, -1.0, 1.0, -1.0]])?;
/// let e = Audio::new(8000, vec![vec![0.5, -0.5, 0.5, 0.5]])?; // 0.5 s + 0.5 n, n ⟂ s
/// // α = 0.25: ‖α s‖² = 0.25, ‖α s - ŝ‖² = 0.75.
/// assert!((demix::eval::si_sdr(&s, &e) - 10.0 * (1.0f64 / 3.0).log10()).abs() < 1e-12);
/// # Ok::<(), demix::Error>(())
/// ```
pub fn si_sdr(reference: &Audio, estimate: &Audio) -> f64 {
    assert_eq!(reference.num_channels(), estimate.num_channels());
    assert_eq!(reference.len(), estimate.len());
    let pairs = || {
        reference
            .channels
            .iter()
            .zip(&estimate.channels)
            .flat_map(|(s, e)| s.iter().zip(e))
            .map(|(&s, &e)| (f64::from(s), f64::from(e)))
    };
    let (ss, se) = pairs().fold((0.0, 0.0), |(ss, se), (s, e)| (ss + s * s, se + s * e));
    let alpha = se / ss;
    let (target, noise) = pairs().fold((0.0, 0.0), |(t, n), (s, e)| {
        (t + (alpha * s).powi(2), n + (alpha * s - e).powi(2))
    });
    bss::db(target, noise)
}

/// Planar slices of each signal.
fn as_track(audio: &[Audio]) -> Vec<Vec<&[f32]>> {
    audio
        .iter()
        .map(|a| a.channels.iter().map(Vec::as_slice).collect())
        .collect()
}

/// `seconds` at `rate`, in whole samples (museval: `int(seconds * rate)`).
fn samples(seconds: f64, rate: u32) -> Result<usize> {
    let n = (seconds * f64::from(rate)).floor();
    if n < 1.0 {
        return Err(EvalError::WindowTooShort {
            seconds,
            sample_rate: rate,
        }
        .into());
    }
    Ok(n as usize)
}

/// museval's `Framing`: whole windows `t · hop .. t · hop + window` while they fit, or one
/// window of the whole signal when it is no longer than a window.
fn framing(window: usize, hop: usize, n: usize) -> Vec<Range<usize>> {
    if window < n {
        let count = (n - window + hop) / hop;
        (0..count).map(|t| t * hop..t * hop + window).collect()
    } else {
        // One window of the whole signal.
        std::iter::once(0..n).collect()
    }
}

/// The ratios of one window: `bss_eval_sources`' or the images' (museval's `_bss_crit`).
fn criteria(e: &Energies, sources_version: bool) -> Metrics {
    if sources_version {
        Metrics {
            sdr: bss::db(e.own, e.own_residual),
            sir: bss::db(e.own, e.interference),
            sar: bss::db(e.all, e.artifacts),
            isr: None,
        }
    } else {
        Metrics {
            sdr: bss::db(e.target, e.distortion),
            sir: bss::db(e.own, e.interference),
            sar: bss::db(e.all, e.artifacts),
            isr: Some(bss::db(e.target, e.spatial)),
        }
    }
}

/// The assignment (estimate of each reference) with the highest mean SIR over references and
/// windows, the first in lexicographic order among equals; NaN windows are left out of the
/// mean (museval's plain mean would make every candidate NaN and keep the identity).
fn best_assignment<'a>(
    sources: usize,
    metrics: impl Fn(usize, usize) -> &'a Vec<Metrics>,
) -> Vec<usize> {
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut perm: Vec<usize> = (0..sources).collect();
    loop {
        let (sum, count) = (0..sources)
            .flat_map(|j| metrics(j, perm[j]).iter().map(|m| m.sir))
            .filter(|v| !v.is_nan())
            .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
        let mean = if count == 0 {
            f64::NAN
        } else {
            sum / count as f64
        };
        if best
            .as_ref()
            .is_none_or(|(b, _)| mean > *b || (b.is_nan() && !mean.is_nan()))
        {
            best = Some((mean, perm.clone()));
        }
        if !next_permutation(&mut perm) {
            break;
        }
    }
    best.expect("at least one assignment").1
}

/// Rearranges `p` into the next permutation in lexicographic order; false after the last.
fn next_permutation(p: &mut [usize]) -> bool {
    let Some(i) = (1..p.len()).rev().find(|&i| p[i - 1] < p[i]) else {
        return false;
    };
    let j = (i..p.len())
        .rev()
        .find(|&j| p[j] > p[i - 1])
        .expect("p[i] qualifies");
    p.swap(i - 1, j);
    p[i..].reverse();
    true
}

/// NumPy's median of the values that are not NaN (infinite ones count); NaN if none.
fn nan_median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The median of the finite values (museval turns infinite frame values into NaN before its
/// `nanmedian`).
fn finite_median(values: impl Iterator<Item = f64>) -> f64 {
    nan_median(values.filter(|x| x.is_finite()))
}

/// Every check the reference implementations make before computing, in their order.
fn check_inputs(references: &[Audio], estimates: &[Audio], params: &EvalParams) -> Result<()> {
    let first = references.first().ok_or(EvalError::NoSources)?;
    if estimates.len() != references.len() {
        return Err(EvalError::CountMismatch {
            references: references.len(),
            estimates: estimates.len(),
        }
        .into());
    }
    if params.permute && references.len() > MAX_PERMUTED_SOURCES {
        return Err(EvalError::TooManyToPermute {
            sources: references.len(),
            max: MAX_PERMUTED_SOURCES,
        }
        .into());
    }
    let signals = || {
        let refs = references
            .iter()
            .enumerate()
            .map(|(i, a)| (Side::Reference, i, a));
        let ests = estimates
            .iter()
            .enumerate()
            .map(|(i, a)| (Side::Estimate, i, a));
        refs.chain(ests)
    };
    for (side, index, audio) in signals() {
        for (property, expected, actual) in [
            (
                Property::SampleRate,
                u64::from(first.sample_rate),
                u64::from(audio.sample_rate),
            ),
            (
                Property::Channels,
                first.num_channels() as u64,
                audio.num_channels() as u64,
            ),
            (Property::Length, first.len() as u64, audio.len() as u64),
        ] {
            if expected != actual {
                return Err(EvalError::Mismatch {
                    side,
                    index,
                    property,
                    expected,
                    actual,
                }
                .into());
            }
        }
        if let Err(Error::NonFinite {
            channel,
            index: sample,
            value,
        }) = audio.check_finite()
        {
            return Err(EvalError::NonFinite {
                side,
                index,
                channel,
                sample,
                value,
            }
            .into());
        }
    }
    for (side, index, audio) in signals() {
        let channels: Vec<&[f32]> = audio.channels.iter().map(Vec::as_slice).collect();
        if bss::any_silent(&[channels], &(0..audio.len())) {
            return Err(EvalError::Silent { side, index }.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_follows_museval() {
        assert_eq!(framing(10, 10, 35), vec![0..10, 10..20, 20..30]);
        assert_eq!(framing(10, 5, 20), vec![0..10, 5..15, 10..20]);
        assert_eq!(framing(10, 10, 10), vec![0..10]);
        assert_eq!(framing(10, 10, 7), vec![0..7]);
    }

    #[test]
    fn permutations_run_in_lexicographic_order() {
        let mut p = vec![0, 1, 2];
        let mut all = vec![p.clone()];
        while next_permutation(&mut p) {
            all.push(p.clone());
        }
        assert_eq!(
            all,
            vec![
                vec![0, 1, 2],
                vec![0, 2, 1],
                vec![1, 0, 2],
                vec![1, 2, 0],
                vec![2, 0, 1],
                vec![2, 1, 0]
            ]
        );
    }

    #[test]
    fn medians_are_numpy_medians_without_nan() {
        assert_eq!(nan_median([3.0, f64::NAN, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(nan_median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert!(nan_median([f64::NAN].into_iter()).is_nan());
        assert_eq!(finite_median([f64::INFINITY, 1.0, 3.0].into_iter()), 2.0);
    }
}
