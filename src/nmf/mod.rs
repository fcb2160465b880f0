//! Non-negative matrix factorisation `V ≈ W H` by β-divergence multiplicative updates
//! (Févotte & Idier 2011). Works on any non-negative matrix; knows nothing of audio.
//!
//! Each iteration updates W, then H, with the majorisation–minimisation exponent γ(β), so the
//! cost never rises (unless another exponent is asked for, [`NmfParams::with_step_exponent`]).
//! V is divided by its mean before fitting (β-divergences are scale-covariant, so the path is
//! the same) and raised to a floor: a fraction of its largest
//! value ([`NmfParams::with_floor`]) and at least [`DATA_FLOOR`] of its mean. The model is
//! floored before negative powers, so zero bins, silent frames and all-zero input never give
//! NaN or infinity.

mod avx512;
mod blocks;
mod convolutive;
mod divergence;
#[cfg(test)]
mod handicap_tests;
mod init;
mod kernels;
mod linalg;
mod loss;
mod masked;
mod memory;
mod params;
mod penalty;
mod portable;
mod rank;
mod rank_params;
mod rng;
mod stability;
mod sums;
mod tiled;
mod update;

pub(crate) use linalg::gemm;
pub use loss::Loss;
pub use memory::{available_memory, memory_estimate};
pub(crate) use params::template_columns;
pub use params::{Init, MAX_RESTARTS, MAX_TEMPLATE_FRAMES, NmfParams};
pub use rank::{
    ARD_MARGIN, ARD_RULE, KRange, MAX_RANK, RULE, RankMethod, RankParams, RankReport, RankRow,
    rank_memory_estimate, select_rank,
};
/// The unit tests' random data elsewhere in the crate.
#[cfg(test)]
pub(crate) use rng::Rng;
pub(crate) use sums::ActivationSums;

/// For the floor bench (`benches/nmf.rs`) only, behind the `bench-internals` feature: the four products of an
/// Itakura–Saito iteration with K columns on one side (`termsᵀ G` twice and `terms W` twice,
/// for W of bins × K and G of frames × K, standard layout) by demix's AVX-512 kernels
/// (whatever `DEMIX_PORTABLE` says), blocks of frames in parallel, with each block's terms in
/// cache as in an iteration. Returns false (and does nothing) on a CPU without AVX-512F.
#[cfg(feature = "bench-internals")]
pub fn k_wide_products(w: ArrayView2<f32>, g: ArrayView2<f32>) -> bool {
    avx512::available() && {
        tiled::k_wide_products(w, g, 1e-2);
        true
    }
}

use ndarray::{Array2, ArrayView2, Zip, s};
use rayon::prelude::*;

use crate::error::ParamError;
use update::{Engine, HPass};

/// Values of V are floored at least at this fraction of its mean before fitting.
pub const DATA_FLOOR: f32 = 1e-9;

/// The cost after a given number of iterations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostPoint {
    /// Iterations completed when the cost was computed (0 is the initialisation).
    pub iteration: usize,
    /// The divergence `D(V | W H)` summed over all elements.
    pub cost: f64,
}

/// Where a running fit is, passed to the callback of [`fit_with_progress`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Iterations completed.
    pub iteration: usize,
    /// The iteration limit.
    pub max_iter: usize,
    /// The most recent cost, if one has been computed.
    pub cost: Option<f64>,
}

/// A fitted factorisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Nmf {
    /// Templates, shape `(F, K)`: fixed templates first, then the free components.
    pub w: Array2<f32>,
    /// Activations, shape `(K, T)`.
    pub h: Array2<f32>,
    /// The cost at every iteration where it was computed, the last one being the final factors.
    pub cost_history: Vec<CostPoint>,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the run stopped because the cost changed by less than the tolerance.
    pub converged: bool,
}

impl Nmf {
    /// The cost of the final factors.
    pub fn final_cost(&self) -> f64 {
        self.cost_history.last().map_or(f64::NAN, |c| c.cost)
    }

