//! The energies of each window's decomposition, summed block by block from overlap-save
//! convolutions of the windowed references with the filters' spectra.

use std::ops::Range;

use multiversion::multiversion;
use ndarray::Array2;
use rayon::prelude::*;
use realfft::num_complex::Complex;

use super::fft::{BLOCK_FFT, Plans, Spectrum, pow2_at_least};
use super::filters::Filters;
use super::{Track, fill};

/// Blocks of one window handled by one task of the energy computation.
const BLOCKS_PER_TASK: usize = 16;

/// The sums of squares a window's criteria are made of, for one (reference, estimate) pair,
/// over all channels and over the window plus the `L - 1` samples the filters extend it by.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Energies {
    /// `|s_true|²`.
    pub target: f64,
    /// `|ŝ - s_true|²`.
    pub distortion: f64,
    /// `|P_j - s_true|²` (`|e_spat|²`).
    pub spatial: f64,
    /// `|P_j|²` (`|s_true + e_spat|²`).
    pub own: f64,
    /// `|ŝ - P_j|²` (`|e_interf + e_artif|²`).
    pub own_residual: f64,
    /// `|P_all - P_j|²` (`|e_interf|²`).
    pub interference: f64,
    /// `|P_all|²`.
    pub all: f64,
    /// `|ŝ - P_all|²` (`|e_artif|²`).
    pub artifacts: f64,
}

impl Energies {
    fn add(&mut self, o: &Energies) {
        self.target += o.target;
        self.distortion += o.distortion;
        self.spatial += o.spatial;
        self.own += o.own;
        self.own_residual += o.own_residual;
        self.interference += o.interference;
        self.all += o.all;
        self.artifacts += o.artifacts;
    }
}

/// The filters of one evaluation, as spectra for overlap-save convolution.
pub(crate) struct Projector {
    l: usize,
    plans: Plans,
    /// Outputs per block: `fft_len - L + 1`.
    block: usize,
    sources: usize,
    channels: usize,
    /// `all[e][p][c]`: spectrum of the filter from reference channel `p` to output channel `c`
    /// of the projection of estimate `e` on every reference.
    all: Vec<Vec<Vec<Spectrum>>>,
    /// The (reference, estimate) pairs evaluated.
    pairs: Vec<(usize, usize)>,
    /// `own[k][cj][c]`: the filter of pair `pairs[k]` from channel `cj` of its reference to
    /// output channel `c`.
    own: Vec<Vec<Vec<Spectrum>>>,
}

/// Buffers of one thread of the energy computation.
struct Workspace {
    input: Vec<f64>,
    output: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    sum: Spectrum,
    scratch: Vec<Complex<f64>>,
    refs: Vec<Spectrum>,
    /// `P_all` of block for each estimate and channel.
    all: Vec<Vec<Vec<f64>>>,
    own: Vec<f64>,
}

impl Projector {
    /// Prepares `filters` for windows of `window` samples.
    pub(crate) fn new(filters: Filters, window: usize) -> Projector {
        let Filters {
            l,
            sources,
            channels,
            all,
            pairs,
            own,
        } = filters;
        let fft_len = pow2_at_least(window + l - 1)
            .min(BLOCK_FFT.max(pow2_at_least(4 * l)))
            .max(pow2_at_least(2 * l));
        let plans = Plans::new(fft_len);
        let mut input = vec![0.0; fft_len];
        let mut scratch = plans.scratch();
        let mut spectrum_of = |coefficients: &Array2<f64>, row0: usize, column: usize| {
            input.iter_mut().for_each(|v| *v = 0.0);
            for a in 0..l {
                input[a] = coefficients[[row0 + a, column]];
            }
            let mut out = vec![Complex::default(); plans.bins()];
            plans.forward(&mut input, &mut out, &mut scratch);
            let mut spectrum = Spectrum::zeros(plans.bins());
            spectrum.set(&out);
            spectrum
        };
        let all = all
            .iter()
            .map(|c| {
                (0..sources * channels)
                    .map(|p| (0..channels).map(|o| spectrum_of(c, p * l, o)).collect())
                    .collect()
            })
            .collect();
        let own = own
            .iter()
            .map(|c| {
                (0..channels)
                    .map(|cj| (0..channels).map(|o| spectrum_of(c, cj * l, o)).collect())
                    .collect()
            })
            .collect();
        Projector {
            l,
            block: fft_len - l + 1,
            plans,
            sources,
            channels,
            all,
            pairs,
            own,
        }
    }

