//! The figures an evaluation reports: the ratios of a window's energies, their medians over
//! windows and sources, and SI-SDR.

use crate::audio::Audio;

use super::bss::Energies;
use super::params::Mode;

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
    pub(super) fn nan(with_isr: bool) -> Metrics {
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
    /// [`EvalParams::with_permute`](super::EvalParams::with_permute) chose another).
    pub estimate: usize,
    /// BSS Eval: v4, the median over windows; v3, the whole-signal value.
    pub metrics: Metrics,
    /// Scale-invariant SDR of the whole signal, in dB.
    pub si_sdr: f64,
    /// v4 only: the metrics of each window, NaN in windows that were skipped.
    pub frames: Vec<Metrics>,
}

/// The result of [`evaluate`](super::evaluate) and [`Evaluator::evaluate`](super::Evaluator::evaluate).
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
    db(target, noise)
}

/// The ratios of one window: `bss_eval_sources`' or the images' (museval's `_bss_crit`).
pub(super) fn criteria(e: &Energies, sources_version: bool) -> Metrics {
    if sources_version {
        Metrics {
            sdr: db(e.own, e.own_residual),
            sir: db(e.own, e.interference),
            sar: db(e.all, e.artifacts),
            isr: None,
        }
    } else {
        Metrics {
            sdr: db(e.target, e.distortion),
            sir: db(e.own, e.interference),
            sar: db(e.all, e.artifacts),
            isr: Some(db(e.target, e.spatial)),
        }
    }
}

impl SourceScores {
    /// The scores of a reference from the metrics of its windows: v4 reports the median over
    /// windows of each figure, v3 the one window.
    pub(super) fn new(
        mode: Mode,
        estimate: usize,
        frames: &[Metrics],
        si_sdr: f64,
    ) -> SourceScores {
        let metrics = match mode {
            Mode::V4 => Metrics {
                sdr: finite_median(frames.iter().map(|m| m.sdr)),
                sir: finite_median(frames.iter().map(|m| m.sir)),
                sar: finite_median(frames.iter().map(|m| m.sar)),
                isr: Some(finite_median(frames.iter().filter_map(|m| m.isr))),
            },
            Mode::V3 => frames[0],
        };
        SourceScores {
            estimate,
            metrics,
            si_sdr,
            frames: if mode == Mode::V4 {
                frames.to_vec()
            } else {
                Vec::new()
            },
        }
    }
}

/// The median over sources of each figure (ISR only `with_isr`), and of the SI-SDR.
pub(super) fn medians(sources: &[SourceScores], with_isr: bool) -> (Metrics, f64) {
    let median = Metrics {
        sdr: nan_median(sources.iter().map(|s| s.metrics.sdr)),
        sir: nan_median(sources.iter().map(|s| s.metrics.sir)),
        sar: nan_median(sources.iter().map(|s| s.metrics.sar)),
        isr: with_isr.then(|| nan_median(sources.iter().filter_map(|s| s.metrics.isr))),
    };
    (median, nan_median(sources.iter().map(|s| s.si_sdr)))
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

/// `10 log10(num / den)`, and `+∞` for a zero denominator (museval's and mir_eval's
/// `_safe_db`).
fn db(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (num / den).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_numpy_medians_without_nan() {
        assert_eq!(nan_median([3.0, f64::NAN, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(nan_median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert!(nan_median([f64::NAN].into_iter()).is_nan());
        assert_eq!(finite_median([f64::INFINITY, 1.0, 3.0].into_iter()), 2.0);
    }
}
