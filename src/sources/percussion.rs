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
use rayon::prelude::*;

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

/// The median flatness of the frames within 40 dB of the loudest frame (0 without any);
/// frames in parallel, each with its own sums, so the same whatever the threads.
fn median_flatness(s: ArrayView2<f32>) -> f64 {
    let energy: Vec<f64> = s
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|r| r.iter().map(|&a| f64::from(a).powi(2)).sum())
        .collect();
    let loudest = energy.iter().copied().fold(0.0, f64::max);
    let loud: Vec<usize> = (energy.iter().enumerate())
        .filter(|&(_, &e)| e > 1e-4 * loudest && e > 0.0)
        .map(|(t, _)| t)
        .collect();
    let mut flatness: Vec<f64> = loud
        .into_par_iter()
        .map(|t| {
            let row = s.row(t);
            let n = row.len() as f64;
            let tiny = 1e-12;
            let log_mean = row.iter().map(|&a| (f64::from(a) + tiny).ln()).sum::<f64>() / n;
            let mean = row.iter().map(|&a| f64::from(a) + tiny).sum::<f64>() / n;
            log_mean.exp() / mean
        })
        .collect();
    median(&mut flatness, f64::total_cmp).unwrap_or(0.0)
}

/// The energy share of the percussive part: power P (median across bins) against H (median
/// across frames), the soft mask `P / (H + P)`. The medians are taken of the magnitudes and
/// squared after: squaring keeps their order, so they are the medians of the powers, in half
/// the memory and twice the lanes.
fn percussive_share(s: ArrayView2<f32>) -> f64 {
    let s = s.as_standard_layout();
    let harmonic = median_filtered(&s.view(), Axis(0));
    let percussive = median_filtered(&s.view(), Axis(1));
    // Each frame's sums in parallel, then the frames' in order: the same whatever the threads.
    let rows: Vec<(f64, f64)> = (percussive.axis_iter(Axis(0)).into_par_iter())
        .zip(harmonic.axis_iter(Axis(0)))
        .zip(s.axis_iter(Axis(0)))
        .map(|((p, h), x)| {
            let (mut share, mut total) = (0.0, 0.0);
            for ((&p, &h), &x) in p.iter().zip(&h).zip(&x) {
                let (p, h, x) = (
                    f64::from(p).powi(2),
                    f64::from(h).powi(2),
                    f64::from(x).powi(2),
                );
                total += x;
                if h + p > 0.0 {
                    share += p / (h + p) * x;
                }
            }
            (share, total)
        })
        .collect();
    let (share, total) = (rows.iter()).fold((0.0, 0.0), |(s, t), &(a, b)| (s + a, t + b));
    if total > 0.0 { share / total } else { 0.0 }
}

/// `x` median-filtered along `axis` over [`MEDIAN_WIDTH`] elements (fewer at the edges): the
/// full windows by [`median_lanes`], [`LANES`] at once, the edges by [`sliding_medians`]; rows
/// in parallel (each result depends on its window only, so the same whatever the threads).
fn median_filtered(x: &ArrayView2<f32>, axis: Axis) -> Array2<f32> {
    let (rows, cols) = x.dim();
    let mut out = Array2::zeros(x.dim());
    let x = x.as_standard_layout();
    let half = MEDIAN_WIDTH / 2;
    // The edges (and everything when a lane is too short for a full window) one lane at a time.
    Zip::from(x.lanes(axis))
        .and(out.lanes_mut(axis))
        .par_for_each(|lane, mut filtered| {
            let n = lane.len();
            if n < MEDIAN_WIDTH {
                filtered.assign(&ndarray::Array1::from(sliding_medians(&lane.to_vec())));
                return;
            }
            let ends: Vec<f32> = lane.iter().take(MEDIAN_WIDTH - 1).copied().collect();
            let head = sliding_medians(&ends);
            let tails: Vec<f32> = lane.iter().skip(n - (MEDIAN_WIDTH - 1)).copied().collect();
            let tail = sliding_medians(&tails);
            for i in 0..half {
                filtered[i] = head[i];
                filtered[n - 1 - i] = tail[tail.len() - 1 - i];
            }
        });
    let x = x.as_slice().expect("standard layout");
    if axis == Axis(0) && rows >= MEDIAN_WIDTH {
        // Across frames: the window of row t + half is rows t ..= t + 2·half.
        let mut inner = out.slice_mut(ndarray::s![half..rows - half, ..]);
        Zip::indexed(inner.lanes_mut(Axis(1))).par_for_each(|t, mut row| {
            let window = std::array::from_fn(|j| &x[(t + j) * cols..(t + j + 1) * cols]);
            medians_of_rows(row.as_slice_mut().expect("standard layout"), window);
        });
    } else if axis == Axis(1) && cols >= MEDIAN_WIDTH {
        // Across bins: the window of bin f + half is bins f ..= f + 2·half of its frame.
        Zip::indexed(out.rows_mut()).par_for_each(|t, mut row| {
            let n = cols - 2 * half;
            let window = std::array::from_fn(|j| &x[t * cols + j..t * cols + j + n]);
            let row = row.as_slice_mut().expect("standard layout");
            medians_of_rows(&mut row[half..half + n], window);
        });
    }
    out
}

