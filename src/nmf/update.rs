//! The multiplicative updates: the passes over the data that make the cost and the W and H
//! update terms, and the steps that apply them.
//!
//! Each pass goes block by block over time ([`super::blocks`]): for each block the model
//! `Λ = G_b Wᵀ`, its element-wise transforms (fused with the cost, see [`super::kernels`]) and
//! the products with W or G are computed while the block sits in cache; only X is streamed
//! from memory.
//!
//! Two paths compute the same updates. On a CPU with AVX-512, Itakura–Saito and
//! Kullback–Leibler run on the register-tiled kernels ([`super::tiled`]), and the H pass also
//! makes the next W update's terms in the same sweep; the Euclidean loss's products with the
//! data use the same kernels. Everywhere else, and for the other losses, the products are
//! faer's and the element-wise terms one fused pass ([`super::portable`]). Setting the
//! environment variable `DEMIX_PORTABLE` forces the second path (for comparisons). With
//! penalties, the steps are those of [`super::penalty`].

use ndarray::{Array1, Array2, Zip, s};

use std::ops::Range;

use super::avx512;
use super::blocks::{self, Slot, WTerms, add_into, block_slice, for_each_block, padded};
use super::convolutive;
use super::divergence::{Divergence, flushed, scale_by_step, step};
use super::linalg::gemm;
use super::penalty::Penalties;
use super::portable::Portable;
use super::tiled::{self, Tiled};

/// The factorisation's working state that does not change between iterations: the data, the
/// divergence, and buffers reused by every pass.
pub(crate) struct Engine {
    x: Array2<f32>,
    div: Divergence,
    gamma: f32,
    fixed: usize,
    slots: Vec<Slot>,
    /// The W update's terms, summed over the blocks.
    sums: WTerms,
    /// `Gᵀ G_free` and `W Gᵀ G_free` in single precision (Euclidean W update).
    euclidean_scratch: (Array2<f32>, Array2<f32>),
    /// Column sums of W and `Wᵀ W`, for the H pass.
    w_sums: Array1<f32>,
    w_gram: Array2<f32>,
    penalties: Penalties,
    column_scales: ColumnScales,
    /// The activations before the H pass, for the smoothness penalty's neighbours.
    g_prev: Array2<f32>,
    /// Whether the AVX-512 kernels run the Itakura–Saito and Kullback–Leibler passes.
    tiled: bool,
    /// Whether the AVX-512 product kernel makes the Euclidean loss's products with the data
    /// (where the CPU has AVX-512F and the kernels are not turned off).
    tiled_products: bool,
    /// W transposed for those kernels (components × `ldw` bins, zero-padded).
    wt: Vec<f32>,
    /// The columns that make one convolutive template each ([`super::convolutive`]), and
    /// the H update's numerators and denominators of every frame (frames × components),
    /// which their update sums over delays (empty without such templates).
    groups: Vec<Range<usize>>,
    h_terms: (Array2<f32>, Array2<f32>),
    /// A weight per bin of the cost and the H update's terms (see
    /// [`super::NmfParams::with_row_weights`]), and W with its rows so weighted, which the
    /// products take while the model takes W itself (empty without weights).
    row_weights: Option<Vec<f32>>,
    weighted_w: Array2<f32>,
    /// Whether `sums` holds the W update's terms for the current factors: left by
    /// [`Self::w_pass`], or by [`Self::h_pass`] when it also made them (then the next `w_pass`
    /// has nothing to do but the cost).
    w_ready: bool,
    /// The cost of the current factors, when the H pass that made the W terms also summed it.
    swept_cost: Option<f64>,
    /// The address of the W that `wt`, `weighted_w` and `w_sums` were made from, when every
    /// component is fixed: W does not change between passes then, so they are kept.
    prepared: Option<usize>,
}

/// What [`Engine::h_pass`] makes besides the activations' update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HPass {
    /// Nothing.
    Alone,
    /// The next W update's terms, where the tiled kernels can make them in the same sweep.
    ThenW,
    /// Those terms and the cost of the updated factors, which the next [`Engine::w_pass`]
    /// then returns without a pass of its own (where the sweep made them).
    ThenWAndCost,
    /// The cost of the factors before the update, returned by the pass where the tiled
    /// kernels sum it in the sweep (no penalties, weights or convolutive templates).
    CostBefore,
}

