//! Choosing the number of components: a sweep over a range of ranks with the three measures
//! the NMF literature uses, or one fit with automatic relevance determination.
//!
//! **Sweep** ([`RankMethod::Sweep`]). Every K of the range is fitted from several seeded
//! starts. Each start hides its own random fraction of the entries (weight 0 in the fit,
//! [`super::masked`]) and carries its factors from one K to the next (warm starts: the
//! factors of K − 1 plus one component made from what they leave unexplained), so each start
//! is one chain of fits; the chains run in parallel and each is single-threaded, so results
//! do not depend on the number of threads. Per K:
//!
//! - `cost`: the divergence per fitted entry of the best start (the reconstruction elbow);
//! - `stability`: the templates of every pair of starts matched one to one (Hungarian
//!   algorithm on their cosine similarities), the mean similarity of the matched pairs,
//!   averaged over the pairs of starts (1 when every start finds the same templates);
//! - `held_out`: the divergence per held-out entry of the start that predicts them best (the
//!   mean would let one start stuck in a poor local minimum decide): Wold-style
//!   cross-validation, which falls while components explain structure and stops falling (or
//!   rises) once they fit noise.
//!
//! The rule ([`RULE`]): the largest K whose held-out divergence is at most a tenth of that of
//! K − 1, `held_out(K) <= held_out(K − 1) / 10`, else the K of the largest fall. On mixtures of
//! known rank (`benches/notes.rs`) the step to the true rank cut it 24- to 140-fold, and
//! every step past it at most 3.6-fold: past the true rank, a component only refines.
//!
//! **ARD** ([`RankMethod::Ard`]): one fit with K = the top of the range and the ℓ1 relevance
//! prior of Tan & Févotte (2013); components the data do not need are driven to zero, and the
//! chosen K is the number whose relevance stays above its lower bound by [`ARD_MARGIN`].

use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use rayon::prelude::*;

use super::masked::{Ard, Costs, Masked};
use super::params::check_non_negative;
pub use super::rank_params::{KRange, MAX_RANK, RankMethod, RankParams};
use super::rng::Rng;
use super::stability::matched_similarity;
use super::{DATA_FLOOR, NmfParams, memory};
use crate::error::ParamError;

/// The name of the sweep's rule, as reports print it.
pub const RULE: &str = "last K that cut the held-out cost 10-fold";

/// The name of the ARD rule.
pub const ARD_RULE: &str = "components whose ARD relevance stays above its bound";

/// A component counts as relevant when its relevance exceeds the bound by this fraction.
pub const ARD_MARGIN: f64 = 0.5;

/// ARD runs up to this many times the iterations of one fit of the sweep.
const ARD_ITERATIONS: usize = 10;

/// The shape parameter `a` of the ARD prior on the relevances.
const ARD_SHAPE: f64 = 5.0;

/// The factor by which the held-out divergence must fall for the sweep's rule.
const RULE_DROP: f64 = 10.0;

/// The measures of one K of a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankRow {
    /// The number of components.
    pub k: usize,
    /// The divergence per fitted entry of the best start, in units of the data scaled to mean 1.
    pub cost: f64,
    /// Mean cosine similarity of the templates of the starts, matched one to one (0 to 1).
    pub stability: f64,
    /// The divergence per held-out entry of the start that predicts them best (same units as
    /// `cost`).
    pub held_out: f64,
    /// Iterations run at this K, summed over the starts.
    pub iterations: usize,
}

/// What a rank selection found.
#[derive(Debug, Clone, PartialEq)]
pub struct RankReport {
    /// The method used.
    pub method: RankMethod,
    /// The range tried.
    pub range: KRange,
    /// The K chosen.
    pub chosen: usize,
    /// The rule that chose it.
    pub rule: &'static str,
    /// The sweep's measures per K (empty for ARD).
    pub rows: Vec<RankRow>,
    /// ARD's final relevance of each component, divided by its lower bound (empty for the
    /// sweep).
    pub relevance: Vec<f64>,
    /// Frames fitted (after summing groups of frames, see [`RankParams::with_max_frames`]).
    pub frames_fitted: usize,
    /// Starts per K (1 for ARD).
    pub starts: usize,
    /// The held-out fraction (0 for ARD).
    pub held_out: f32,
    /// Iterations of the ARD fit (0 for the sweep).
    pub ard_iterations: usize,
}

