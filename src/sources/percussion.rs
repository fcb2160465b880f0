//! Whether a source is percussive, from its training recordings: what `demix learn` decides
//! its model by (convolutive Kullback–Leibler templates for drums, single-frame
//! Itakura–Saito ones for the rest).
//!
//! Two measures of the magnitude spectrogram (frames × bins), both needed: its spectral
//! flatness (the geometric over the arithmetic mean of a frame, median over the frames that
//! sound), high for noise-like sounds, and the share of its energy that a median-filter
//! harmonic/percussive split (Fitzgerald 2010) gives to the percussive part, high for short
//! broadband hits. A source is percussive when their product reaches a bound: voices are as
//! flat as some drum kits, and basses and plucked strings as struck, but neither is both.

use ndarray::{Array2, ArrayView2, Axis, Zip};

/// Least product of the two measures of a percussive source: chosen on the quality corpus's
/// tuning split, where the 12 drum tracks measured at least 0.018 and the 96 other training
/// clips at most 0.011, as the geometric middle of those two (each side 1.3 times from it).
pub const PERCUSSIVE_BOUND: f64 = 0.014;
/// Frames of the convolutive templates `demix learn` gives a percussive source by default:
/// 6 hops, about 70 ms at 44.1 kHz with the default hop.
pub const PERCUSSIVE_FRAMES: usize = 6;

/// Frames (and bins) of the median filters of the harmonic/percussive split.
const MEDIAN_WIDTH: usize = 17;

/// The two measures of a spectrogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percussion {
    /// Median spectral flatness of the frames within 40 dB of the loudest.
    pub flatness: f64,
    /// Share of the energy in the percussive part of the split.
    pub percussive_share: f64,
}

impl Percussion {
    /// Measures a magnitude spectrogram, frames × bins.
    pub fn of(spectrogram: ArrayView2<f32>) -> Percussion {
        Percussion {
            flatness: median_flatness(spectrogram),
            percussive_share: percussive_share(spectrogram),
        }
    }

    /// Noise-like and struck: the product of the two measures.
    pub fn score(&self) -> f64 {
        self.flatness * self.percussive_share
    }

    /// Whether [`Self::score`] reaches [`PERCUSSIVE_BOUND`].
    pub fn is_percussive(&self) -> bool {
        self.score() >= PERCUSSIVE_BOUND
    }
}

/// The median flatness of the frames within 40 dB of the loudest frame (0 without any).
fn median_flatness(s: ArrayView2<f32>) -> f64 {
    let energy: Vec<f64> = s
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&a| f64::from(a).powi(2)).sum())
        .collect();
    let loudest = energy.iter().copied().fold(0.0, f64::max);
    let mut flatness: Vec<f64> = s
        .rows()
        .into_iter()
        .zip(&energy)
        .filter(|&(_, &e)| e > 1e-4 * loudest && e > 0.0)
        .map(|(row, _)| {
            let n = row.len() as f64;
            let tiny = 1e-12;
            let log_mean = row.iter().map(|&a| (f64::from(a) + tiny).ln()).sum::<f64>() / n;
            let mean = row.iter().map(|&a| f64::from(a) + tiny).sum::<f64>() / n;
            log_mean.exp() / mean
        })
        .collect();
    median(&mut flatness).unwrap_or(0.0)
}

/// The energy share of the percussive part: power P (median across bins) against H (median
/// across frames), the soft mask `P / (H + P)`.
fn percussive_share(s: ArrayView2<f32>) -> f64 {
    let power = s.mapv(|a| f64::from(a).powi(2));
    let harmonic = median_filtered(&power, Axis(0));
    let percussive = median_filtered(&power, Axis(1));
    let (mut share, mut total) = (0.0, 0.0);
    for ((&p, &h), &x) in percussive.iter().zip(&harmonic).zip(&power) {
        total += x;
        if h + p > 0.0 {
            share += p / (h + p) * x;
        }
    }
    if total > 0.0 { share / total } else { 0.0 }
}

/// `x` median-filtered along `axis` over [`MEDIAN_WIDTH`] elements (fewer at the edges), the
/// lanes in parallel (each lane's result does not depend on the others).
fn median_filtered(x: &Array2<f64>, axis: Axis) -> Array2<f64> {
    let mut out = Array2::zeros(x.dim());
    Zip::from(x.lanes(axis))
        .and(out.lanes_mut(axis))
        .par_for_each(|lane, mut filtered| {
            let lane: Vec<f64> = lane.to_vec();
            for (y, m) in filtered.iter_mut().zip(sliding_medians(&lane)) {
                *y = m;
            }
        });
    out
}

