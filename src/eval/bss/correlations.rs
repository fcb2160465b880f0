//! The correlations of delayed reference channels with each other and with the estimates, from
//! one blocked pass over the signals.

use std::ops::Range;

use ndarray::Array2;
use rayon::prelude::*;
use realfft::num_complex::Complex;

use super::fft::{BLOCK_FFT, Plans, add_conjugate_product, pow2_at_least};
use super::{Track, fill};

/// Independent partial sums of the correlations (fixed, so results do not depend on the number
/// of threads).
const CORRELATION_PARTS: usize = 8;

/// Bins of the cross-spectra accumulated in one pass over the pairs.
const BINS_PER_PASS: usize = 256;

/// Cross-correlations at lags `|k| < L` of every pair of reference channels and of every
/// reference channel with every estimate channel, over one stretch of the signals.
///
/// Channels are numbered source by source: channel `c` of source `j` is `j · I + c`.
pub(crate) struct Correlations {
    l: usize,
    n_ref: usize,
    n_est: usize,
    /// `ρ_pq(k)` at `k + L - 1` (`2L - 1` values) for reference channels `p`, `q`.
    rr: Vec<Vec<f64>>,
    /// `ρ_{p, q}(-a)` at `a` (`L` values) for reference channel `p` and estimate channel `q`.
    re: Vec<Vec<f64>>,
}

/// Cross-spectra summed over blocks, real and imaginary parts apart.
struct SpectraSums {
    bins: usize,
    re: Vec<f64>,
    im: Vec<f64>,
}

impl SpectraSums {
    fn new(pairs: usize, bins: usize) -> SpectraSums {
        SpectraSums {
            bins,
            re: vec![0.0; pairs * bins],
            im: vec![0.0; pairs * bins],
        }
    }

    /// Adds `x · conj(y)` to pair `pair` in the bins `bins`.
    fn add(
        &mut self,
        pair: usize,
        (xr, xi): (&[f64], &[f64]),
        (yr, yi): (&[f64], &[f64]),
        bins: Range<usize>,
    ) {
        let base = pair * self.bins;
        let ar = &mut self.re[base + bins.start..base + bins.end];
        let ai = &mut self.im[base + bins.start..base + bins.end];
        add_conjugate_product(
            (ar, ai),
            (&xr[bins.clone()], &xi[bins.clone()]),
            (&yr[bins.clone()], &yi[bins]),
        );
    }

    fn merge(&mut self, other: &SpectraSums) {
        self.re.iter_mut().zip(&other.re).for_each(|(a, b)| *a += b);
        self.im.iter_mut().zip(&other.im).for_each(|(a, b)| *a += b);
    }
}

/// Spectra of one block of several channels, real and imaginary parts apart.
struct BlockSpectra {
    re: Vec<Vec<f64>>,
    im: Vec<Vec<f64>>,
}

impl BlockSpectra {
    fn new(channels: usize, bins: usize) -> BlockSpectra {
        BlockSpectra {
            re: vec![vec![0.0; bins]; channels],
            im: vec![vec![0.0; bins]; channels],
        }
    }

    fn get(&self, channel: usize) -> (&[f64], &[f64]) {
        (&self.re[channel], &self.im[channel])
    }

    fn set(&mut self, channel: usize, spectrum: &[Complex<f64>]) {
        for (k, z) in spectrum.iter().enumerate() {
            self.re[channel][k] = z.re;
            self.im[channel][k] = z.im;
        }
    }
}

