//! The BSS Eval numerics of museval's `metrics.py` and mir_eval's `separation.py`, reorganised
//! to do each piece of work once.
//!
//! Each estimate `ŝ` is split into `s_true + e_spat + e_interf + e_artif`, where `P_j`, the
//! least-squares projection of `ŝ` on the delays `0..L` of its own reference `s_j` (all its
//! channels), is `s_true + e_spat`, and `P_all`, the projection on the delays of every
//! reference, adds `e_interf`; `e_artif = ŝ - P_all`. The projections are linear filters
//! `C = G⁻¹ D` of the references, where `G` holds the inner products of delayed reference
//! channels and `D` those of delayed reference channels with the estimate's channels.
//!
//! Where the Python implementations compute full-length FFTs per pair and per call, here:
//! - every correlation `ρ_xy(k) = Σ_n x[n + k] y[n]` for `|k| < L` comes from one pass over the
//!   signals in blocks, accumulating the cross-spectra of all pairs and inverting each once;
//! - `G` is factored once (Cholesky) for all estimates;
//! - the energies of the decomposition in each window are summed block by block from
//!   overlap-save convolutions of the windowed references with the filters' spectra, in the
//!   time domain, as the reference implementations sum them.

use std::ops::Range;
use std::sync::Arc;

use multiversion::multiversion;
use ndarray::Array2;
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::linalg::Cholesky;

/// FFT length of the correlation and convolution blocks when the signal is long enough.
const BLOCK_FFT: usize = 8192;

/// Independent partial sums of the correlations (fixed, so results do not depend on the number
/// of threads).
const CORRELATION_PARTS: usize = 8;

/// Bins of the cross-spectra accumulated in one pass over the pairs.
const BINS_PER_PASS: usize = 256;

/// Blocks of one window handled by one task of the energy computation.
const BLOCKS_PER_TASK: usize = 16;

/// The diagonal loadings tried, relative to the mean diagonal of a Gram matrix, when it is not
/// numerically positive definite.
const LOADINGS: [f64; 5] = [1e-14, 1e-12, 1e-10, 1e-8, 1e-6];

/// Planar signals of one track: `refs[j][c]` and `ests[j][c]`, all of one length.
pub(crate) struct Track<'a> {
    /// Reference sources, then channels.
    pub refs: Vec<Vec<&'a [f32]>>,
    /// Estimated sources, then channels.
    pub ests: Vec<Vec<&'a [f32]>>,
}

impl Track<'_> {
    fn ref_channels(&self) -> Vec<&[f32]> {
        self.refs.iter().flatten().copied().collect()
    }

    fn est_channels(&self) -> Vec<&[f32]> {
        self.ests.iter().flatten().copied().collect()
    }
}

/// The smallest power of two at least `n`, and at least 2.
fn pow2_at_least(n: usize) -> usize {
    n.max(2).next_power_of_two()
}

/// Real FFT plans of one length, shared by threads.
#[derive(Clone)]
struct Plans {
    len: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
}

impl Plans {
    fn new(len: usize) -> Plans {
        let mut planner = RealFftPlanner::<f64>::new();
        Plans {
            len,
            forward: planner.plan_fft_forward(len),
            inverse: planner.plan_fft_inverse(len),
        }
    }

    fn bins(&self) -> usize {
        self.len / 2 + 1
    }

    fn scratch(&self) -> Vec<Complex<f64>> {
        let a = self.forward.get_scratch_len();
        let b = self.inverse.get_scratch_len();
        vec![Complex::default(); a.max(b)]
    }

    fn forward(
        &self,
        input: &mut [f64],
        output: &mut [Complex<f64>],
        scratch: &mut [Complex<f64>],
    ) {
        self.forward
            .process_with_scratch(input, output, scratch)
            .expect("buffers of the planned length");
    }

    /// The inverse transform, unnormalised (`inverse(forward(x)) = len · x`).
    fn inverse(
        &self,
        input: &mut [Complex<f64>],
        output: &mut [f64],
        scratch: &mut [Complex<f64>],
    ) {
        // The spectra of real signals have real DC and Nyquist bins; rounding may leave a
        // trace of an imaginary part, which the transform would refuse.
        input[0].im = 0.0;
        if self.len.is_multiple_of(2) {
            input[self.len / 2].im = 0.0;
        }
        self.inverse
            .process_with_scratch(input, output, scratch)
            .expect("buffers of the planned length");
    }
}

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