impl Engine {
    /// `x` is frames × bins (standard layout); `fixed` leading components of W are never
    /// updated; `groups` are the columns of convolutive templates.
    pub(crate) fn new(
        x: Array2<f32>,
        div: Divergence,
        (k, fixed): (usize, usize),
        penalties: Penalties,
        groups: Vec<Range<usize>>,
    ) -> Engine {
        assert!(x.is_standard_layout());
        let (x_frames, bins) = x.dim();
        let free = k - fixed;
        Engine {
            x,
            div,
            gamma: div.gamma(),
            fixed,
            slots: blocks::slots(bins, k, free),
            sums: WTerms::new(bins, k, free),
            euclidean_scratch: (Array2::zeros((k, free)), Array2::zeros((bins, free))),
            w_sums: Array1::zeros(k),
            w_gram: Array2::zeros((k, k)),
            penalties,
            column_scales: ColumnScales::with_capacity(k),
            g_prev: if penalties.smoothness > 0.0 {
                Array2::zeros((x_frames, k))
            } else {
                Array2::zeros((0, 0))
            },
            tiled: false,
            tiled_products: false,
            wt: vec![0.0; k * padded(bins)],
            w_ready: false,
            swept_cost: None,
            row_weights: None,
            weighted_w: Array2::zeros((0, 0)),
            prepared: None,
            h_terms: if groups.is_empty() {
                (Array2::zeros((0, 0)), Array2::zeros((0, 0)))
            } else {
                (Array2::zeros((x_frames, k)), Array2::zeros((x_frames, k)))
            },
            groups,
        }
        .with_tiled_kernels(std::env::var_os("DEMIX_PORTABLE").is_none())
    }

    /// Takes multiplicative steps of exponent `gamma` instead of the divergence's own (see
    /// [`super::NmfParams::with_step_exponent`]).
    pub(crate) fn with_step_exponent(mut self, gamma: f32) -> Engine {
        self.set_step_exponent(gamma);
        self
    }

    /// The exponent of the multiplicative steps.
    pub(crate) fn step_exponent(&self) -> f32 {
        self.gamma
    }

    /// Takes steps of exponent `gamma` from the next pass on.
    pub(crate) fn set_step_exponent(&mut self, gamma: f32) {
        self.gamma = gamma;
    }

    /// Weighs bin `f` of the cost and of the H update by `weights[f]` (one per bin, positive;
    /// only for fits whose templates are all fixed: the W update is not weighted).
    pub(crate) fn with_row_weights(mut self, weights: Vec<f32>) -> Engine {
        assert_eq!(weights.len(), self.x.ncols(), "a weight per bin");
        self.row_weights = Some(weights);
        self
    }

    /// Uses the AVX-512 kernels for Itakura–Saito and Kullback–Leibler when `on` (and the CPU
    /// has them); the portable path otherwise.
    pub(crate) fn with_tiled_kernels(mut self, on: bool) -> Engine {
        let fits = matches!(
            self.div,
            Divergence::ItakuraSaito | Divergence::KullbackLeibler
        );
        self.tiled_products = on && avx512::available();
        self.tiled = self.tiled_products && fits;
        self
    }

    /// Whether [`Self::h_pass`] with [`HPass::CostBefore`] sums the cost in its sweep (the
    /// tiled kernels, without penalties, weights or convolutive templates).
    pub(crate) fn sweeps_cost_before(&self) -> bool {
        self.tiled && !self.penalties.any() && self.groups.is_empty() && self.row_weights.is_none()
    }

    /// The divergence minimised.
    pub(crate) fn divergence(&self) -> Divergence {
        self.div
    }

    /// What the portable path needs of this engine.
    fn portable(&self) -> Portable {
        Portable {
            div: self.div,
            fixed: self.fixed,
            tiled_products: self.tiled_products,
        }
    }

    /// The penalty terms of the objective for these factors (see [`Penalties::value`]).
    pub(crate) fn penalty(&self, w: &Array2<f32>, g: &Array2<f32>) -> f64 {
        self.penalties.value(w, g)
    }