impl Correlations {
    /// Correlations of the signals restricted to `range` (zero outside it), for filters of
    /// `l` taps.
    pub(crate) fn compute(track: &Track, range: Range<usize>, l: usize) -> Correlations {
        let refs = track.ref_channels();
        let ests = track.est_channels();
        let (n_ref, n_est) = (refs.len(), ests.len());
        let span = 2 * (l - 1);
        let fft_len = pow2_at_least(span + range.len())
            .min(BLOCK_FFT.max(pow2_at_least(4 * span)))
            .max(pow2_at_least(span + 1));
        let block = fft_len - span;
        let plans = Plans::new(fft_len);
        let bins = plans.bins();
        let n_blocks = range.len().div_ceil(block);
        let per_part = n_blocks.div_ceil(CORRELATION_PARTS).max(1);
        let n_rr = n_ref * n_ref;
        let n_re = n_ref * n_est;

        let partials: Vec<SpectraSums> = (0..CORRELATION_PARTS)
            .into_par_iter()
            .map(|part| {
                let mut sums = SpectraSums::new(n_rr + n_re, bins);
                let blocks = (part * per_part).min(n_blocks)..((part + 1) * per_part).min(n_blocks);
                if blocks.is_empty() {
                    return sums;
                }
                let mut input = vec![0.0; fft_len];
                let mut output = vec![Complex::default(); bins];
                let mut scratch = plans.scratch();
                let mut shifted = BlockSpectra::new(n_ref, bins);
                let mut plain_ref = BlockSpectra::new(n_ref, bins);
                let mut plain_est = BlockSpectra::new(n_est, bins);
                for b in blocks {
                    let start = range.start + b * block;
                    for (p, x) in refs.iter().enumerate() {
                        // x[start - (L-1) ..] over the whole FFT length: lags down to -(L-1)
                        // and up to L-1 without wrapping around.
                        fill(&mut input, x, start as isize - (l as isize - 1), &range);
                        plans.forward(&mut input, &mut output, &mut scratch);
                        shifted.set(p, &output);
                        fill(&mut input[..block], x, start as isize, &range);
                        input[block..].iter_mut().for_each(|v| *v = 0.0);
                        plans.forward(&mut input, &mut output, &mut scratch);
                        plain_ref.set(p, &output);
                    }
                    for (q, y) in ests.iter().enumerate() {
                        fill(&mut input[..block], y, start as isize, &range);
                        input[block..].iter_mut().for_each(|v| *v = 0.0);
                        plans.forward(&mut input, &mut output, &mut scratch);
                        plain_est.set(q, &output);
                    }
                    // A few hundred bins at a time, so that the spectra stay in cache while
                    // every pair is accumulated.
                    for first in (0..bins).step_by(BINS_PER_PASS) {
                        let chunk = first..(first + BINS_PER_PASS).min(bins);
                        for p in 0..n_ref {
                            let x = shifted.get(p);
                            for q in p..n_ref {
                                sums.add(p * n_ref + q, x, plain_ref.get(q), chunk.clone());
                            }
                            for q in 0..n_est {
                                let pair = n_rr + p * n_est + q;
                                sums.add(pair, x, plain_est.get(q), chunk.clone());
                            }
                        }
                    }
                }
                sums
            })
            .collect();
        let mut sums = SpectraSums::new(n_rr + n_re, bins);
        for partial in &partials {
            sums.merge(partial);
        }
        drop(partials);

        // Back to lags: ρ(k) is at index k + L - 1 of the inverse transform.
        let mut spectrum = vec![Complex::default(); bins];
        let mut lags = vec![0.0; fft_len];
        let mut scratch = plans.scratch();
        let scale = 1.0 / fft_len as f64;
        let mut to_lags = |pair: usize, out: &mut [f64]| {
            for (k, z) in spectrum.iter_mut().enumerate() {
                *z = Complex::new(sums.re[pair * bins + k], sums.im[pair * bins + k]);
            }
            plans.inverse(&mut spectrum, &mut lags, &mut scratch);
            for (o, v) in out.iter_mut().zip(&lags) {
                *o = v * scale;
            }
        };
        let mut rr = vec![Vec::new(); n_rr];
        for p in 0..n_ref {
            for q in p..n_ref {
                let mut r = vec![0.0; 2 * l - 1];
                to_lags(p * n_ref + q, &mut r);
                // ρ_qp(k) = ρ_pq(-k).
                rr[q * n_ref + p] = r.iter().rev().copied().collect();
                rr[p * n_ref + q] = r;
            }
        }
        let mut re = vec![Vec::new(); n_re];
        for (pair, slot) in re.iter_mut().enumerate() {
            let mut r = vec![0.0; l];
            to_lags(n_rr + pair, &mut r);
            // Indices 0..L hold lags -(L-1)..=0; lag -a is wanted at a.
            r.reverse();
            *slot = r;
        }
        Correlations {
            l,
            n_ref,
            n_est,
            rr,
            re,
        }
    }