    fn workspace(&self) -> Workspace {
        let bins = self.plans.bins();
        Workspace {
            input: vec![0.0; self.plans.len],
            output: vec![0.0; self.plans.len],
            spectrum: vec![Complex::default(); bins],
            sum: Spectrum::zeros(bins),
            scratch: self.plans.scratch(),
            refs: vec![Spectrum::zeros(bins); self.sources * self.channels],
            all: vec![vec![vec![0.0; self.block]; self.channels]; self.all.len()],
            own: vec![0.0; self.block],
        }
    }

    /// The energies of every pair in each window (`None` for a window that is skipped).
    pub(crate) fn energies(
        &self,
        track: &Track,
        windows: &[Option<Range<usize>>],
    ) -> Vec<Option<Vec<Energies>>> {
        // Tasks: runs of at most BLOCKS_PER_TASK blocks of one window.
        let mut tasks = Vec::new();
        for (w, window) in windows.iter().enumerate() {
            if let Some(window) = window {
                let blocks = (window.len() + self.l - 1).div_ceil(self.block);
                let mut b = 0;
                while b < blocks {
                    let end = (b + BLOCKS_PER_TASK).min(blocks);
                    tasks.push((w, window.clone(), b..end));
                    b = end;
                }
            }
        }
        let partials: Vec<(usize, Vec<Energies>)> = tasks
            .into_par_iter()
            .map_init(
                || self.workspace(),
                |ws, (w, window, blocks)| (w, self.window_energies(track, &window, blocks, ws)),
            )
            .collect();
        let mut out: Vec<Option<Vec<Energies>>> = vec![None; windows.len()];
        for (w, e) in partials {
            match &mut out[w] {
                Some(total) => total.iter_mut().zip(&e).for_each(|(t, v)| t.add(v)),
                slot => *slot = Some(e),
            }
        }
        out
    }

    /// Sums of the blocks `blocks` of the window `window`: block `b` holds the outputs
    /// `b · block ..` of the filters applied to the windowed references (which are zero
    /// outside the window, and extend `L - 1` samples beyond it).
    fn window_energies(
        &self,
        track: &Track,
        window: &Range<usize>,
        blocks: Range<usize>,
        ws: &mut Workspace,
    ) -> Vec<Energies> {
        let (l, channels) = (self.l, self.channels);
        let out_len = window.len() + l - 1;
        let scale = 1.0 / self.plans.len as f64;
        let mut energies = vec![Energies::default(); self.pairs.len()];
        let refs = track.ref_channels();
        for b in blocks {
            let o = b * self.block;
            let valid = self.block.min(out_len - o);
            // Spectra of the windowed references from o - (L - 1) on.
            let start = window.start as isize + o as isize - (l as isize - 1);
            for (p, x) in refs.iter().enumerate() {
                fill(&mut ws.input, x, start, window);
                self.plans
                    .forward(&mut ws.input, &mut ws.spectrum, &mut ws.scratch);
                ws.refs[p].set(&ws.spectrum);
            }
            // P_all of each estimate, channel by channel.
            for (filters, outputs) in self.all.iter().zip(ws.all.iter_mut()) {
                for (c, output) in outputs.iter_mut().enumerate() {
                    ws.sum.clear();
                    for (spectrum, filter) in ws.refs.iter().zip(filters) {
                        ws.sum.multiply_add(spectrum, &filter[c]);
                    }
                    ws.sum.to_complex(&mut ws.spectrum);
                    self.plans
                        .inverse(&mut ws.spectrum, &mut ws.output, &mut ws.scratch);
                    for (t, v) in output[..valid].iter_mut().enumerate() {
                        *v = ws.output[l - 1 + t] * scale;
                    }
                }
            }
            for (k, &(j, e)) in self.pairs.iter().enumerate() {
                let acc = &mut energies[k];
                for c in 0..channels {
                    ws.sum.clear();
                    for cj in 0..channels {
                        ws.sum
                            .multiply_add(&ws.refs[j * channels + cj], &self.own[k][cj][c]);
                    }
                    ws.sum.to_complex(&mut ws.spectrum);
                    self.plans
                        .inverse(&mut ws.spectrum, &mut ws.output, &mut ws.scratch);
                    for (t, v) in ws.own[..valid].iter_mut().enumerate() {
                        *v = ws.output[l - 1 + t] * scale;
                    }
                    // Inside the window, then the filters' tail after it (reference and
                    // estimate zero).
                    let inside = valid.min(window.len().saturating_sub(o));
                    let (target, estimate): (&[f32], &[f32]) = if inside > 0 {
                        let span = window.start + o..window.start + o + inside;
                        (&track.refs[j][c][span.clone()], &track.ests[e][c][span])
                    } else {
                        (&[], &[])
                    };
                    acc.add(&energy_sums(
                        target,
                        estimate,
                        &ws.own[..inside],
                        &ws.all[e][c][..inside],
                    ));
                    acc.add(&energy_sums(
                        &[],
                        &[],
                        &ws.own[inside..valid],
                        &ws.all[e][c][inside..valid],
                    ));
                }
            }
        }
        energies
    }
}