    /// The cost `D(X | G Wᵀ)` summed in `f64`.
    pub(crate) fn cost(&mut self, w: &Array2<f32>, g: &Array2<f32>) -> f64 {
        let (x, portable) = (self.x.view(), self.portable());
        let weights = self.row_weights.as_deref();
        let mut total = 0.0;
        for_each_block(
            &mut self.slots,
            x.nrows(),
            &mut total,
            |slot, _, r| {
                let gb = g.slice(s![r.clone(), ..]);
                let xb = block_slice(&x, &r);
                slot.cost = match weights {
                    Some(weights) => portable.weighted_cost(xb, &gb, w, weights, slot),
                    None => portable.cost(xb, &gb, w, slot),
                };
            },
            |total, slot, _| *total += slot.cost,
        );
        total
    }

    /// Accumulates what the W update needs for the current W and G. Returns the cost of the
    /// current factors when `want_cost`.
    pub(crate) fn w_pass(
        &mut self,
        w: &Array2<f32>,
        g: &Array2<f32>,
        want_cost: bool,
    ) -> Option<f64> {
        if self.w_ready {
            // The H pass made the terms already, and the cost if it was asked for.
            let swept = self.swept_cost.take();
            return want_cost.then(|| swept.unwrap_or_else(|| self.cost(w, g)));
        }
        if self.tiled {
            // The tiled kernels make the terms whether or not the cost is wanted (so that the
            // iterates do not depend on how often it is), and the cost is a pass of its own.
            let cost = want_cost.then(|| self.cost(w, g));
            tiled::transpose_w(w, &mut self.wt);
            self.prepared = None;
            self.sums.clear();
            let tiled = Tiled::new(self.div, self.fixed, w, &self.wt);
            tiled.w_pass(self.x.view(), g, &mut self.slots, &mut self.sums);
            self.w_ready = true;
            return cost;
        }
        let (x, div, fixed, portable) = (self.x.view(), self.div, self.fixed, self.portable());
        self.sums.clear();
        let mut acc = (&mut self.sums, 0.0f64);
        for_each_block(
            &mut self.slots,
            x.nrows(),
            &mut acc,
            |slot, _, r| {
                let gb = g.slice(s![r.clone(), ..]);
                portable.w_terms(block_slice(&x, &r), &gb, w, want_cost, slot);
            },
            |(sums, cost), slot, r| {
                let part = slot.w_num.as_slice().expect("standard layout");
                let (part_num, part_den) = part.split_at(sums.num.len());
                add_into(&mut sums.num, part_num);
                match div {
                    Divergence::ItakuraSaito | Divergence::Beta(_) => {
                        add_into(&mut sums.den, part_den)
                    }
                    Divergence::KullbackLeibler => {
                        for row in g.slice(s![r, fixed..]).rows() {
                            sums.g_sums.zip_mut_with(&row, |s, &v| *s += f64::from(v));
                        }
                    }
                    Divergence::Euclidean => {
                        add_into(
                            &mut sums.g_gram,
                            slot.gram.as_slice().expect("standard layout"),
                        );
                    }
                }
                *cost += slot.cost;
            },
        );
        let cost = acc.1;
        self.w_ready = true;
        want_cost.then_some(cost)
    }