/// The medians of `lane` over windows of [`MEDIAN_WIDTH`] centred on each element (fewer at
/// the edges), as [`median`] of each window gives them, from one sorted window that slides:
/// an element enters and one leaves per step instead of a selection per window.
fn sliding_medians(lane: &[f64]) -> Vec<f64> {
    let half = MEDIAN_WIDTH / 2;
    let mut window: Vec<f64> = Vec::with_capacity(MEDIAN_WIDTH + 1);
    let insert = |window: &mut Vec<f64>, v: f64| {
        let at = window.partition_point(|w| w.total_cmp(&v).is_lt());
        window.insert(at, v);
    };
    for &v in &lane[..half.min(lane.len())] {
        insert(&mut window, v);
    }
    let mut medians = Vec::with_capacity(lane.len());
    for i in 0..lane.len() {
        if let Some(&v) = lane.get(i + half) {
            insert(&mut window, v);
        }
        if i > half {
            let old = lane[i - half - 1];
            let at = window.partition_point(|w| w.total_cmp(&old).is_lt());
            window.remove(at);
        }
        medians.push(window[window.len() / 2]);
    }
    medians
}

/// The median (the upper one of an even count), reordering `v`; `None` when empty.
fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spectrogram of `frames` × 257 bins from `value(frame, bin)`.
    fn spectrogram(frames: usize, value: impl Fn(usize, usize) -> f32) -> Array2<f32> {
        Array2::from_shape_fn((frames, 257), |(t, f)| value(t, f))
    }

    /// A deterministic pseudo-random level in [0.5, 1.5) per cell, like a noise's magnitudes.
    fn jitter(t: usize, f: usize) -> f32 {
        let x = (t * 7919 + f * 104_729) as u64;
        let x = x.wrapping_mul(6_364_136_223_846_793_005).rotate_left(17);
        0.5 + (x % 1000) as f32 / 1000.0
    }

    #[test]
    fn a_held_note_is_neither_flat_nor_percussive() {
        // Partials at every 20th bin, the same in every frame.
        let note = spectrogram(200, |_, f| if f % 20 == 0 { 1.0 } else { 1e-4 });
        let p = Percussion::of(note.view());
        // Measured: flatness 0.003, share 1e-7.
        assert!(p.flatness < 0.01 && p.percussive_share < 0.01, "{p:?}");
        assert!(!p.is_percussive());
    }

    #[test]
    fn broadband_hits_are_flat_and_percussive() {
        // A frame of noise across every bin every 10 frames, near silence between.
        let hits = spectrogram(200, |t, f| if t % 10 == 0 { jitter(t, f) } else { 1e-3 });
        let p = Percussion::of(hits.view());
        // Measured: flatness 0.96, share 0.99999.
        assert!(p.flatness > 0.9 && p.percussive_share > 0.99, "{p:?}");
        assert!(p.is_percussive());
    }

    #[test]
    fn steady_noise_is_flat_but_not_all_percussive() {
        // Noise is flat, but a steady one is as "harmonic" (constant in time) as percussive.
        let noise = spectrogram(200, jitter);
        let p = Percussion::of(noise.view());
        // Measured: flatness 0.96, share 0.51.
        assert!(p.flatness > 0.9, "{p:?}");
        assert!((0.4..0.6).contains(&p.percussive_share), "{p:?}");
    }

    #[test]
    fn flat_but_held_or_struck_but_tonal_is_not_percussive_and_both_together_are() {
        let p = |flatness, percussive_share| Percussion {
            flatness,
            percussive_share,
        };
        // A voice of the tuning split (flat, rarely struck), a bass (struck, tonal), and a
        // drum kit less flat than that voice but struck (TimGM6mb's, of the validation split).
        assert!(!p(0.154, 0.069).is_percussive());
        assert!(!p(0.004, 0.249).is_percussive());
        assert!(p(0.076, 0.253).is_percussive());
    }

    #[test]
    fn sliding_medians_equal_the_median_of_each_window() {
        // Ties, signed zeros and short lanes included.
        for len in [0, 1, 2, 8, 9, 17, 18, 40] {
            let lane: Vec<f64> = (0..len)
                .map(|i| match i % 5 {
                    0 => 0.0,
                    1 => -0.0,
                    _ => f64::from(jitter(i, 3)),
                })
                .collect();
            let half = MEDIAN_WIDTH / 2;
            let direct: Vec<f64> = (0..len)
                .map(|i| {
                    let mut w = lane[i.saturating_sub(half)..(i + half + 1).min(len)].to_vec();
                    median(&mut w).unwrap()
                })
                .collect();
            let sliding = sliding_medians(&lane);
            assert_eq!(sliding.len(), len);
            assert!(
                direct
                    .iter()
                    .zip(&sliding)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }

    #[test]
    fn silence_measures_zero_and_medians_take_the_upper_middle() {
        let p = Percussion::of(spectrogram(50, |_, _| 0.0).view());
        assert_eq!((p.flatness, p.percussive_share), (0.0, 0.0));
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 4.0]), Some(3.0));
        assert_eq!(median(&mut []), None);
    }
}