impl RankReport {
    /// The row of the chosen K (`None` for ARD).
    pub fn chosen_row(&self) -> Option<&RankRow> {
        self.rows.iter().find(|r| r.k == self.chosen)
    }

    /// `nmf` with the chosen number of components: the parameters of the fit that follows
    /// the selection (`-k auto`).
    pub fn fit_params(&self, nmf: &NmfParams) -> NmfParams {
        let mut fit = nmf.clone();
        fit.components = self.chosen;
        fit
    }
}

/// Bytes a rank selection of `bins × frames` data holds at once: the scaled data, and per
/// start its mask, two element-wise buffers and its factors, plus the templates kept per K for
/// the stability measure. Saturates instead of overflowing.
pub fn rank_memory_estimate(bins: usize, frames: usize, params: &RankParams) -> u64 {
    let frames = frames.min(params.max_frames) as u128;
    let (f, high, low) = (
        bins as u128,
        params.range.high() as u128,
        params.range.low() as u128,
    );
    let starts = params.starts as u128;
    let entries = f * frames;
    let per_start = 4 * (3 * entries + 4 * (f + frames) * high);
    let kept = 4 * starts * f * (high * (high + 1) - low * (low.saturating_sub(1))) / 2;
    let total = 4 * entries + starts * per_start + kept;
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// Chooses the number of components of `v` (shape `(F, T)`) with `params.method`, fitting
/// with the loss of `params` and the iterations, tolerance, seed, floor and memory limit of
/// `nmf` (whose own loss and number of components are not used).
///
/// # Errors
/// A [`ParamError`] for invalid parameters, a range beyond the frames or bins of `v`, a
/// sweep beyond the memory limit, or data that are not finite and non-negative.
///
/// ```
/// use demix::nmf::{KRange, NmfParams, RankParams, select_rank};
/// use ndarray::Array2;
/// // Three non-overlapping spectra, each switched on and off on its own.
/// let v = Array2::from_shape_fn((30, 64), |(f, t)| {
///     let on = [t % 2 == 0, (t / 2) % 2 == 0, (t / 4) % 2 == 0];
///     (0..3).map(|n| if on[n] && f % 3 == n { 1.0f32 } else { 0.0 }).sum::<f32>()
/// });
/// let report = select_rank(v.view(), &NmfParams::new(1), &RankParams::new(KRange::new(1, 6)?))?;
/// assert_eq!(report.chosen, 3);
/// assert_eq!(report.rows.len(), 6);
/// # Ok::<(), demix::ParamError>(())
/// ```
pub fn select_rank(
    v: ArrayView2<f32>,
    nmf: &NmfParams,
    params: &RankParams,
) -> Result<RankReport, ParamError> {
    let (bins, frames) = v.dim();
    params.check_with(nmf)?;
    params.check_for(bins, frames)?;
    let divergence = params.loss.check()?;
    check_non_negative("V", v)?;
    if let Some(limit) = nmf.max_memory.or_else(memory::available_memory) {
        let needs = rank_memory_estimate(bins, frames, params);
        if needs > limit {
            return Err(ParamError::MemoryLimit {
                needs,
                limit,
                components: params.range.high(),
                frames,
                bins,
            });
        }
    }
    let (x, _mean) = scaled_pooled(v, nmf.floor, params.max_frames);
    let fitted_frames = x.nrows();
    let mut report = RankReport {
        method: params.method,
        range: params.range,
        chosen: params.range.low(),
        rule: RULE,
        rows: Vec::new(),
        relevance: Vec::new(),
        frames_fitted: fitted_frames,
        starts: params.starts,
        held_out: params.held_out,
        ard_iterations: 0,
    };
    match params.method {
        RankMethod::Sweep => {
            let chains: Vec<Chain> = (0..params.starts)
                .into_par_iter()
                .map(|start| run_chain(x.view(), divergence, nmf, params, start))
                .collect();
            report.rows = rows(&chains, params.range);
            report.chosen = choose(&report.rows);
        }
        RankMethod::Ard => {
            let (relevance, iterations) = run_ard(x.view(), divergence, nmf, params);
            let relevant = relevance.iter().filter(|&&r| r > 1.0 + ARD_MARGIN).count();
            report.chosen = relevant.clamp(params.range.low(), params.range.high());
            report.rule = ARD_RULE;
            report.relevance = relevance;
            report.starts = 1;
            report.held_out = 0.0;
            report.ard_iterations = iterations;
        }
    }
    Ok(report)
}

/// The sweep's rule: the largest K at which the held-out divergence falls to at most
/// 1 / [`RULE_DROP`] of its value at K − 1 (the last component that still explained most of
/// what the model could not predict); if no step falls that far, the K of the largest fall
/// (the elbow); if it never falls, the smallest K.
pub(crate) fn choose(rows: &[RankRow]) -> usize {
    let drop = |p: &[RankRow]| p[0].held_out / p[1].held_out.max(f64::MIN_POSITIVE);
    let last_big = rows
        .windows(2)
        .filter(|p| drop(p) >= RULE_DROP)
        .map(|p| p[1].k)
        .next_back();
    let largest = rows
        .windows(2)
        .filter(|p| drop(p).is_finite() && drop(p) > 1.0)
        .max_by(|a, b| drop(a).total_cmp(&drop(b)))
        .map(|p| p[1].k);
    last_big
        .or(largest)
        .or(rows.first().map(|r| r.k))
        .unwrap_or(0)
}

/// `Vᵀ` divided by its mean and floored as [`super::fit`] does, its frames summed in equal
/// groups down to at most `max_frames`; and the mean.
fn scaled_pooled(v: ArrayView2<f32>, floor: f32, max_frames: usize) -> (Array2<f32>, f64) {
    let (bins, frames) = v.dim();
    let group = frames.div_ceil(max_frames);
    let pooled = frames.div_ceil(group);
    let mut x = Array2::<f32>::zeros((pooled, bins));
    for (t, column) in v.axis_iter(Axis(1)).enumerate() {
        x.row_mut(t / group)
            .zip_mut_with(&column, |x, &v| *x += v / group as f32);
    }
    let total: f64 = x.iter().map(|&a| f64::from(a)).sum();
    let mean = match total / x.len() as f64 {
        m if m > 0.0 && m.is_finite() => m,
        _ => 1.0,
    };
    let largest = x.iter().copied().fold(0.0f32, f32::max);
    let inv = 1.0 / mean;
    let floor = DATA_FLOOR.max((f64::from(largest) * inv * f64::from(floor)) as f32);
    x.mapv_inplace(|a| ((f64::from(a) * inv) as f32).max(floor));
    (x, mean)
}

/// One start's fits over the range: per K its templates, costs and iterations.
struct Chain {
    w: Vec<Array2<f32>>,
    costs: Vec<Costs>,
    iterations: Vec<usize>,
    fitted: usize,
    held: usize,
}

/// A seed for each start and purpose, spread by a fixed odd constant.
fn seed_of(nmf: &NmfParams, start: usize, purpose: u64) -> u64 {
    nmf.seed
        .wrapping_add((start as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(purpose)
}

/// The fits of one start: its mask, a random start at the bottom of the range, then each K
/// warm-started from the one before.
fn run_chain(
    x: ArrayView2<f32>,
    divergence: super::divergence::Divergence,
    nmf: &NmfParams,
    params: &RankParams,
    start: usize,
) -> Chain {
    let (frames, bins) = x.dim();
    let mut rng = Rng::new(seed_of(nmf, start, 1));
    let p = f64::from(params.held_out);
    let mask = Array2::from_shape_simple_fn((frames, bins), || f32::from(rng.uniform() > p));
    let held = mask.iter().filter(|&&m| m == 0.0).count();
    let fitted = mask.len() - held;
    let (mut w, mut g) = super::init::random(x, params.range.low(), seed_of(nmf, start, 2));
    let mut fit = Masked::new(x, Some(mask.view()), divergence);
    let mut chain = Chain {
        w: Vec::new(),
        costs: Vec::new(),
        iterations: Vec::new(),
        fitted,
        held,
    };
    for k in params.range.low()..=params.range.high() {
        if k > w.ncols() {
            (w, g) = add_component(x, &mask, &w, &g, &mut rng);
        }
        let (costs, iterations) = iterate(&mut fit, &mut w, &mut g, nmf, params.tol);
        chain.w.push(w.clone());
        chain.costs.push(costs);
        chain.iterations.push(iterations);
    }
    chain
}

/// Iterates until the fitted cost falls by less than the tolerance between checks every 10
/// iterations, or the iteration limit; the final costs and the iterations run.
fn iterate(
    fit: &mut Masked,
    w: &mut Array2<f32>,
    g: &mut Array2<f32>,
    nmf: &NmfParams,
    tol: f64,
) -> (Costs, usize) {
    let mut last: Option<f64> = None;
    for it in 0..nmf.max_iter {
        let want = it % nmf.cost_every.max(1) == 0;
        if let Some(c) = fit.step(w, g, None, want) {
            if let Some(prev) = last
                && tol > 0.0
                && (prev - c.fitted) / c.fitted.abs().max(f64::MIN_POSITIVE) < tol
            {
                return (fit.costs(w, g), it);
            }
            last = Some(c.fitted);
        }
    }
    (fit.costs(w, g), nmf.max_iter)
}

/// The factors with one more component: its template is what the model leaves unexplained
/// on the fitted entries (summed over frames, with a seeded jitter so that starts differ), its
/// activation that residual's level in each frame.
fn add_component(
    x: ArrayView2<f32>,
    mask: &Array2<f32>,
    w: &Array2<f32>,
    g: &Array2<f32>,
    rng: &mut Rng,
) -> (Array2<f32>, Array2<f32>) {
    let (frames, bins) = x.dim();
    let k = w.ncols();
    let model = g.dot(&w.t());
    let mut template = Array1::<f64>::zeros(bins);
    let mut level = Array1::<f64>::zeros(frames);
    for t in 0..frames {
        for f in 0..bins {
            let r = f64::from(mask[[t, f]] * (x[[t, f]] - model[[t, f]]).max(0.0));
            template[f] += r;
            level[t] += r;
        }
    }
    let total: f64 = template.sum();
    let mean = x.iter().map(|&a| f64::from(a)).sum::<f64>() / x.len() as f64;
    let mut w2 = Array2::<f32>::zeros((bins, k + 1));
    let mut g2 = Array2::<f32>::zeros((frames, k + 1));
    w2.slice_mut(s![.., ..k]).assign(w);
    g2.slice_mut(s![.., ..k]).assign(g);
    for f in 0..bins {
        let base = if total > 0.0 {
            template[f] / total
        } else {
            0.0
        };
        // Some of every bin, so that no entry of the new template starts (and stays) at zero.
        let value = (0.5 + rng.uniform()) * (base + 0.1 / bins as f64);
        w2[[f, k]] = value as f32;
    }
    let floor = 1e-3 * mean * bins as f64 / k as f64;
    for t in 0..frames {
        g2[[t, k]] = (level[t].max(floor) * (0.5 + rng.uniform())) as f32;
    }
    (w2, g2)
}

/// The per-K measures of the chains.
fn rows(chains: &[Chain], range: KRange) -> Vec<RankRow> {
    (range.low()..=range.high())
        .enumerate()
        .map(|(i, k)| {
            let cost = chains
                .iter()
                .map(|c| c.costs[i].fitted / c.fitted.max(1) as f64)
                .fold(f64::INFINITY, f64::min);
            let held_out = chains
                .iter()
                .map(|c| c.costs[i].held_out / c.held.max(1) as f64)
                .fold(f64::INFINITY, f64::min);
            let mut pairs = 0usize;
            let mut similarity = 0.0;
            for a in 0..chains.len() {
                for b in a + 1..chains.len() {
                    similarity += matched_similarity(&chains[a].w[i], &chains[b].w[i]);
                    pairs += 1;
                }
            }
            RankRow {
                k,
                cost,
                stability: similarity / pairs.max(1) as f64,
                held_out,
                iterations: chains.iter().map(|c| c.iterations[i]).sum(),
            }
        })
        .collect()
}

/// The ARD fit at the top of the range: each component's final relevance over its lower
/// bound, and the iterations run. Stops when no relevance changes by more than the tolerance
/// (relative) between checks, or at the iteration limit.
fn run_ard(
    x: ArrayView2<f32>,
    divergence: super::divergence::Divergence,
    nmf: &NmfParams,
    params: &RankParams,
) -> (Vec<f64>, usize) {
    let k = params.range.high();
    let (mut w, mut g) = super::init::random(x, k, seed_of(nmf, 0, 2));
    let mut ard = Ard::new(ARD_SHAPE, x, k, 1.0);
    ard.update(&w, &g);
    let mut fit = Masked::new(x, None, divergence);
    let mut last = ard.relevance.clone();
    // Pruning a component that duplicates another takes many iterations.
    let max_iter = nmf.max_iter.saturating_mul(ARD_ITERATIONS);
    let mut iterations = max_iter;
    for it in 0..max_iter {
        fit.step(&mut w, &mut g, Some(&mut ard), false);
        if (it + 1) % nmf.cost_every.max(1) == 0 {
            let change = ard
                .relevance
                .iter()
                .zip(&last)
                .map(|(a, b)| (a - b).abs() / a.abs().max(f64::MIN_POSITIVE))
                .fold(0.0, f64::max);
            if nmf.tol > 0.0 && change < nmf.tol {
                iterations = it + 1;
                break;
            }
            last.assign(&ard.relevance);
        }
    }
    let bound = ard.bound();
    (
        ard.relevance.iter().map(|&l| l / bound).collect(),
        iterations,
    )
}

#[cfg(test)]
mod tests {
    use super::super::stability::hungarian;
    use super::*;

    #[test]
    fn ranges_parse_and_bad_ones_are_refused() {
        assert_eq!("2-32".parse::<KRange>(), KRange::new(2, 32));
        assert_eq!("4".parse::<KRange>(), KRange::new(4, 4));
        for bad in ["5-2", "0-4", "a-3", "", "-3", "3-"] {
            assert!(
                matches!(bad.parse::<KRange>(), Err(ParamError::BadRankRange(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "2-1000".parse::<KRange>(),
            Err(ParamError::RankTooLarge { .. })
        ));
    }

    #[test]
    fn hungarian_finds_the_best_assignment() {
        let cost = ndarray::array![[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]];
        let a = hungarian(&cost);
        let total: f64 = (0..3).map(|i| cost[[i, a[i]]]).sum();
        assert_eq!(total, 5.0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2]);
    }

    #[test]
    fn matched_similarity_ignores_the_order_of_columns() {
        let a = ndarray::array![[1.0f32, 0.0], [0.0, 1.0], [0.0, 1.0]];
        let b = ndarray::array![[0.0f32, 1.0], [1.0, 0.0], [1.0, 0.0]];
        assert!((matched_similarity(&a, &b) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_rule_takes_the_last_tenfold_cut_else_the_largest() {
        let row = |k, held_out| RankRow {
            k,
            cost: 0.0,
            stability: 1.0,
            held_out,
            iterations: 0,
        };
        let rows = [
            row(2, 100.0),
            row(3, 50.0),
            row(4, 1.0),
            row(5, 0.3),
            row(6, 0.1),
        ];
        assert_eq!(choose(&rows), 4);
        // A held-out cost that only rises: nothing was worth adding.
        assert_eq!(choose(&[row(2, 1.0), row(3, 2.0)]), 2);
        assert_eq!(choose(&[row(2, 1.0), row(3, 2.0), row(4, 3.0)]), 2);
        assert_eq!(choose(&[row(2, 8.0), row(3, 2.0), row(4, 1.0)]), 3);
        assert_eq!(choose(&[row(2, 1.0), row(3, 0.1), row(4, 0.05)]), 3);
    }
}