    /// Applies the W update accumulated by [`Self::w_pass`] (or by a fused [`Self::h_pass`])
    /// to the free columns of `w`, then
    /// (if `normalize`) scales those columns to sum 1 and moves the scale into `g`.
    pub(crate) fn apply_w(&mut self, w: &mut Array2<f32>, g: &mut Array2<f32>, normalize: bool) {
        assert!(self.w_ready, "the W terms are made before they are applied");
        self.w_ready = false;
        let fixed = self.fixed;
        let sums = &mut self.sums;
        match self.div {
            Divergence::KullbackLeibler => {
                // Λ^0 Hᵀ: every row of the denominator is the row sums of H.
                for mut row in sums.den.rows_mut() {
                    row.assign(&sums.g_sums);
                }
            }
            Divergence::Euclidean => {
                // (W H) Hᵀ = W (H Hᵀ), with the small Gram matrix (a sum of positive terms,
                // so single precision loses nothing that matters here).
                let (gram, den) = &mut self.euclidean_scratch;
                Zip::from(&mut *gram)
                    .and(&sums.g_gram)
                    .for_each(|a, &b| *a = b as f32);
                gemm(1.0, &w.view(), &gram.view(), 0.0, &mut den.view_mut());
                Zip::from(&mut sums.den)
                    .and(&*den)
                    .for_each(|a, &b| *a = f64::from(b));
            }
            _ => {}
        }
        let gamma = self.gamma;
        if self.penalties.any() {
            let terms = (&sums.num, &sums.den);
            self.penalties.apply_w_steps(self.div, terms, fixed, w, g);
        } else {
            Zip::from(w.slice_mut(s![.., fixed..]))
                .and(&sums.num)
                .and(&sums.den)
                .for_each(|w, &n, &d| *w = flushed(*w * step(n, d, gamma)));
        }
        if normalize {
            normalize_columns(w, g, (fixed, &self.groups), &mut self.column_scales);
        }
    }

    /// What the H pass takes from W besides W itself: `wt` for the tiled kernels, W with its
    /// rows weighted (with weights), and the column sums of the W the products take.
    fn prepare(&mut self, w: &Array2<f32>) {
        if self.tiled {
            tiled::transpose_w(w, &mut self.wt);
        }
        // With weights, the products (and their sums) take W with its rows weighted; the
        // model, made from `wt` or `w`, W itself.
        if let Some(weights) = &self.row_weights {
            if self.weighted_w.dim() == w.dim() {
                self.weighted_w.assign(w);
            } else {
                self.weighted_w = w.clone();
            }
            for (mut row, &n) in self.weighted_w.rows_mut().into_iter().zip(weights) {
                row.mapv_inplace(|a| a * n);
            }
        }
        let w = if self.row_weights.is_some() {
            &self.weighted_w
        } else {
            w
        };
        // Denominators that do not depend on the block.
        for (sum, col) in self.w_sums.iter_mut().zip(w.columns()) {
            *sum = col.iter().map(|&a| f64::from(a)).sum::<f64>() as f32;
        }
    }