    /// The sum of every entry of the model `W H`, `Σ_k |W_k|₁ |H_k|₁`: compared with the sum of
    /// the data, how much of it the model explains (0 when penalties silenced every
    /// activation; NaN if a factor is not finite).
    pub fn model_sum(&self) -> f64 {
        ActivationSums::of(self.h.view()).model_sum(self.w.view())
    }

    /// The energy of each component's model `W_k H_k`: `|W_k|² |H_k|²`.
    pub fn component_energies(&self) -> Vec<f64> {
        ActivationSums::of(self.h.view()).energies(self.w.view())
    }
}

/// Factorises the non-negative matrix `v` (shape `(F, T)`) as `W H`.
///
/// # Errors
/// A [`ParamError`] for invalid parameters, negative or non-finite values in `v`, an empty
/// `v`, or given matrices whose shapes do not fit `v`.
///
/// ```
/// use demix::nmf::{fit, Loss, NmfParams};
/// use ndarray::array;
/// // An exactly rank-2 matrix.
/// let w0 = array![[1.0f32, 0.0], [0.5, 1.0], [0.0, 2.0]];
/// let h0 = array![[1.0f32, 2.0, 0.5, 0.0], [0.3, 0.0, 1.0, 2.0]];
/// let v = w0.dot(&h0) + 0.01;
/// let model = fit(v.view(), &NmfParams::new(2).with_loss(Loss::Euclidean).with_max_iter(500))?;
/// let err = (&model.w.dot(&model.h) - &v).mapv(f32::abs).fold(0.0, |a: f32, &b| a.max(b));
/// assert!(err < 0.05, "max error {err}");
/// assert!(model.cost_history.windows(2).all(|c| c[1].cost <= c[0].cost * (1.0 + 1e-6)));
/// # Ok::<(), demix::ParamError>(())
/// ```
pub fn fit(v: ArrayView2<f32>, params: &NmfParams) -> Result<Nmf, ParamError> {
    fit_with_progress(v, params, &mut |_| {})
}