/// Values compared at once.
const LANES: usize = 32;

/// `out[i]` = the median of `window[j][i]` over the [`MEDIAN_WIDTH`] rows `j`: [`LANES`] of
/// them at a time by [`median_lanes`], the rest one by one; each the value [`median`] gives.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn medians_of_rows(out: &mut [f32], window: [&[f32]; MEDIAN_WIDTH]) {
    let n = out.len();
    assert!(window.iter().all(|row| row.len() >= n));
    let lanes_at = |start: usize| {
        let v = window.map(|row| -> [f32; LANES] {
            row[start..start + LANES].try_into().expect("LANES values")
        });
        median_lanes(v)
    };
    let full = n / LANES * LANES;
    for (c, chunk) in out[..full].chunks_exact_mut(LANES).enumerate() {
        chunk.copy_from_slice(&lanes_at(c * LANES));
    }
    if full < n && n >= LANES {
        // The rest as the last LANES windows, some of them again.
        out[n - LANES..].copy_from_slice(&lanes_at(n - LANES));
    } else {
        for (i, y) in out.iter_mut().enumerate().skip(full) {
            let mut values = window.map(|row| row[i]);
            *y = median(&mut values, f32::total_cmp).expect("a full window");
        }
    }
}

/// Puts the smaller of each lane of `a` and `b` in `a`, the larger in `b`.
#[inline(always)]
fn order(a: &mut [f32; LANES], b: &mut [f32; LANES]) {
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        let (p, q) = (*x, *y);
        *x = if q < p { q } else { p };
        *y = if q < p { p } else { q };
    }
}

/// Orders the lanes of `v[i]` and `v[j]` (`i < j`) by [`order`], for each comparator.
macro_rules! network {
    ($v:ident; $(($i:literal, $j:literal)),* $(,)?) => {
        $(
            let (lo, hi) = $v.split_at_mut($j);
            order(&mut lo[$i], &mut hi[0]);
        )*
    };
}

/// The medians of [`LANES`] windows of [`MEDIAN_WIDTH`] values at once (`v[j][l]` is value j of
/// window l): the same values a sort gives, for any numbers but NaN.
///
/// The comparators put the median of 17 values in place 8: Batcher's odd–even merge sort of
/// 32 inputs, without those that touch inputs 17 to 31 (they would hold +∞ and never move) or
/// that place 8 does not depend on. A test checks them on every input of zeros and ones, which
/// proves them for all inputs (the zero–one principle).
#[inline(always)]
fn median_lanes(mut v: [[f32; LANES]; MEDIAN_WIDTH]) -> [f32; LANES] {
    network!(v;
        (0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15),
        (0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11), (12, 14), (13, 15),
        (1, 2), (5, 6), (9, 10), (13, 14),
        (0, 4), (1, 5), (2, 6), (3, 7), (8, 12), (9, 13), (10, 14), (11, 15),
        (2, 4), (3, 5), (10, 12), (11, 13),
        (1, 2), (3, 4), (5, 6), (9, 10), (11, 12), (13, 14),
        (0, 8), (1, 9), (2, 10), (3, 11), (4, 12), (5, 13), (6, 14), (7, 15),
        (4, 8), (5, 9), (6, 10), (7, 11),
        (2, 4), (3, 5), (6, 8), (7, 9), (10, 12), (11, 13),
        (3, 4), (5, 6), (7, 8), (9, 10), (11, 12),
        (0, 16), (8, 16),
        (4, 8), (5, 9), (6, 10), (7, 11),
        (6, 8), (7, 9),
        (7, 8),
    );
    v[MEDIAN_WIDTH / 2]
}