    /// Updates every column of `g` (all components' activations) for the current W. Where
    /// `then_w` asks for them and the tiled kernels run without penalties, it also makes the
    /// next W update's terms in the same sweep (see the `w_ready` field), and the cost if
    /// asked: each block of data is then read from memory once per iteration instead of twice.
    pub(crate) fn h_pass(
        &mut self,
        w: &Array2<f32>,
        g: &mut Array2<f32>,
        what: HPass,
    ) -> Option<f64> {
        self.w_ready = false;
        self.swept_cost = None;
        let then_w = matches!(what, HPass::ThenW | HPass::ThenWAndCost);
        let address = w.as_ptr() as usize;
        if self.prepared != Some(address) {
            self.prepare(w);
            self.prepared = (self.fixed == w.ncols()).then_some(address);
        }
        let (w, w_model) = match self.row_weights {
            Some(_) => (&self.weighted_w, w),
            None => (w, w),
        };
        let tied = !self.groups.is_empty();
        if then_w && self.tiled && !self.penalties.any() && self.fixed < w.ncols() && !tied {
            debug_assert!(
                self.row_weights.is_none(),
                "weights only with fixed templates"
            );
            self.sums.clear();
            let tiled = Tiled::new(self.div, self.fixed, w, &self.wt);
            let w_sums = self.w_sums.as_slice().expect("contiguous");
            let (x, gamma) = (self.x.view(), self.gamma);
            let slots = &mut self.slots;
            let with_cost = what == HPass::ThenWAndCost;
            self.swept_cost =
                tiled.h_then_w_pass(x, gamma, w_sums, g, slots, &mut self.sums, with_cost);
            self.w_ready = true;
            return None;
        }
        if self.tiled && !self.penalties.any() && !tied {
            // Each block's activations updated in its own task, as soon as its terms are made.
            let tiled = Tiled::new(self.div, 0, w, &self.wt);
            let w_sums = self.w_sums.as_slice().expect("contiguous");
            let (x, gamma) = (self.x.view(), self.gamma);
            // The sweep's model is of W itself: with weights, the cost is a pass of its own.
            let cost = what == HPass::CostBefore && self.row_weights.is_none();
            return tiled.h_pass(x, gamma, w_sums, g, &mut self.slots, cost);
        }
        let (x, div, gamma, portable) = (self.x.view(), self.div, self.gamma, self.portable());
        let tiled = self.tiled.then(|| Tiled::new(div, 0, w, &self.wt));
        if div == Divergence::Euclidean {
            gemm(
                1.0,
                &w.t(),
                &w_model.view(),
                0.0,
                &mut self.w_gram.view_mut(),
            );
        }
        let penalties = self.penalties;
        if penalties.smoothness > 0.0 {
            self.g_prev.assign(g);
        }
        let (w_sums, w_gram, g_prev) = (&self.w_sums, &self.w_gram, &self.g_prev);
        // Convolutive templates need every frame's terms before any activation moves.
        let mut state = (g, tied.then_some(&mut self.h_terms));
        for_each_block(
            &mut self.slots,
            x.nrows(),
            &mut state,
            |slot, (g, _), r| {
                let g: &Array2<f32> = g;
                let tb = r.len();
                match tiled {
                    Some(tiled) => {
                        tiled.h_terms(&x, g.as_slice().expect("standard layout"), &r, slot)
                    }
                    None => {
                        let gb = g.slice(s![r.clone(), ..]);
                        portable.h_terms(block_slice(&x, &r), &gb, (w_model, w), w_gram, slot);
                    }
                }
                if div == Divergence::KullbackLeibler {
                    for mut row in slot.h_den.slice_mut(s![..tb, ..]).rows_mut() {
                        row.assign(w_sums);
                    }
                }
                if penalties.any() {
                    let (mut num, den) = slot.h_terms_mut(div, tb);
                    // Leave the penalised step itself in `num`.
                    let current = if penalties.smoothness > 0.0 {
                        g_prev
                    } else {
                        g
                    };
                    penalties.h_steps(div, current, r.start, w_sums, (&mut num, &den));
                }
            },
            |(g, store), slot, r| {
                let (num, den) = slot.h_terms(div, r.len());
                if let Some((all_num, all_den)) = store {
                    all_num.slice_mut(s![r.clone(), ..]).assign(&num);
                    all_den.slice_mut(s![r, ..]).assign(&den);
                    return;
                }
                let mut gb = g.slice_mut(s![r.clone(), ..]);
                if penalties.any() {
                    Zip::from(&mut gb)
                        .and(&num)
                        .for_each(|g, &step| *g = flushed(*g * step));
                } else {
                    scale_by_step(gb, (num, den), gamma);
                }
            },
        );
        if let (g, Some((num, den))) = state {
            convolutive::apply_h(g, (num.view(), den.view()), &self.groups, gamma);
        }
        None
    }
}

/// Working memory of [`normalize_columns`], kept between iterations so that they allocate
/// nothing.
#[derive(Default)]
pub(crate) struct ColumnScales {
    sums: Vec<f64>,
    factor: Vec<f32>,
    inv: Vec<f32>,
}

impl ColumnScales {
    fn with_capacity(k: usize) -> ColumnScales {
        ColumnScales {
            sums: Vec::with_capacity(k),
            factor: Vec::with_capacity(k),
            inv: Vec::with_capacity(k),
        }
    }
}