/// Lanes of the energy sums: independent partial sums, so that the loop vectorizes.
const LANES: usize = 4;

/// The sums of squares of [`Energies`] over one stretch: `target` and `estimate` are the
/// reference and the estimate (empty where both are zero, after the window), `own` and `all`
/// the projections `P_j` and `P_all`.
///
/// Compiled for AVX-512, AVX2+FMA and NEON besides the baseline, picked at run time. Lane
/// sums are added in a fixed order, so the result does not depend on the CPU.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
fn energy_sums(target: &[f32], estimate: &[f32], own: &[f64], all: &[f64]) -> Energies {
    let n = own.len();
    let mut acc = [[0.0f64; LANES]; 8];
    let mut add = |lane: usize, s: f64, y: f64, p: f64, a: f64| {
        acc[0][lane] += s * s;
        acc[1][lane] += (y - s) * (y - s);
        acc[2][lane] += (p - s) * (p - s);
        acc[3][lane] += p * p;
        acc[4][lane] += (y - p) * (y - p);
        acc[5][lane] += (a - p) * (a - p);
        acc[6][lane] += a * a;
        acc[7][lane] += (y - a) * (y - a);
    };
    if target.is_empty() {
        for (t, (&p, &a)) in own.iter().zip(&all[..n]).enumerate() {
            add(t % LANES, 0.0, 0.0, p, a);
        }
    } else {
        let (target, estimate, all) = (&target[..n], &estimate[..n], &all[..n]);
        for (t, (((&s, &y), &p), &a)) in target.iter().zip(estimate).zip(own).zip(all).enumerate() {
            add(t % LANES, f64::from(s), f64::from(y), p, a);
        }
    }
    let sums = acc.map(|lanes| lanes.iter().sum::<f64>());
    Energies {
        target: sums[0],
        distortion: sums[1],
        spatial: sums[2],
        own: sums[3],
        own_residual: sums[4],
        interference: sums[5],
        all: sums[6],
        artifacts: sums[7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::bss::correlations::Correlations;
    use crate::eval::bss::filters::solve_filters;
    use crate::eval::bss::noise;

    #[test]
    fn a_filtered_copy_of_the_reference_is_projected_exactly() {
        // ŝ = h * s with a 3-tap h: the own-source projection recovers it, so e_artif = 0.
        // The reference ends in zeros, so that the estimate holds all of h * s.
        let len = 4000;
        let mut s = noise(len, 7);
        s[len - 10..].iter_mut().for_each(|v| *v = 0.0);
        let h = [0.5, -0.25, 0.125];
        let est: Vec<f32> = (0..len)
            .map(|n| {
                (0..3)
                    .filter(|&a| n >= a)
                    .map(|a| h[a] * s[n - a])
                    .sum::<f32>()
            })
            .collect();
        let track = Track {
            refs: vec![vec![&s[..]]],
            ests: vec![vec![&est[..]]],
        };
        let l = 8;
        let corr = Correlations::compute(&track, 0..len, l);
        let (c, loading) = solve_filters(|| corr.gram(&[0]), &corr.cross(&[0], &[0]), 0.0).unwrap();
        assert_eq!(loading, 0.0);
        for a in 0..l {
            let want = if a < 3 { f64::from(h[a]) } else { 0.0 };
            assert!((c[[a, 0]] - want).abs() < 1e-5, "tap {a}: {}", c[[a, 0]]);
        }
        let filters = Filters {
            l,
            sources: 1,
            channels: 1,
            all: vec![c.clone()],
            pairs: vec![(0, 0)],
            own: vec![c],
        };
        let projector = Projector::new(filters, len);
        let e = projector.energies(&track, &[Some(0..len)])[0]
            .clone()
            .unwrap()[0];
        // The estimate is exactly a filtered reference, up to f32 rounding of the estimate.
        assert!(e.artifacts < 1e-10 * e.all, "{e:?}");
        assert_eq!(e.interference, 0.0);
    }
}