/// The medians of `lane` over windows of [`MEDIAN_WIDTH`] centred on each element (fewer at
/// the edges), as [`median`] of each window gives them, from one sorted window that slides:
/// an element enters and one leaves per step instead of a selection per window.
fn sliding_medians(lane: &[f32]) -> Vec<f32> {
    let half = MEDIAN_WIDTH / 2;
    let mut window: Vec<f32> = Vec::with_capacity(MEDIAN_WIDTH + 1);
    let insert = |window: &mut Vec<f32>, v: f32| {
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
fn median<T: Copy>(v: &mut [T], cmp: fn(&T, &T) -> std::cmp::Ordering) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, cmp);
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
            let lane: Vec<f32> = (0..len)
                .map(|i| match i % 5 {
                    0 => 0.0,
                    1 => -0.0,
                    _ => jitter(i, 3),
                })
                .collect();
            let half = MEDIAN_WIDTH / 2;
            let direct: Vec<f32> = (0..len)
                .map(|i| {
                    let mut w = lane[i.saturating_sub(half)..(i + half + 1).min(len)].to_vec();
                    median(&mut w, f32::total_cmp).unwrap()
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
    fn the_network_puts_the_median_in_the_middle_for_every_input_of_zeros_and_ones() {
        for bits in 0u32..1 << MEDIAN_WIDTH {
            let v = std::array::from_fn(|j| [((bits >> j) & 1) as f32; LANES]);
            let ones = bits.count_ones() as usize;
            // Sorted, the middle of 17 is a one when at least 9 of them are.
            let want = if ones > MEDIAN_WIDTH / 2 { 1.0 } else { 0.0 };
            assert_eq!(median_lanes(v), [want; LANES], "{bits:#b}");
        }
    }

    #[test]
    fn filtering_along_either_axis_gives_the_median_of_each_window() {
        for (rows, cols) in [(40, 35), (17, 18), (16, 50), (50, 3), (1, 1), (25, 17)] {
            // Ties among the values included.
            let x = Array2::from_shape_fn((rows, cols), |(t, f)| (jitter(t, f) * 8.0).round());
            let half = MEDIAN_WIDTH / 2;
            for axis in [Axis(0), Axis(1)] {
                let filtered = median_filtered(&x.view(), axis);
                for ((t, f), &got) in filtered.indexed_iter() {
                    let (i, n) = if axis == Axis(0) {
                        (t, rows)
                    } else {
                        (f, cols)
                    };
                    let mut window: Vec<f32> = (i.saturating_sub(half)..(i + half + 1).min(n))
                        .map(|j| {
                            if axis == Axis(0) {
                                x[[j, f]]
                            } else {
                                x[[t, j]]
                            }
                        })
                        .collect();
                    let want = median(&mut window, f32::total_cmp).unwrap();
                    assert_eq!(got, want, "{rows}x{cols} {axis:?} ({t}, {f})");
                }
            }
        }
    }

    #[test]
    fn silence_measures_zero_and_medians_take_the_upper_middle() {
        let p = Percussion::of(spectrogram(50, |_, _| 0.0).view());
        assert_eq!((p.flatness, p.percussive_share), (0.0, 0.0));
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 4.0], f64::total_cmp), Some(3.0));
        assert_eq!(median(&mut [], f64::total_cmp), None);
    }
}