/// [`fit`], calling `progress` after every iteration.
///
/// # Errors
/// As [`fit`].
pub fn fit_with_progress(
    v: ArrayView2<f32>,
    params: &NmfParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Nmf, ParamError> {
    // Restarts draw new random starts; a start given by the caller leaves nothing to draw.
    let restarts = if params.initial.is_some() {
        1
    } else {
        params.restarts.max(1)
    };
    let total = restarts.saturating_mul(params.max_iter);
    let mut best: Option<Nmf> = None;
    for restart in 0..restarts {
        let attempt = if restart == 0 {
            params.clone()
        } else {
            params
                .clone()
                .with_init(Init::Random)
                .with_seed(params.seed.wrapping_add(restart as u64))
        };
        let mut factorization = Factorization::new(v, &attempt)?;
        let offset = restart.saturating_mul(params.max_iter);
        factorization.run(&mut |p| {
            progress(Progress {
                iteration: offset.saturating_add(p.iteration),
                max_iter: total,
                cost: p.cost,
            })
        });
        let result = factorization.into_nmf();
        if best
            .as_ref()
            .is_none_or(|b| result.final_cost() < b.final_cost())
        {
            best = Some(result);
        }
    }
    Ok(best.expect("at least one run"))
}

/// [`fit_with_progress`] of V given transposed and owned (frames × bins, V = `vt`ᵀ), which is
/// scaled in place rather than copied: the same result in half the memory for the data (with
/// several restarts, it is copied as by [`fit`]).
///
/// # Errors
/// As [`fit`].
///
/// ```
/// let v = ndarray::Array2::from_shape_fn((6, 8), |(i, j)| 1.0 + ((i * j) % 5) as f32);
/// let params = demix::nmf::NmfParams::new(2);
/// let owned = demix::nmf::fit_transposed(v.t().to_owned(), &params, &mut |_| {})?;
/// assert_eq!(owned, demix::nmf::fit(v.view(), &params)?);
/// # Ok::<(), demix::ParamError>(())
/// ```
pub fn fit_transposed(
    vt: Array2<f32>,
    params: &NmfParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Nmf, ParamError> {
    if params.initial.is_none() && params.restarts > 1 {
        return fit_with_progress(vt.t(), params, progress);
    }
    let mut factorization = Factorization::from_transposed(vt, params)?;
    factorization.run(progress);
    Ok(factorization.into_nmf())
}

/// Checks `v` (F × T) against `params`; returns its mean, by which it is divided, and the
/// floor of the divided data.
fn check_data(v: ArrayView2<f32>, params: &NmfParams) -> Result<(f64, f32), ParamError> {
    let (bins, frames) = v.dim();
    if bins == 0 || frames == 0 {
        return Err(ParamError::Shape {
            what: "V",
            expected: (bins.max(1), frames.max(1)),
            actual: (bins, frames),
        });
    }
    params.check_for(bins, frames)?;
    memory::check_memory(bins, frames, params.total_components(), params)?;
    // The order of the values does not matter below: read them in memory order (V is often a
    // transposed view, whose logical order strides through memory).
    let v = if v.t().is_standard_layout() {
        v.reversed_axes()
    } else {
        v
    };
    let (total, largest, valid) = scan(v);
    if !valid {
        return Err(ParamError::NotNonNegative("V"));
    }
    let scale = match total / (bins * frames) as f64 {
        m if m > 0.0 && m.is_finite() => m,
        _ => 1.0,
    };
    let floor =
        DATA_FLOOR.max((f64::from(largest) * (1.0 / scale) * f64::from(params.floor)) as f32);
    Ok((scale, floor))
}

/// One pass over `v` (rows in memory order, see [`check_data`]): its sum (each row's values
/// in order, then the rows in order), its largest value, and whether every value is finite
/// and at least 0. The rows are split between the threads; the results do not depend on
/// their number.
fn scan(v: ArrayView2<f32>) -> (f64, f32, bool) {
    // Per row: the sum, the largest value, and whether a value was negative, NaN or infinite.
    let mut rows = vec![(0f64, 0f32, false); v.nrows()];
    rows.par_iter_mut()
        .zip(v.outer_iter().into_par_iter())
        .for_each(|(stat, row)| {
            for &a in row {
                stat.0 += f64::from(a);
                stat.1 = stat.1.max(a);
                stat.2 |= !divergence::is_valid_entry(a);
            }
        });
    let total = rows.iter().map(|s| s.0).sum();
    let largest = rows.iter().fold(0f32, |m, s| m.max(s.1));
    (total, largest, !rows.iter().any(|s| s.2))
}

/// A factorisation in progress, for callers that drive the iterations themselves (and for the
/// benchmarks): [`fit`] is `new`, then `run`, then `into_nmf`.
///
/// ```
/// use demix::nmf::{Factorization, NmfParams};
/// let v = ndarray::Array2::from_shape_fn((6, 8), |(i, j)| 1.0 + ((i * j) % 5) as f32);
/// let mut f = Factorization::new(v.view(), &NmfParams::new(2))?;
/// let before = f.cost();
/// for _ in 0..20 {
///     f.step();
/// }
/// assert!(f.cost() < before);
/// assert_eq!(f.into_nmf().iterations, 20);
/// # Ok::<(), demix::ParamError>(())
/// ```
pub struct Factorization {
    engine: Engine,
    /// Templates, bins × K.
    w: Array2<f32>,
    /// Activations transposed, frames × K, in units of the scaled data.
    g: Array2<f32>,
    /// The mean of V, by which the data was divided.
    scale: f64,
    params: NmfParams,
    fixed: usize,
    iteration: usize,
    history: Vec<CostPoint>,
    converged: bool,
    /// Each component's factor `(1 + c_k)^-γ` of its handicap (see
    /// [`NmfParams::with_handicaps`]) and the exponent γ they are of; empty without handicaps.
    handicap_factors: (Vec<f32>, f32),
}

impl Factorization {
    /// Checks the parameters against `v` (shape `(F, T)`), scales and floors a copy of the
    /// data, and initialises the factors.
    ///
    /// # Errors
    /// As [`fit`].
    pub fn new(v: ArrayView2<f32>, params: &NmfParams) -> Result<Factorization, ParamError> {
        let (scale, floor) = check_data(v, params)?;
        // X = Vᵀ / mean(V), floored: frames are contiguous rows.
        let (bins, frames) = v.dim();
        let mut x = Array2::<f32>::zeros((frames, bins));
        crate::hugepages::advise(x.as_slice_mut().expect("fresh arrays are contiguous"));
        let inv = 1.0 / scale;
        Zip::from(&mut x)
            .and(v.t())
            .for_each(|x, &v| *x = ((f64::from(v) * inv) as f32).max(floor));
        Factorization::with_data(x, scale, params)
    }

    /// [`Self::new`] of the data given transposed (frames × bins, V = `vt`ᵀ) and owned: it is
    /// scaled and floored in place rather than copied, so the fit needs one copy of the data,
    /// not two. The factorisation is the same.
    ///
    /// # Errors
    /// As [`fit`].
    pub fn from_transposed(
        mut vt: Array2<f32>,
        params: &NmfParams,
    ) -> Result<Factorization, ParamError> {
        let (scale, floor) = check_data(vt.t(), params)?;
        if !vt.is_standard_layout() {
            vt = vt.as_standard_layout().into_owned();
        }
        let inv = 1.0 / scale;
        vt.mapv_inplace(|v| ((f64::from(v) * inv) as f32).max(floor));
        Factorization::with_data(vt, scale, params)
    }

    /// The factorisation of the scaled and floored data `x` (frames × bins).
    fn with_data(
        x: Array2<f32>,
        scale: f64,
        params: &NmfParams,
    ) -> Result<Factorization, ParamError> {
        let (frames, bins) = x.dim();
        let checked = params.check_for(bins, frames)?;
        let (w, g) = initial_factors(x.view(), checked.params, scale);
        // The engine reads rows of both as contiguous slices.
        let mut w = w.as_standard_layout().into_owned();
        let mut g = g.as_standard_layout().into_owned();
        let fixed = w.ncols() - params.free_columns();
        let groups = params.shift_groups();
        // A convolutive template's delayed activations are copies of its first.
        convolutive::spread(&mut g, &groups);
        if params.normalize {
            let scales = &mut Default::default();
            update::normalize_columns(&mut w, &mut g, (fixed, &groups), scales);
        }
        let (k, div) = (w.ncols(), checked.divergence);
        let mut engine = Engine::new(x, div, (k, fixed), checked.penalties, groups)
            .with_step_exponent(params.step_exponent());
        if let Some(weights) = &params.row_weights {
            assert_eq!(fixed, k, "weights only with every template fixed");
            engine = engine.with_row_weights(weights.clone());
        }
        Ok(Factorization {
            engine,
            w,
            g,
            scale,
            params: params.clone(),
            fixed,
            iteration: 0,
            // Room for every cost `run` records, so that its loop allocates nothing.
            // Room for the costs of a usual fit; a huge --iter grows it only as costs come.
            history: Vec::with_capacity((params.max_iter / params.cost_every.max(1) + 2).min(4096)),
            converged: false,
            // Made at the first pass (γ NaN matches no exponent).
            handicap_factors: (
                vec![1.0; params.handicaps.as_ref().map_or(0, Vec::len)],
                f32::NAN,
            ),
        })
    }

    /// Iterations done so far.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    /// One iteration: the free templates, then every activation.
    pub fn step(&mut self) {
        let update_w = self.fixed < self.w.ncols();
        if update_w {
            self.engine.w_pass(&self.w, &self.g, false);
            self.engine
                .apply_w(&mut self.w, &mut self.g, self.params.normalize);
        }
        let then_w = if update_w && self.sweeps_w() {
            HPass::ThenW
        } else {
            HPass::Alone
        };
        self.engine.h_pass(&self.w, &mut self.g, then_w);
        self.handicap();
        self.iteration += 1;
    }

    /// Whether the activations' pass may make the next W update's terms in the same sweep:
    /// not with handicaps, which rescale the activations after the pass.
    fn sweeps_w(&self) -> bool {
        self.params.handicaps.is_none()
    }

    /// Divides the activation steps just taken by the handicaps' factors `(1 + c_k)^γ` (see
    /// [`NmfParams::with_handicaps`]); components without a handicap are left as they are.
    fn handicap(&mut self) {
        let Some(handicaps) = &self.params.handicaps else {
            return;
        };
        let gamma = self.engine.step_exponent();
        let (factors, of) = &mut self.handicap_factors;
        if *of != gamma {
            // Once, and again if the fit goes back to shorter steps.
            for (factor, &c) in factors.iter_mut().zip(handicaps) {
                *factor = (1.0 + c).powf(-gamma);
            }
            *of = gamma;
        }
        for mut row in self.g.rows_mut() {
            for (g, &factor) in row.iter_mut().zip(factors.iter()) {
                if factor != 1.0 {
                    *g *= factor;
                }
            }
        }
    }

    /// The cost of the current factors: `D(V | W H)` plus any penalties.
    pub fn cost(&mut self) -> f64 {
        let penalty = self.engine.penalty(&self.w, &self.g);
        (self.engine.cost(&self.w, &self.g) + penalty) * self.cost_scale()
    }

    /// Iterates until the tolerance or the iteration limit stops it, recording the cost every
    /// `cost_every` iterations (in the template update's pass, or in a pass of its own where
    /// the AVX-512 kernels make the updates; the iterates do not depend on `cost_every`, except
    /// where steps longer than the loss's own go back at a check that finds the cost higher,
    /// see [`NmfParams::with_step_exponent`]) and calling `progress` after each iteration.
    pub fn run(&mut self, progress: &mut dyn FnMut(Progress)) {
        let (max_iter, every, tol) = (
            self.params.max_iter,
            self.params.cost_every,
            self.params.tol,
        );
        let update_w = self.fixed < self.w.ncols();
        // Activations before an H pass that summed the cost of the factors it started from,
        // kept in case that cost ends the fit (templates all fixed).
        let mut before: Option<Array2<f32>> = None;
        // Steps longer than the loss's own, with every template fixed: the last recorded cost
        // and its activations, to go back to if a later cost is higher (allocated once, here).
        let safe = self.params.loss().gamma();
        let mut longer = !update_w && self.params.step_exponent() > safe;
        let mut checkpoint = longer.then(|| (f64::INFINITY, self.g.clone()));
        loop {
            let it = self.iteration;
            let want_cost = it.is_multiple_of(every) || it >= max_iter;
            let mut updated = false;
            let cost = if update_w && it < max_iter {
                self.engine.w_pass(&self.w, &self.g, want_cost)
            } else if want_cost && it < max_iter && self.engine.sweeps_cost_before() {
                // This iteration's H pass sums the cost of the factors it starts from.
                let kept = before.get_or_insert_with(|| self.g.clone());
                kept.assign(&self.g);
                updated = true;
                let cost = self.engine.h_pass(&self.w, &mut self.g, HPass::CostBefore);
                self.handicap();
                cost
            } else if want_cost {
                Some(self.engine.cost(&self.w, &self.g))
            } else {
                None
            };
            let cost =
                cost.map(|c| (c + self.engine.penalty(&self.w, &self.g)) * self.cost_scale());
            let mut rose = false;
            if let (true, Some(cost), Some((last, g))) = (longer, cost, checkpoint.as_mut()) {
                if cost > *last {
                    // The longer steps overshot: back to the activations of the last cost (not
                    // recorded again), and the loss's own steps from there on.
                    self.g.assign(g);
                    self.engine.set_step_exponent(safe);
                    (longer, updated, rose) = (false, false, true);
                } else {
                    // The activations this cost is of (kept before the pass that summed it).
                    *last = cost;
                    g.assign(before.as_ref().filter(|_| updated).unwrap_or(&self.g));
                }
            }
            if let Some(cost) = cost.filter(|_| !rose) {
                if let Some(prev) = self.history.last().map(|c| c.cost)
                    && tol > 0.0
                    && (prev - cost) / cost.abs().max(f64::MIN_POSITIVE) < tol
                {
                    self.converged = true;
                }
                self.history.push(CostPoint {
                    iteration: it,
                    cost,
                });
            }
            if self.converged || it >= max_iter {
                if let (true, Some(kept)) = (updated, before) {
                    // The factors whose cost ended the fit, not the update made beside it.
                    self.g = kept;
                }
                break;
            }
            if update_w {
                self.engine
                    .apply_w(&mut self.w, &mut self.g, self.params.normalize);
            }
            // The next iteration's W terms in the same sweep, unless it is the last, and its
            // cost if that iteration records one.
            let next = it + 1;
            let sweep_w = update_w && next < max_iter && self.sweeps_w();
            let then_w = match (sweep_w, next.is_multiple_of(every)) {
                (false, _) => HPass::Alone,
                (true, false) => HPass::ThenW,
                (true, true) => HPass::ThenWAndCost,
            };
            if !updated {
                self.engine.h_pass(&self.w, &mut self.g, then_w);
                self.handicap();
            }
            self.iteration += 1;
            progress(Progress {
                iteration: self.iteration,
                max_iter,
                cost: self.history.last().map(|c| c.cost),
            });
        }
    }

    /// The result: W, H in the units of V, and the cost history.
    pub fn into_nmf(self) -> Nmf {
        let scale = self.scale as f32;
        let h = self.g.t().mapv(|a| a * scale);
        Nmf {
            w: self.w,
            h: h.as_standard_layout().into_owned(),
            cost_history: self.history,
            iterations: self.iteration,
            converged: self.converged,
        }
    }

    /// Converts a cost of the scaled data to the units of V: `D(cV | cΛ) = c^β D(V | Λ)`.
    fn cost_scale(&self) -> f64 {
        self.scale.powf(f64::from(self.engine.divergence().beta()))
    }
}

/// W (bins × K) and G = Hᵀ (frames × K) in the units of the scaled data.
fn initial_factors(
    x: ArrayView2<f32>,
    params: &NmfParams,
    scale: f64,
) -> (Array2<f32>, Array2<f32>) {
    let (frames, bins) = x.dim();
    if let Some((w, h)) = &params.initial {
        let inv = (1.0 / scale) as f32;
        return (w.clone(), h.t().mapv(|a| a * inv));
    }
    let k_free = params.free_columns();
    let (w_free, g_free) = match (k_free, params.init) {
        (0, _) => (Array2::zeros((bins, 0)), Array2::zeros((frames, 0))),
        (k, Init::Random) => init::random(x, k, params.seed),
        (k, Init::Nndsvda) => init::nndsvda(x, k, params.seed),
    };
    let Some(fixed) = &params.fixed_w else {
        return (w_free, g_free);
    };
    let k = fixed.ncols() + k_free;
    let mut w = Array2::zeros((bins, k));
    w.slice_mut(s![.., ..fixed.ncols()]).assign(fixed);
    w.slice_mut(s![.., fixed.ncols()..]).assign(&w_free);
    // Activations of fixed templates start flat, as scikit-learn does when W is given.
    let mean = x.iter().map(|&a| f64::from(a)).sum::<f64>() / x.len() as f64;
    let flat = (mean / k as f64).sqrt() as f32;
    let mut g = Array2::from_elem((frames, k), flat);
    g.slice_mut(s![.., fixed.ncols()..]).assign(&g_free);
    (w, g)
}