/// Copies `x[start..start + buf.len()]` into `buf`, with zeros wherever the index is outside
/// `valid` (the stretch being analysed) or negative.
fn fill(buf: &mut [f64], x: &[f32], start: isize, valid: &Range<usize>) {
    for (m, v) in buf.iter_mut().enumerate() {
        let n = start + m as isize;
        *v = if n >= valid.start as isize && n < valid.end as isize {
            f64::from(x[n as usize])
        } else {
            0.0
        };
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

/// A Gram matrix that stayed singular however much diagonal loading was added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Singular;

/// Least-squares filters `G⁻¹ D`, with `eps` added to the diagonal of `G` (as museval does) and
/// the loading (relative to the mean diagonal) that had to be added on top for `G` to be
/// numerically positive definite, if any.
///
/// A reference channel that is zero throughout has zero rows in `G` and `D`; its diagonal is
/// set to 1, so that its coefficients are 0 (the least-squares solution of least norm).
pub(crate) fn solve_filters(
    gram: impl Fn() -> Array2<f64>,
    d: &Array2<f64>,
    eps: f64,
) -> Result<(Array2<f64>, f64), Singular> {
    let mut mean_diagonal = None;
    for loading in std::iter::once(0.0).chain(LOADINGS) {
        let mut a = gram();
        let n = a.nrows();
        let mean_diagonal = *mean_diagonal.get_or_insert_with(|| a.diag().sum() / n as f64);
        for i in 0..n {
            let v = &mut a[[i, i]];
            *v = if *v == 0.0 {
                1.0
            } else {
                *v + eps + loading * mean_diagonal
            };
        }
        if let Ok(chol) = Cholesky::factor(a) {
            let mut c = d.clone();
            chol.solve_in_place(&mut c);
            if c.iter().all(|v| v.is_finite()) {
                return Ok((c, loading));
            }
        }
    }
    Err(Singular)
}

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

/// The least-squares filters of one evaluation, as coefficients.
pub(crate) struct Filters {
    /// Taps.
    pub l: usize,
    /// Number of sources `J`.
    pub sources: usize,
    /// Channels per source `I`.
    pub channels: usize,
    /// `all[e]`: the `(J·I·L) × I` filters of estimate `e` on every reference.
    pub all: Vec<Array2<f64>>,
    /// The (reference, estimate) pairs evaluated.
    pub pairs: Vec<(usize, usize)>,
    /// `own[k]`: the `(I·L) × I` filters of `pairs[k]` on its reference alone.
    pub own: Vec<Array2<f64>>,
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
    let [
        target,
        distortion,
        spatial,
        own,
        own_residual,
        interference,
        all,
        artifacts,
    ] = acc.map(|lanes| lanes.iter().sum());
    Energies {
        target,
        distortion,
        spatial,
        own,
        own_residual,
        interference,
        all,
        artifacts,
    }
}

/// `s += x · conj(y)`, bin by bin, real and imaginary parts apart.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
fn add_conjugate_product(
    (sr, si): (&mut [f64], &mut [f64]),
    (xr, xi): (&[f64], &[f64]),
    (yr, yi): (&[f64], &[f64]),
) {
    let x = xr.iter().zip(xi);
    let y = yr.iter().zip(yi);
    for (((sr, si), (xr, xi)), (yr, yi)) in sr.iter_mut().zip(si.iter_mut()).zip(x).zip(y) {
        *sr += xr * yr + xi * yi;
        *si += xi * yr - xr * yi;
    }
}

/// `s += a · b`, bin by bin, real and imaginary parts apart.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
fn add_product(
    (sr, si): (&mut [f64], &mut [f64]),
    (ar, ai): (&[f64], &[f64]),
    (br, bi): (&[f64], &[f64]),
) {
    let x = ar.iter().zip(ai);
    let y = br.iter().zip(bi);
    for (((sr, si), (ar, ai)), (br, bi)) in sr.iter_mut().zip(si.iter_mut()).zip(x).zip(y) {
        *sr += ar * br - ai * bi;
        *si += ar * bi + ai * br;
    }
}

/// A spectrum with its real and imaginary parts apart (so that products vectorize).
#[derive(Debug, Clone)]
struct Spectrum {
    re: Vec<f64>,
    im: Vec<f64>,
}

impl Spectrum {
    fn zeros(bins: usize) -> Spectrum {
        Spectrum {
            re: vec![0.0; bins],
            im: vec![0.0; bins],
        }
    }

    fn set(&mut self, z: &[Complex<f64>]) {
        for ((r, i), z) in self.re.iter_mut().zip(self.im.iter_mut()).zip(z) {
            *r = z.re;
            *i = z.im;
        }
    }

    fn clear(&mut self) {
        self.re.iter_mut().for_each(|v| *v = 0.0);
        self.im.iter_mut().for_each(|v| *v = 0.0);
    }

    /// `self += a · b`, bin by bin.
    fn multiply_add(&mut self, a: &Spectrum, b: &Spectrum) {
        add_product((&mut self.re, &mut self.im), (&a.re, &a.im), (&b.re, &b.im));
    }

    fn to_complex(&self, z: &mut [Complex<f64>]) {
        for ((z, &r), &i) in z.iter_mut().zip(&self.re).zip(&self.im) {
            *z = Complex::new(r, i);
        }
    }
}

/// Whether any source of `sources` is silent in `window` by museval's rule: the sum of its
/// channels is zero at every sample.
pub(crate) fn any_silent(sources: &[Vec<&[f32]>], window: &Range<usize>) -> bool {
    sources.iter().any(|channels| {
        window
            .clone()
            .all(|n| channels.iter().map(|x| f64::from(x[n])).sum::<f64>() == 0.0)
    })
}

/// `10 log10(num / den)`, and `+∞` for a zero denominator (museval's and mir_eval's
/// `_safe_db`).
pub(crate) fn db(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (num / den).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32
            })
            .collect()
    }

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
