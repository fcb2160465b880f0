//! One evaluation, from the signals to the scores: the inputs checked as the reference
//! implementations check them, the windows, the filters, the energies of each window and their
//! ratios, and the assignment of estimates.

use std::ops::Range;

use crate::audio::Audio;
use crate::error::{Error, EvalError, Property, Result, Side};

use super::bss::{self, Projector, Track};
use super::params::{EvalParams, Evaluator, MAX_PERMUTED_SOURCES, Mode};
use super::permutation::best_assignment;
use super::scores::{Metrics, Scores, SourceScores, criteria, medians, si_sdr};

impl Evaluator {
    /// Evaluates `estimates` against `references` (one [`Audio`] per source, all with the same
    /// sample rate, channel count and length) with these settings; see
    /// [`evaluate`](super::evaluate).
    ///
    /// # Errors
    /// [`Error::Eval`] for no sources, unequal counts, a different sample rate, channel count
    /// or length, a silent signal, a NaN or infinite sample, too many sources to permute, a
    /// window shorter than one sample, or references so dependent that no filter can be fitted.
    pub fn evaluate(&self, references: &[Audio], estimates: &[Audio]) -> Result<Scores> {
        let params = &self.params;
        check_inputs(references, estimates, params)?;
        let first = &references[0];
        let (n, rate, channels, sources) = (
            first.len(),
            first.sample_rate,
            first.num_channels(),
            references.len(),
        );
        let track = Track {
            refs: as_track(references),
            ests: as_track(estimates),
        };

        let (window, hop) = match params.mode() {
            Mode::V4 => (
                samples(params.window(), rate)?,
                samples(params.hop(), rate)?,
            ),
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
        let eps = match params.mode() {
            Mode::V4 => f64::EPSILON,
            Mode::V3 => 0.0,
        };
        let pairs: Vec<(usize, usize)> = if params.permute() {
            (0..sources)
                .flat_map(|j| (0..sources).map(move |e| (j, e)))
                .collect()
        } else {
            (0..sources).map(|j| (j, j)).collect()
        };
        let (filters, loading) = bss::fit(&track, params.filter_len(), pairs.clone(), eps)
            .map_err(|_| EvalError::Singular)?;
        let projector = Projector::new(filters, window.min(n));
        let energies = projector.energies(&track, &windows);

        // metrics[k][t] for pair k in window t.
        let sources_version = params.mode() == Mode::V3 && channels == 1;
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

        let assignment = if params.permute() {
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
                let si = si_sdr(&references[j], &estimates[assignment[j]]);
                SourceScores::new(params.mode(), assignment[j], &metrics[pair_of(j)], si)
            })
            .collect();
        let (median, median_si_sdr) = medians(&scores, !sources_version);
        Ok(Scores {
            mode: params.mode(),
            sources: scores,
            median,
            median_si_sdr,
            window: (window, hop),
            frames: windows.len(),
            silent_frames,
            loading,
        })
    }
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
    if params.permute() && references.len() > MAX_PERMUTED_SOURCES {
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
}