/// Scales each column of `w` from `fixed` on to sum 1, moving the scale into `g`, so that
/// `g wᵀ` is unchanged; the columns of each of `groups` (a convolutive template) together.
pub(crate) fn normalize_columns(
    w: &mut Array2<f32>,
    g: &mut Array2<f32>,
    (fixed, groups): (usize, &[Range<usize>]),
    scales: &mut ColumnScales,
) {
    let k = w.ncols();
    let ColumnScales { sums, factor, inv } = scales;
    sums.clear();
    sums.resize(k, 0.0);
    for row in w.as_slice().expect("standard layout").chunks_exact(k) {
        for (s, &a) in sums.iter_mut().zip(row) {
            *s += f64::from(a);
        }
    }
    convolutive::pool_sums(sums, groups);
    // Columns that are all zero (or fixed) keep their scale.
    let scaled = |j: usize| j >= fixed && sums[j] > 0.0;
    factor.clear();
    factor.extend((0..k).map(|j| if scaled(j) { sums[j] as f32 } else { 1.0 }));
    inv.clear();
    inv.extend((0..k).map(|j| {
        if scaled(j) {
            (1.0 / sums[j]) as f32
        } else {
            1.0
        }
    }));
    let w = w.as_slice_mut().expect("standard layout");
    for row in w.chunks_exact_mut(k) {
        row.iter_mut().zip(&*inv).for_each(|(a, &i)| *a *= i);
    }
    let g = g.as_slice_mut().expect("standard layout");
    for row in g.chunks_exact_mut(k) {
        row.iter_mut().zip(&*factor).for_each(|(a, &f)| *a *= f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic value in [0.01, 1.01) for index `i` of the stream `seed`.
    fn value(i: usize, seed: usize) -> f32 {
        let h = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 10_007;
        0.01 + h as f32 / 10_007.0
    }

    /// Runs `iterations` of W then H updates and returns the factors; `fused` lets the H pass
    /// make the next W terms.
    fn run(
        engine: &mut Engine,
        (mut w, mut g): (Array2<f32>, Array2<f32>),
        iterations: usize,
        fused: bool,
    ) -> (Array2<f32>, Array2<f32>) {
        for _ in 0..iterations {
            engine.w_pass(&w, &g, false);
            engine.apply_w(&mut w, &mut g, true);
            let then_w = if fused { HPass::ThenW } else { HPass::Alone };
            engine.h_pass(&w, &mut g, then_w);
        }
        (w, g)
    }

    #[test]
    fn the_tiled_kernels_give_the_portable_updates_on_awkward_sizes() {
        if !avx512::available() {
            eprintln!("no AVX-512 here: nothing to compare");
            return;
        }
        // Bins not a whole number of vectors, frames not of blocks or tiles, more components
        // than one strip of the products, and fixed ones.
        for (frames, bins, k, fixed) in [(300, 37, 5, 2), (70, 100, 33, 3), (9, 17, 1, 0)] {
            let x = Array2::from_shape_fn((frames, bins), |(t, f)| value(t * bins + f, 1));
            let w = Array2::from_shape_fn((bins, k), |(f, c)| value(f * k + c, 2));
            let g = Array2::from_shape_fn((frames, k), |(t, c)| value(t * k + c, 3));
            for beta in [0.0, 1.0, 2.0] {
                let engine = |tiled| {
                    let div = Divergence::new(beta);
                    Engine::new(x.clone(), div, (k, fixed), Penalties::default(), vec![])
                        .with_tiled_kernels(tiled)
                };
                let (mut tiled, mut portable) = (engine(true), engine(false));
                assert!(tiled.tiled_products && !portable.tiled_products);
                let (wt, gt) = run(&mut tiled, (w.clone(), g.clone()), 5, true);
                let (wp, gp) = run(&mut portable, (w.clone(), g.clone()), 5, true);
                // One sweep for H and the next W terms is the same arithmetic as two passes.
                let unfused = run(&mut engine(true), (w.clone(), g.clone()), 5, false);
                assert_eq!((&wt, &gt), (&unfused.0, &unfused.1), "β {beta}, fused");
                for (a, b) in wt.iter().zip(&wp).chain(gt.iter().zip(&gp)) {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
                        "β {beta}, {frames} x {bins}, k {k}: {a} vs {b}"
                    );
                }
                // Something moved: the comparison is not of the initial factors.
                assert!(gt.iter().zip(&g).any(|(a, b)| (a - b).abs() > 1e-3));
            }
        }
    }

    #[test]
    fn the_cost_summed_in_the_sweep_is_the_cost_of_the_updated_factors() {
        if !avx512::available() {
            eprintln!("no AVX-512 here: nothing to compare");
            return;
        }
        // Frames over several blocks and sub-blocks, bins not whole vectors.
        let (frames, bins, k) = (700, 37, 6);
        let x = Array2::from_shape_fn((frames, bins), |(t, f)| value(t * bins + f, 1));
        for beta in [0.0, 1.0] {
            let div = Divergence::new(beta);
            let engine = || {
                Engine::new(x.clone(), div, (k, 0), Penalties::default(), vec![])
                    .with_tiled_kernels(true)
            };
            let (mut engine, mut reference) = (engine(), engine().with_tiled_kernels(false));
            let mut w = Array2::from_shape_fn((bins, k), |(f, c)| value(f * k + c, 2));
            let mut g = Array2::from_shape_fn((frames, k), |(t, c)| value(t * k + c, 3));
            for then_w in [
                HPass::ThenW,
                HPass::ThenWAndCost,
                HPass::ThenWAndCost,
                HPass::ThenW,
            ] {
                engine.w_pass(&w, &g, false);
                engine.apply_w(&mut w, &mut g, true);
                engine.h_pass(&w, &mut g, then_w);
                let swept = engine.swept_cost;
                assert_eq!(swept.is_some(), then_w == HPass::ThenWAndCost, "β {beta}");
                // What the next W pass returns, from the sweep or from a pass of its own.
                let cost = engine.w_pass(&w, &g, true).expect("asked for");
                let expected = reference.cost(&w, &g);
                assert!(
                    (cost - expected).abs() <= 1e-6 * expected,
                    "β {beta}, {then_w:?}: {cost} against {expected}"
                );
                engine.apply_w(&mut w, &mut g, true);
                engine.h_pass(&w, &mut g, HPass::ThenW);
            }
        }
    }

    #[test]
    fn weighted_band_sums_fit_as_every_bin_at_its_band_mean() {
        // Bands of 1, 2, 3 and 4 bins over 10 bins; every template fixed.
        let edges = [0, 1, 3, 6, 10];
        let band = |f: usize| {
            edges
                .windows(2)
                .position(|e| (e[0]..e[1]).contains(&f))
                .unwrap()
        };
        let width = |b: usize| (edges[b + 1] - edges[b]) as f32;
        let (frames, bins, k) = (37, 4, 3);
        let xb = Array2::from_shape_fn((frames, bins), |(t, b)| width(b) * value(t * bins + b, 1));
        let wb = Array2::from_shape_fn((bins, k), |(b, c)| width(b) * value(b * k + c, 2));
        // Each bin at its band's mean.
        let xs = Array2::from_shape_fn((frames, 10), |(t, f)| xb[[t, band(f)]] / width(band(f)));
        let ws = Array2::from_shape_fn((10, k), |(f, c)| wb[[band(f), c]] / width(band(f)));
        let g0 = Array2::from_shape_fn((frames, k), |(t, c)| value(t * k + c, 3));
        for beta in [0.0, 1.0, 2.0] {
            let div = Divergence::new(beta);
            let weights: Vec<f32> = (0..bins).map(|b| width(b).powf(1.0 - beta)).collect();
            let every_bin = Engine::new(xs.clone(), div, (k, k), Penalties::default(), vec![]);
            let mut every_bin = every_bin.with_tiled_kernels(false);
            let expected_cost = every_bin.cost(&ws, &g0);
            let mut expected = g0.clone();
            for _ in 0..20 {
                every_bin.h_pass(&ws, &mut expected, HPass::Alone);
            }
            for tiled in [false, true] {
                let engine = Engine::new(xb.clone(), div, (k, k), Penalties::default(), vec![]);
                let mut engine = engine
                    .with_row_weights(weights.clone())
                    .with_tiled_kernels(tiled);
                let cost = engine.cost(&wb, &g0);
                assert!(
                    (cost - expected_cost).abs() < 1e-6 * expected_cost,
                    "β {beta}: cost"
                );
                let mut g = g0.clone();
                for _ in 0..20 {
                    engine.h_pass(&wb, &mut g, HPass::Alone);
                }
                for (a, b) in g.iter().zip(&expected) {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs(),
                        "β {beta}, tiled {tiled}: {a} vs {b}"
                    );
                }
            }
            // Something moved: the comparison is not of the initial activations.
            assert!(expected.iter().zip(&g0).any(|(a, b)| (a - b).abs() > 1e-3));
        }
    }
}