    /// The Gram matrix of the delays `0..L` of the reference channels `channels`: entry
    /// `(i·L + a, k·L + b)` is `<x_p delayed by a, x_q delayed by b> = ρ_pq(b - a)` for
    /// `p = channels[i]`, `q = channels[k]`.
    pub(crate) fn gram(&self, channels: &[usize]) -> Array2<f64> {
        let l = self.l;
        let n = channels.len() * l;
        let mut g = Array2::<f64>::zeros((n, n));
        for (i, &p) in channels.iter().enumerate() {
            for (k, &q) in channels.iter().enumerate() {
                let r = &self.rr[p * self.n_ref + q];
                for a in 0..l {
                    let row = g
                        .row_mut(i * l + a)
                        .into_slice()
                        .expect("rows are contiguous");
                    let row = &mut row[k * l..(k + 1) * l];
                    // b - a + L - 1 runs over L - 1 - a ..= 2L - 2 - a.
                    row.copy_from_slice(&r[l - 1 - a..2 * l - 1 - a]);
                }
            }
        }
        g
    }

    /// The inner products of the delays of the reference channels `channels` with the estimate
    /// channels `estimates`: entry `(i·L + a, e)` is `<x_p delayed by a, ŝ_q>` for
    /// `p = channels[i]`, `q = estimates[e]`.
    pub(crate) fn cross(&self, channels: &[usize], estimates: &[usize]) -> Array2<f64> {
        let l = self.l;
        let mut d = Array2::<f64>::zeros((channels.len() * l, estimates.len()));
        for (i, &p) in channels.iter().enumerate() {
            for (e, &q) in estimates.iter().enumerate() {
                let r = &self.re[p * self.n_est + q];
                for a in 0..l {
                    d[[i * l + a, e]] = r[a];
                }
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::bss::noise;

    /// `Σ_n x[n + k] y[n]` over `range`, directly.
    fn direct(x: &[f32], y: &[f32], k: isize, range: &Range<usize>) -> f64 {
        range
            .clone()
            .filter_map(|n| {
                let m = n as isize + k;
                (m >= range.start as isize && m < range.end as isize)
                    .then(|| f64::from(x[m as usize]) * f64::from(y[n]))
            })
            .sum()
    }

    #[test]
    fn blocked_correlations_match_direct_sums() {
        let len = 20_000;
        let (a, b, e) = (noise(len, 1), noise(len, 2), noise(len, 3));
        let track = Track {
            refs: vec![vec![&a[..]], vec![&b[..]]],
            ests: vec![vec![&e[..]], vec![&a[..]]],
        };
        for (l, range) in [
            (4usize, 0..len),
            (300, 0..len),
            (300, 1234..9000),
            (64, 5..70),
        ] {
            let corr = Correlations::compute(&track, range.clone(), l);
            let refs = [&a, &b];
            for (p, x) in refs.iter().enumerate() {
                for (q, y) in refs.iter().enumerate() {
                    for k in [-(l as isize - 1), -1, 0, 1, l as isize - 1] {
                        let got = corr.rr[p * 2 + q][(k + l as isize - 1) as usize];
                        let want = direct(x, y, k, &range);
                        assert!(
                            (got - want).abs() < 1e-9 * (1.0 + want.abs()),
                            "{got} {want}"
                        );
                    }
                }
            }
            let ests = [&e, &a];
            for (p, x) in refs.iter().enumerate() {
                for (q, y) in ests.iter().enumerate() {
                    for lag in [0, 1, l - 1] {
                        let got = corr.re[p * 2 + q][lag];
                        let want = direct(x, y, -(lag as isize), &range);
                        assert!(
                            (got - want).abs() < 1e-9 * (1.0 + want.abs()),
                            "{got} {want}"
                        );
                    }
                }
            }
        }
    }
}
