//! The multiplicative updates, computed block by block over time.
//!
//! The data is held as `X = Vᵀ` (frames × bins) and the activations as `G = Hᵀ` (frames ×
//! components), so a block of frames is a contiguous slab of both. For each block the model
//! `Λ = G_b Wᵀ`, its element-wise transforms (fused with the cost, see [`kernels`]) and the
//! products with W or G are computed while the block sits in cache; only X is streamed from
//! memory. Blocks run in parallel in groups, each into its own slot, and their partial results
//! are combined in block order, so results do not depend on the number of threads. All
//! buffers are allocated once, before the first iteration.
//!
//! Two paths compute the same updates. On a CPU with AVX-512, Itakura–Saito and
//! Kullback–Leibler run on the register-tiled kernels of [`super::avx512`] (model and terms
//! in one kernel, sub-blocks of [`SUB_BLOCK`] frames kept in L2), and the H pass also makes
//! the next W update's terms in the same sweep; the Euclidean loss's products with the data
//! use the same kernels. Everywhere else, and for the other losses, the products are faer's
//! and the element-wise terms one fused pass (see [`kernels`]). Setting
//! the environment variable `DEMIX_PORTABLE` forces the second path (for comparisons).

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Zip, s};
use rayon::prelude::*;

use super::avx512::{self as tiled, Terms};
use super::kernels;
use super::linalg::gemm;
use super::penalty::{self, Penalties};

/// Frames per block.
pub(crate) const BLOCK: usize = 256;

/// Frames per step of the tiled kernels inside a block, so that the block's update terms
/// (about 0.5 MB for 1025 bins) stay in the L2 cache between the model and the product.
const SUB_BLOCK: usize = 64;

/// Blocks in flight per thread, between two rounds of combining their sums (fewer rounds,
/// fewer wake-ups of the threads); each holds about 2.5 MB for 1025 bins, of which the tiled
/// path touches a third. Six against two, W30 on two threads, A/B in one run: IS 3% and KL 7%
/// faster on the tiled path, IS 11% on the portable one.
const SLOTS_PER_THREAD: usize = 6;

/// The model `W·H` is floored here (in units of the mean of V) before negative powers.
pub(crate) const MODEL_FLOOR: f32 = 1e-12;

/// Smallest denominator of an update ratio; a zero numerator over it stays zero.
const TINY: f64 = 1e-30;

/// The β-divergence, with its three named cases computed by their cheaper formulas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Divergence {
    ItakuraSaito,
    KullbackLeibler,
    Euclidean,
    Beta(f32),
}

impl Divergence {
    pub(crate) fn new(beta: f32) -> Divergence {
        match beta {
            0.0 => Divergence::ItakuraSaito,
            1.0 => Divergence::KullbackLeibler,
            2.0 => Divergence::Euclidean,
            b => Divergence::Beta(b),
        }
    }
}

/// Working memory of one block in flight.
struct Slot {
    /// The model block `Λ_b` (frames × bins), transformed in place. For Itakura–Saito and
    /// other β, each frame's row is preceded by the row of the numerator term (frames × 2
    /// bins), so that one product gives both the numerator and the denominator of an update.
    model: Vec<f32>,
    /// Partial W numerator of the block (bins × free components); for the losses that need
    /// both, numerator over denominator (2 bins × free components).
    w_num: Array2<f32>,
    /// H numerator of the block (frames × components); for the losses that need both,
    /// numerator and denominator rows in turn (2 frames × components).
    h_num: Array2<f32>,
    /// H denominator of the block, for the losses whose numerator stands alone.
    h_den: Array2<f32>,
    /// Partial Gram matrix `G_bᵀ G_b` (Euclidean W update).
    gram: Array2<f32>,
    /// Cost of the block.
    cost: f64,
}

/// The factorisation's working state that does not change between iterations: the data, the
/// divergence, and buffers reused by every pass.
pub(crate) struct Engine {
    x: Array2<f32>,
    div: Divergence,
    gamma: f32,
    fixed: usize,
    slots: Vec<Slot>,
    /// Accumulated W numerator and denominator (bins × free components).
    w_num: Array2<f64>,
    w_den: Array2<f64>,
    /// Column sums of G (KL) and `Gᵀ G_free` (Euclidean), accumulated with the W terms.
    g_sums: Array1<f64>,
    g_gram: Array2<f64>,
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
    /// Whether `w_num` and `w_den` (and `g_sums`) hold the W update's terms for the current
    /// factors: left by [`Self::w_pass`], or by [`Self::h_pass`] when it also made them (then
    /// the next `w_pass` has nothing to do but the cost).
    w_ready: bool,
}

impl Engine {
    /// `x` is frames × bins (standard layout); `fixed` leading components of W are never
    /// updated.
    pub(crate) fn new(
        x: Array2<f32>,
        beta: f32,
        gamma: f32,
        (k, fixed): (usize, usize),
        penalties: Penalties,
    ) -> Engine {
        assert!(x.is_standard_layout());
        let (x_frames, bins) = x.dim();
        let free = k - fixed;
        let n_slots = SLOTS_PER_THREAD * rayon::current_num_threads().max(1);
        let slots = (0..n_slots)
            .map(|_| Slot {
                // With room for the tiled kernels' padded and aligned rows.
                model: vec![0.0; (2 * BLOCK * bins).max(2 * SUB_BLOCK * padded(bins) + 16)],
                w_num: Array2::zeros((2 * bins, free)),
                h_num: Array2::zeros((2 * BLOCK, k)),
                h_den: Array2::zeros((BLOCK, k)),
                gram: Array2::zeros((k, free)),
                cost: 0.0,
            })
            .collect();
        Engine {
            x,
            div: Divergence::new(beta),
            gamma,
            fixed,
            slots,
            w_num: Array2::zeros((bins, free)),
            w_den: Array2::zeros((bins, free)),
            g_sums: Array1::zeros(free),
            g_gram: Array2::zeros((k, free)),
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
        }
        .with_tiled_kernels(std::env::var_os("DEMIX_PORTABLE").is_none())
    }

    /// Uses the AVX-512 kernels for Itakura–Saito and Kullback–Leibler when `on` (and the CPU
    /// has them); the portable path otherwise.
    pub(crate) fn with_tiled_kernels(mut self, on: bool) -> Engine {
        let fits = matches!(
            self.div,
            Divergence::ItakuraSaito | Divergence::KullbackLeibler
        );
        self.tiled_products = on && tiled::available();
        self.tiled = self.tiled_products && fits;
        self
    }

    /// Copies `w` (bins × components) into `self.wt` transposed, for the tiled kernels.
    fn transpose_w(&mut self, w: &Array2<f32>) {
        let ldw = padded(w.nrows());
        for (f, row) in w.rows().into_iter().enumerate() {
            for (k, &a) in row.iter().enumerate() {
                self.wt[k * ldw + f] = a;
            }
        }
    }

    /// The penalty terms of the objective for these factors (see [`penalty`]).
    pub(crate) fn penalty(&self, w: &Array2<f32>, g: &Array2<f32>) -> f64 {
        if !self.penalties.any() {
            return 0.0;
        }
        let Penalties {
            sparsity,
            smoothness,
        } = self.penalties;
        let mut total = 0.0;
        for (k, w_col) in w.columns().into_iter().enumerate() {
            let s: f64 = w_col.iter().map(|&a| f64::from(a)).sum();
            let (l1, change) = activation_norms(g.column(k));
            total += sparsity * s * l1 + smoothness * s * s * change;
        }
        total
    }

    /// The cost `D(X | G Wᵀ)` summed in `f64`.
    pub(crate) fn cost(&mut self, w: &Array2<f32>, g: &Array2<f32>) -> f64 {
        let (x, div) = (self.x.view(), self.div);
        let mut total = 0.0;
        for_each_block(
            &mut self.slots,
            x.nrows(),
            &mut total,
            |slot, _, r| {
                let xb = block_slice(&x, &r);
                let gb = g.slice(s![r, ..]);
                slot.cost = match div {
                    Divergence::ItakuraSaito | Divergence::Beta(_) => {
                        let pair = pair_block(&gb, w, &mut slot.model);
                        pair_terms::<true>(div, xb, pair, w.nrows())
                    }
                    Divergence::KullbackLeibler => {
                        let model = model_block(&gb, w, &mut slot.model);
                        kernels::kullback_leibler::<true>(xb, model)
                    }
                    Divergence::Euclidean => {
                        kernels::euclidean_cost(xb, model_block(&gb, w, &mut slot.model))
                    }
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
            // The H pass made the terms already.
            return want_cost.then(|| self.cost(w, g));
        }
        if self.tiled {
            // The tiled kernels make the terms whether or not the cost is wanted (so that the
            // iterates do not depend on how often it is), and the cost is a pass of its own.
            let cost = want_cost.then(|| self.cost(w, g));
            self.transpose_w(w);
            self.tiled_w_pass(w, g);
            return cost;
        }
        let (x, div, fixed) = (self.x.view(), self.div, self.fixed);
        let tiled_products = self.tiled_products;
        self.w_num.fill(0.0);
        self.w_den.fill(0.0);
        self.g_sums.fill(0.0);
        self.g_gram.fill(0.0);
        let mut acc = (
            &mut self.w_num,
            &mut self.w_den,
            &mut self.g_sums,
            &mut self.g_gram,
            0.0f64,
        );
        for_each_block(
            &mut self.slots,
            x.nrows(),
            &mut acc,
            |slot, _, r| {
                let tb = r.len();
                let xb = block_slice(&x, &r);
                let gb = g.slice(s![r.clone(), ..]);
                let g_free = gb.slice(s![.., fixed..]);
                let bins = w.nrows();
                slot.cost = 0.0;
                let mut num = slot.w_num.slice_mut(s![..bins, ..]);
                match div {
                    Divergence::KullbackLeibler => {
                        let model = model_block(&gb, w, &mut slot.model);
                        slot.cost = if want_cost {
                            kernels::kullback_leibler::<true>(xb, model)
                        } else {
                            kernels::kullback_leibler::<false>(xb, model)
                        };
                        gemm(1.0, &frames(model, tb).t(), &g_free, 0.0, &mut num);
                    }
                    Divergence::ItakuraSaito | Divergence::Beta(_) => {
                        // Numerators over denominators (2 bins × free) in one product.
                        let pair = pair_block(&gb, w, &mut slot.model);
                        slot.cost = if want_cost {
                            pair_terms::<true>(div, xb, pair, bins)
                        } else {
                            pair_terms::<false>(div, xb, pair, bins)
                        };
                        gemm(
                            1.0,
                            &frames(pair, tb).t(),
                            &g_free,
                            0.0,
                            &mut slot.w_num.view_mut(),
                        );
                    }
                    Divergence::Euclidean => {
                        if want_cost {
                            let model = model_block(&gb, w, &mut slot.model);
                            slot.cost = kernels::euclidean_cost(xb, model);
                        }
                        if tiled_products {
                            let k = g.ncols();
                            let g = &g.as_slice().expect("standard layout")[r.start * k..];
                            let num = slot.w_num.as_slice_mut().expect("standard layout");
                            let g_free = (&g[fixed..], k, k - fixed);
                            tiled::product(
                                (xb, 1, bins),
                                (bins, tb),
                                g_free,
                                num,
                                k - fixed,
                                false,
                            );
                        } else {
                            gemm(1.0, &frames(xb, tb).t(), &g_free, 0.0, &mut num);
                        }
                        gemm(1.0, &gb.t(), &g_free, 0.0, &mut slot.gram.view_mut());
                    }
                }
            },
            |(num, den, g_sums, g_gram, cost), slot, r| {
                let part = slot.w_num.as_slice().expect("standard layout");
                let (part_num, part_den) = part.split_at(num.len());
                add_into(num, part_num);
                match div {
                    Divergence::ItakuraSaito | Divergence::Beta(_) => add_into(den, part_den),
                    Divergence::KullbackLeibler => {
                        for row in g.slice(s![r, fixed..]).rows() {
                            g_sums.zip_mut_with(&row, |s, &v| *s += f64::from(v));
                        }
                    }
                    Divergence::Euclidean => {
                        add_into(g_gram, slot.gram.as_slice().expect("standard layout"));
                    }
                }
                *cost += slot.cost;
            },
        );
        let cost = acc.4;
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
        match self.div {
            Divergence::KullbackLeibler => {
                // Λ^0 Hᵀ: every row of the denominator is the row sums of H.
                for mut row in self.w_den.rows_mut() {
                    row.assign(&self.g_sums);
                }
            }
            Divergence::Euclidean => {
                // (W H) Hᵀ = W (H Hᵀ), with the small Gram matrix (a sum of positive terms,
                // so single precision loses nothing that matters here).
                let (gram, den) = &mut self.euclidean_scratch;
                Zip::from(&mut *gram)
                    .and(&self.g_gram)
                    .for_each(|a, &b| *a = b as f32);
                gemm(1.0, &w.view(), &gram.view(), 0.0, &mut den.view_mut());
                Zip::from(&mut self.w_den)
                    .and(&*den)
                    .for_each(|a, &b| *a = f64::from(b));
            }
            _ => {}
        }
        let gamma = self.gamma;
        if self.penalties.any() {
            self.apply_w_penalized(w, g);
        } else {
            Zip::from(w.slice_mut(s![.., fixed..]))
                .and(&self.w_num)
                .and(&self.w_den)
                .for_each(|w, &n, &d| *w *= step(n, d, gamma));
        }
        if normalize {
            normalize_columns(w, g, fixed, &mut self.column_scales);
        }
    }

    /// The template step with penalties: per element, the root of its auxiliary function's
    /// derivative (see [`penalty::step`]).
    fn apply_w_penalized(&self, w: &mut Array2<f32>, g: &Array2<f32>) {
        let Penalties {
            sparsity,
            smoothness,
        } = self.penalties;
        for (j, mut w_col) in w
            .slice_mut(s![.., self.fixed..])
            .columns_mut()
            .into_iter()
            .enumerate()
        {
            let (l1, change) = activation_norms(g.column(self.fixed + j));
            let s_old: f64 = w_col.iter().map(|&a| f64::from(a)).sum();
            let (c, a) = (sparsity * l1, 2.0 * smoothness * change * s_old);
            for (f, w) in w_col.iter_mut().enumerate() {
                let r = penalty::step(self.div, self.w_den[[f, j]], self.w_num[[f, j]], c, a);
                *w = (f64::from(*w) * r) as f32;
            }
        }
    }

    /// [`Self::w_pass`] by the tiled kernels (the terms only).
    fn tiled_w_pass(&mut self, w: &Array2<f32>, g: &Array2<f32>) {
        let (x, div, fixed) = (self.x.view(), self.div, self.fixed);
        let tiled = Tiled::new(div, fixed, w, &self.wt);
        self.w_num.fill(0.0);
        self.w_den.fill(0.0);
        self.g_sums.fill(0.0);
        let g = g.as_slice().expect("standard layout");
        let k = tiled.k;
        let mut sums = (&mut self.w_num, &mut self.w_den, &mut self.g_sums);
        for_each_block(
            &mut self.slots,
            x.nrows(),
            &mut sums,
            |slot, _, r| {
                let gb = &g[r.start * k..r.end * k];
                let out = aligned(&mut slot.model);
                for (i, sub) in sub_blocks(&r).enumerate() {
                    let local = (sub.start - r.start) * k..(sub.end - r.start) * k;
                    let gs = &gb[local];
                    tiled.model_terms(gs, block_slice(&x, &sub), out);
                    tiled.w_products(out, gs, &mut slot.w_num, i > 0);
                }
            },
            |sums, slot, r| add_w_terms(sums, &tiled, slot, &g[r.start * k..r.end * k]),
        );
        self.w_ready = true;
    }

    /// [`Self::h_pass`] and then [`Self::w_pass`] for the updated activations, block by block
    /// and sub-block by sub-block by the tiled kernels: the same arithmetic as the two passes
    /// (so the same results), one sweep over the data.
    /// `self.wt` and `self.w_sums` are those of `w` (made by `h_pass`).
    fn h_then_w_pass(&mut self, w: &Array2<f32>, g: &mut Array2<f32>) {
        let (x, div, gamma, fixed) = (self.x.view(), self.div, self.gamma, self.fixed);
        let tiled = Tiled::new(div, fixed, w, &self.wt);
        let w_sums = self.w_sums.as_slice().expect("contiguous");
        self.w_num.fill(0.0);
        self.w_den.fill(0.0);
        self.g_sums.fill(0.0);
        let (frames, k) = g.dim();
        let block = |i: usize| i * BLOCK..((i + 1) * BLOCK).min(frames);
        let n_blocks = frames.div_ceil(BLOCK);
        let g_all = g.as_slice_mut().expect("standard layout");
        let mut start = 0;
        while start < n_blocks {
            let n = self.slots.len().min(n_blocks - start);
            let rows = block(start).start * k..block(start + n - 1).end * k;
            self.slots[..n]
                .par_iter_mut()
                .zip(g_all[rows].par_chunks_mut(BLOCK * k))
                .enumerate()
                .for_each(|(i, (slot, gb))| {
                    let r = block(start + i);
                    let out = aligned(&mut slot.model);
                    let h_terms = slot.h_num.as_slice_mut().expect("standard layout");
                    for (j, sub) in sub_blocks(&r).enumerate() {
                        let xs = block_slice(&x, &sub);
                        let gs = &mut gb[(sub.start - r.start) * k..(sub.end - r.start) * k];
                        tiled.model_terms(gs, xs, out);
                        tiled.h_products(out, sub.len(), h_terms);
                        tiled.apply_h_steps(h_terms, w_sums, gamma, gs);
                        tiled.model_terms(gs, xs, out);
                        tiled.w_products(out, gs, &mut slot.w_num, j > 0);
                    }
                });
            let (slots, len) = (&self.slots[..n], self.w_num.len());
            add_parts(&mut self.w_num, slots, |slot| {
                &slot.w_num.as_slice().expect("standard layout")[..len]
            });
            if tiled.terms == Terms::ItakuraSaito {
                add_parts(&mut self.w_den, slots, |slot| {
                    &slot.w_num.as_slice().expect("standard layout")[len..]
                });
            } else {
                let rows = block(start).start * k..block(start + n - 1).end * k;
                add_column_sums(&mut self.g_sums, &tiled, &g_all[rows]);
            }
            start += n;
        }
        self.w_ready = true;
    }

    /// Updates every column of `g` (all components' activations) for the current W. With
    /// `then_w`, and where the tiled kernels run without penalties, it also makes the next W
    /// update's terms in the same sweep (see the `w_ready` field): each block of data is then
    /// read from memory once per iteration instead of twice.
    pub(crate) fn h_pass(&mut self, w: &Array2<f32>, g: &mut Array2<f32>, then_w: bool) {
        self.w_ready = false;
        if self.tiled {
            self.transpose_w(w);
        }
        // Denominators that do not depend on the block.
        for (sum, col) in self.w_sums.iter_mut().zip(w.columns()) {
            *sum = col.iter().map(|&a| f64::from(a)).sum::<f64>() as f32;
        }
        if then_w && self.tiled && !self.penalties.any() && self.fixed < w.ncols() {
            self.h_then_w_pass(w, g);
            return;
        }
        let (x, div, gamma) = (self.x.view(), self.div, self.gamma);
        let tiled_products = self.tiled_products;
        let tiled = self.tiled.then(|| Tiled::new(div, 0, w, &self.wt));
        if div == Divergence::Euclidean {
            gemm(1.0, &w.t(), &w.view(), 0.0, &mut self.w_gram.view_mut());
        }
        let penalties = self.penalties;
        if penalties.smoothness > 0.0 {
            self.g_prev.assign(g);
        }
        let (w_sums, w_gram, g_prev) = (&self.w_sums, &self.w_gram, &self.g_prev);
        for_each_block(
            &mut self.slots,
            x.nrows(),
            g,
            |slot, g: &Array2<f32>, r| {
                let (tb, bins) = (r.len(), w.nrows());
                let xb = block_slice(&x, &r);
                let gb = g.slice(s![r.clone(), ..]);
                match (tiled, div) {
                    (Some(tiled), _) => {
                        let (g, k) = (g.as_slice().expect("standard layout"), tiled.k);
                        let out = aligned(&mut slot.model);
                        let h_terms = slot.h_num.as_slice_mut().expect("standard layout");
                        for sub in sub_blocks(&r) {
                            let gs = &g[sub.start * k..sub.end * k];
                            tiled.model_terms(gs, block_slice(&x, &sub), out);
                            let first = (sub.start - r.start) * tiled.per_frame() * k;
                            tiled.h_products(out, sub.len(), &mut h_terms[first..]);
                        }
                    }
                    (None, Divergence::KullbackLeibler) => {
                        let model = model_block(&gb, w, &mut slot.model);
                        kernels::kullback_leibler::<false>(xb, model);
                        let mut num = slot.h_num.slice_mut(s![..tb, ..]);
                        gemm(1.0, &frames(model, tb), &w.view(), 0.0, &mut num);
                    }
                    (None, Divergence::ItakuraSaito | Divergence::Beta(_)) => {
                        // The rows of numerator and denominator terms in turn (2 frames ×
                        // bins), in one product.
                        let pair = pair_block(&gb, w, &mut slot.model);
                        pair_terms::<false>(div, xb, pair, bins);
                        let mut num = slot.h_num.slice_mut(s![..2 * tb, ..]);
                        gemm(1.0, &frames(pair, 2 * tb), &w.view(), 0.0, &mut num);
                    }
                    (None, Divergence::Euclidean) => {
                        if tiled_products {
                            let (w, k) = (w.as_slice().expect("standard layout"), w.ncols());
                            let num = slot.h_num.as_slice_mut().expect("standard layout");
                            tiled::product((xb, bins, 1), (tb, bins), (w, k, k), num, k, false);
                        } else {
                            let mut num = slot.h_num.slice_mut(s![..tb, ..]);
                            gemm(1.0, &frames(xb, tb), &w.view(), 0.0, &mut num);
                        }
                        let mut den = slot.h_den.slice_mut(s![..tb, ..]);
                        gemm(1.0, &gb, &w_gram.view(), 0.0, &mut den);
                    }
                }
                if div == Divergence::KullbackLeibler {
                    for mut row in slot.h_den.slice_mut(s![..tb, ..]).rows_mut() {
                        row.assign(w_sums);
                    }
                }
                if penalties.any() {
                    let (mut num, den) = h_terms_mut(slot, div, tb);
                    // Leave the penalised step itself in `num`.
                    let current = if penalties.smoothness > 0.0 {
                        g_prev
                    } else {
                        g
                    };
                    penalized_h_steps(div, penalties, current, r.start, w_sums, &mut num, &den);
                }
            },
            |g, slot, r| {
                let mut gb = g.slice_mut(s![r.clone(), ..]);
                let (num, den) = h_terms(slot, div, r.len());
                if penalties.any() {
                    Zip::from(&mut gb).and(&num).for_each(|g, &step| *g *= step);
                } else {
                    Zip::from(&mut gb)
                        .and(&num)
                        .and(&den)
                        .for_each(|g, &n, &d| *g *= step32(n, d, gamma));
                }
            },
        );
    }
}

/// The tiled kernels' view of one pass: the loss's terms, the sizes, W and Wᵀ (see
/// [`Engine::transpose_w`]).
#[derive(Clone, Copy)]
struct Tiled<'a> {
    terms: Terms,
    bins: usize,
    ldw: usize,
    k: usize,
    fixed: usize,
    w: &'a [f32],
    wt: &'a [f32],
}

impl<'a> Tiled<'a> {
    fn new(div: Divergence, fixed: usize, w: &'a Array2<f32>, wt: &'a [f32]) -> Tiled<'a> {
        let terms = match div {
            Divergence::ItakuraSaito => Terms::ItakuraSaito,
            Divergence::KullbackLeibler => Terms::KullbackLeibler,
            other => unreachable!("no tiled kernels for {other:?}"),
        };
        let (bins, k) = w.dim();
        Tiled {
            terms,
            bins,
            ldw: padded(bins),
            k,
            fixed,
            w: w.as_slice().expect("standard layout"),
            wt,
        }
    }

    /// Values per frame of the update terms (padded rows, see [`tiled::row_len`]).
    fn row(&self) -> usize {
        tiled::row_len(self.terms, self.ldw)
    }

    /// Rows of H terms per frame: numerator and denominator for Itakura–Saito.
    fn per_frame(&self) -> usize {
        self.row() / self.ldw
    }

    /// The update terms of the frames whose activations are `gs` and data `xs`, into `out`.
    fn model_terms(&self, gs: &[f32], xs: &[f32], out: &mut [f32]) {
        let (k, ldw, bins) = (self.k, self.ldw, self.bins);
        tiled::model_terms(self.terms, (gs, k, k), (self.wt, ldw), (xs, bins), out);
    }

    /// The H update's terms of `frames` frames (terms · W) into `h_terms`, laid out as
    /// [`h_terms`] reads them.
    fn h_products(&self, out: &[f32], frames: usize, h_terms: &mut [f32]) {
        let (k, ldw, bins) = (self.k, self.ldw, self.bins);
        let rows = self.per_frame() * frames;
        tiled::product(
            (out, ldw, 1),
            (rows, bins),
            (self.w, k, k),
            h_terms,
            k,
            false,
        );
    }

    /// Applies the H steps of [`Self::h_products`] to the activations `gs`; `w_sums` are the
    /// Kullback–Leibler denominators.
    fn apply_h_steps(&self, h_terms: &[f32], w_sums: &[f32], gamma: f32, gs: &mut [f32]) {
        let (k, per_frame) = (self.k, self.per_frame());
        for (t, g_row) in gs.chunks_exact_mut(k).enumerate() {
            let steps = &h_terms[per_frame * t * k..per_frame * (t + 1) * k];
            let (num, den) = if per_frame == 2 {
                steps.split_at(k)
            } else {
                (steps, w_sums)
            };
            for ((a, &n), &d) in g_row.iter_mut().zip(num).zip(den) {
                *a *= step32(n, d, gamma);
            }
        }
    }

    /// The W update's terms of the frames `gs` (termsᵀ · free activations), into (or, if
    /// `accumulate`, added to) `w_terms`: numerators, then for Itakura–Saito denominators.
    fn w_products(&self, out: &[f32], gs: &[f32], w_terms: &mut Array2<f32>, accumulate: bool) {
        let (k, ldw, bins, fixed) = (self.k, self.ldw, self.bins, self.fixed);
        let (free, frames, row) = (k - fixed, gs.len() / k, self.row());
        let w_terms = w_terms.as_slice_mut().expect("standard layout");
        let (num, den) = w_terms.split_at_mut(bins * free);
        let g_free = (&gs[fixed..], k, free);
        tiled::product((out, 1, row), (bins, frames), g_free, num, free, accumulate);
        if self.terms == Terms::ItakuraSaito {
            let inv = &out[ldw..];
            tiled::product((inv, 1, row), (bins, frames), g_free, den, free, accumulate);
        }
    }
}

/// Adds a block's W terms (from [`Tiled::w_products`]) into the sums `(numerators,
/// denominators, column sums of the free activations)`; `g_rows` are the block's activations.
fn add_w_terms(
    (num, den, g_sums): &mut (&mut Array2<f64>, &mut Array2<f64>, &mut Array1<f64>),
    tiled: &Tiled,
    slot: &Slot,
    g_rows: &[f32],
) {
    let part = slot.w_num.as_slice().expect("standard layout");
    let (part_num, part_den) = part.split_at(num.len());
    add_into(num, part_num);
    if tiled.terms == Terms::ItakuraSaito {
        add_into(den, part_den);
    } else {
        add_column_sums(g_sums, tiled, g_rows);
    }
}

/// Kullback–Leibler's `Λ^0 Hᵀ`: adds the column sums of the free activations `g_rows` to
/// `g_sums`, row by row.
fn add_column_sums(g_sums: &mut Array1<f64>, tiled: &Tiled, g_rows: &[f32]) {
    for row in g_rows.chunks_exact(tiled.k) {
        for (s, &v) in g_sums.iter_mut().zip(&row[tiled.fixed..]) {
            *s += f64::from(v);
        }
    }
}

/// `acc += part(slot)` for each slot in turn, in `f64`, with the elements split between the
/// threads (each element still sums the slots in their order, so the result does not depend
/// on the number of threads).
fn add_parts(acc: &mut Array2<f64>, slots: &[Slot], part: impl Fn(&Slot) -> &[f32] + Sync) {
    const CHUNK: usize = 8192;
    let acc = acc.as_slice_mut().expect("contiguous");
    acc.par_chunks_mut(CHUNK).enumerate().for_each(|(c, acc)| {
        for slot in slots {
            let part = &part(slot)[c * CHUNK..c * CHUNK + acc.len()];
            for (a, &p) in acc.iter_mut().zip(part) {
                *a += f64::from(p);
            }
        }
    });
}

/// The part of `buf` from its first 64-byte boundary on (whole cache lines for the tiled
/// kernels' stores).
fn aligned(buf: &mut [f32]) -> &mut [f32] {
    let start = buf.as_ptr().align_offset(64).min(buf.len());
    &mut buf[start..]
}

/// See [`super::k_wide_products`]: the products of [`Tiled::w_products`] and [`Tiled::h_products`]
/// alone, in blocks of [`BLOCK`] frames in parallel, each thread's sub-block of terms (made
/// once, of value `term`) in cache as in an iteration.
pub(crate) fn k_wide_products(w: ArrayView2<f32>, g: ArrayView2<f32>, term: f32) {
    let (frames, bins, k) = (g.nrows(), w.nrows(), w.ncols());
    let (w, g) = (
        w.as_slice().expect("standard layout"),
        g.as_slice().expect("standard layout"),
    );
    let row = 2 * bins;
    thread_local! {
        /// Each thread's terms and results, kept between calls so that timed calls allocate
        /// nothing.
        static BUFFERS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    (0..frames.div_ceil(BLOCK)).into_par_iter().for_each(|b| {
        let r = b * BLOCK..((b + 1) * BLOCK).min(frames);
        BUFFERS.with_borrow_mut(|buffers| {
            buffers.resize(SUB_BLOCK * row + 2 * bins * k + 2 * SUB_BLOCK * k, term);
            let (terms, sums) = buffers.split_at_mut(SUB_BLOCK * row);
            let (w_sums, h_sums) = sums.split_at_mut(2 * bins * k);
            let (num, den) = w_sums.split_at_mut(bins * k);
            for (i, sub) in sub_blocks(&r).enumerate() {
                let t = &terms[..sub.len() * row];
                let gs = &g[sub.start * k..sub.end * k];
                tiled::product((t, 1, row), (bins, sub.len()), (gs, k, k), num, k, i > 0);
                let inv = &t[bins..];
                tiled::product((inv, 1, row), (bins, sub.len()), (gs, k, k), den, k, i > 0);
                let rows = 2 * sub.len();
                tiled::product((t, bins, 1), (rows, bins), (w, k, k), h_sums, k, false);
            }
        });
    });
}

/// The penalised activation steps of the block starting at frame `start`, from the update's
/// numerators (`num`, overwritten with the steps) and denominators; `g` holds the activations
/// before this pass (frames × components) and `w_sums` the templates' sums.
fn penalized_h_steps(
    div: Divergence,
    penalties: Penalties,
    g: &Array2<f32>,
    start: usize,
    w_sums: &Array1<f32>,
    num: &mut ArrayViewMut2<f32>,
    den: &ArrayViewMut2<f32>,
) {
    let Penalties {
        sparsity,
        smoothness,
    } = penalties;
    let frames = g.nrows();
    for (i, (mut num_row, den_row)) in num.rows_mut().into_iter().zip(den.rows()).enumerate() {
        let t = start + i;
        for (k, (n, &d)) in num_row.iter_mut().zip(den_row).enumerate() {
            let s = f64::from(w_sums[k]);
            let h = f64::from(g[[t, k]]);
            let (mut c, mut a) = (sparsity * s, 0.0);
            if smoothness > 0.0 {
                // Neighbours' midpoints: the majoriser of (h_t − h_t±1)².
                let mut midpoints = 0.0;
                let mut neighbours = 0.0;
                if t > 0 {
                    midpoints += 0.5 * (h + f64::from(g[[t - 1, k]]));
                    neighbours += 1.0;
                }
                if t + 1 < frames {
                    midpoints += 0.5 * (h + f64::from(g[[t + 1, k]]));
                    neighbours += 1.0;
                }
                let weight = smoothness * s * s;
                c -= 4.0 * weight * midpoints;
                a = 4.0 * weight * neighbours * h;
            }
            *n = penalty::step(div, f64::from(d), f64::from(*n), c, a) as f32;
        }
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
/// `g wᵀ` is unchanged.
pub(crate) fn normalize_columns(
    w: &mut Array2<f32>,
    g: &mut Array2<f32>,
    fixed: usize,
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

/// A component's activations' L1 norm and summed squared frame-to-frame change, the two
/// quantities the penalties weigh.
fn activation_norms(h: ndarray::ArrayView1<f32>) -> (f64, f64) {
    let l1 = h.iter().map(|&a| f64::from(a)).sum();
    let change = h
        .iter()
        .zip(h.iter().skip(1))
        .map(|(&a, &b)| (f64::from(b) - f64::from(a)).powi(2))
        .sum();
    (l1, change)
}

/// The multiplicative factor `(num / den)^γ`.
fn step(num: f64, den: f64, gamma: f32) -> f32 {
    let r = num / den.max(TINY);
    if gamma == 1.0 {
        r as f32
    } else if gamma == 0.5 {
        r.sqrt() as f32
    } else {
        r.powf(f64::from(gamma)) as f32
    }
}

/// [`step`] in `f32`, for the many activations.
#[inline(always)]
fn step32(num: f32, den: f32, gamma: f32) -> f32 {
    let r = num / den.max(TINY as f32);
    if gamma == 1.0 {
        r
    } else if gamma == 0.5 {
        r.sqrt()
    } else {
        r.powf(gamma)
    }
}

/// `bins` rounded up to whole vectors of the tiled kernels.
fn padded(bins: usize) -> usize {
    bins.next_multiple_of(16)
}

/// The sub-blocks of block `r` for the tiled kernels.
fn sub_blocks(r: &Range<usize>) -> impl Iterator<Item = Range<usize>> {
    let end = r.end;
    (r.start..end)
        .step_by(SUB_BLOCK)
        .map(move |s| s..(s + SUB_BLOCK).min(end))
}

/// The rows `r` of the standard-layout `x` as one slice.
fn block_slice<'a>(x: &'a ArrayView2<'a, f32>, r: &Range<usize>) -> &'a [f32] {
    let bins = x.ncols();
    &x.as_slice().expect("standard layout")[r.start * bins..r.end * bins]
}

/// A frames × bins view of a block buffer.
fn frames(buf: &[f32], tb: usize) -> ArrayView2<'_, f32> {
    let bins = buf.len() / tb;
    ArrayView2::from_shape((tb, bins), &buf[..tb * bins]).expect("whole frames")
}

/// `g_b Wᵀ` (unfloored) into the front of `buf`, returned as a slice of frames × bins.
fn model_block<'b>(gb: &ArrayView2<f32>, w: &Array2<f32>, buf: &'b mut [f32]) -> &'b mut [f32] {
    let (tb, bins) = (gb.nrows(), w.nrows());
    let model = &mut buf[..tb * bins];
    let mut view = ArrayViewMut2::from_shape((tb, bins), &mut *model).expect("whole frames");
    gemm(1.0, gb, &w.t(), 0.0, &mut view);
    model
}

/// `g_b Wᵀ` (unfloored) into the odd halves of the front of `buf`, seen as frames × 2 bins;
/// returns that front. The even halves are for the numerator terms (see [`pair_terms`]).
fn pair_block<'b>(gb: &ArrayView2<f32>, w: &Array2<f32>, buf: &'b mut [f32]) -> &'b mut [f32] {
    let (tb, bins) = (gb.nrows(), w.nrows());
    let pair = &mut buf[..2 * tb * bins];
    let mut view = ArrayViewMut2::from_shape((tb, 2 * bins), &mut *pair).expect("whole frames");
    gemm(1.0, gb, &w.t(), 0.0, &mut view.slice_mut(s![.., bins..]));
    pair
}

/// The update terms of Itakura–Saito or another β, frame by frame, on a block laid out by
/// [`pair_block`]: the numerator term before the (transformed) model in each frame's row.
/// Returns the cost if `COST`.
fn pair_terms<const COST: bool>(div: Divergence, x: &[f32], pair: &mut [f32], bins: usize) -> f64 {
    let mut cost = 0.0;
    for (x, row) in x.chunks_exact(bins).zip(pair.chunks_exact_mut(2 * bins)) {
        let (ratio, model) = row.split_at_mut(bins);
        cost += match div {
            Divergence::Beta(b) => kernels::beta::<COST>(x, model, ratio, b),
            _ => kernels::itakura_saito::<COST>(x, model, ratio),
        };
    }
    cost
}

/// The H update's numerators and denominators of a block of `tb` frames, as the H pass left
/// them in `slot`.
fn h_terms(slot: &Slot, div: Divergence, tb: usize) -> (ArrayView2<'_, f32>, ArrayView2<'_, f32>) {
    match div {
        Divergence::ItakuraSaito | Divergence::Beta(_) => (
            slot.h_num.slice(s![..2 * tb;2, ..]),
            slot.h_num.slice(s![1..2 * tb;2, ..]),
        ),
        _ => (
            slot.h_num.slice(s![..tb, ..]),
            slot.h_den.slice(s![..tb, ..]),
        ),
    }
}

/// [`h_terms`] with the numerators writable.
fn h_terms_mut(
    slot: &mut Slot,
    div: Divergence,
    tb: usize,
) -> (ArrayViewMut2<'_, f32>, ArrayViewMut2<'_, f32>) {
    match div {
        Divergence::ItakuraSaito | Divergence::Beta(_) => slot
            .h_num
            .multi_slice_mut((s![..2 * tb;2, ..], s![1..2 * tb;2, ..])),
        _ => (
            slot.h_num.slice_mut(s![..tb, ..]),
            slot.h_den.slice_mut(s![..tb, ..]),
        ),
    }
}

/// `acc += part`, with `acc` contiguous and as long as `part`.
fn add_into(acc: &mut Array2<f64>, part: &[f32]) {
    let acc = acc.as_slice_mut().expect("contiguous");
    for (a, &p) in acc.iter_mut().zip(part) {
        *a += f64::from(p);
    }
}

/// Runs `compute` on every block of `frames` in groups of as many blocks as there are slots
/// (in parallel), then `combine` on each block of the group in order.
fn for_each_block<S, C, M>(
    slots: &mut [Slot],
    frames: usize,
    state: &mut S,
    compute: C,
    mut combine: M,
) where
    S: Sync,
    C: Fn(&mut Slot, &S, Range<usize>) + Sync,
    M: FnMut(&mut S, &Slot, Range<usize>),
{
    let n_blocks = frames.div_ceil(BLOCK);
    let block = |i: usize| i * BLOCK..((i + 1) * BLOCK).min(frames);
    let mut start = 0;
    while start < n_blocks {
        let n = slots.len().min(n_blocks - start);
        let shared: &S = state;
        slots[..n]
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, slot)| compute(slot, shared, block(start + i)));
        for (i, slot) in slots[..n].iter().enumerate() {
            combine(state, slot, block(start + i));
        }
        start += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            engine.h_pass(&w, &mut g, fused);
        }
        (w, g)
    }

    #[test]
    fn the_tiled_kernels_give_the_portable_updates_on_awkward_sizes() {
        if !tiled::available() {
            eprintln!("no AVX-512 here: nothing to compare");
            return;
        }
        let value = |i: usize, seed: usize| {
            let h = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 10_007;
            0.01 + h as f32 / 10_007.0
        };
        // Bins not a whole number of vectors, frames not of blocks or tiles, more components
        // than one strip of the products, and fixed ones.
        for (frames, bins, k, fixed) in [(300, 37, 5, 2), (70, 100, 33, 3), (9, 17, 1, 0)] {
            let x = Array2::from_shape_fn((frames, bins), |(t, f)| value(t * bins + f, 1));
            let w = Array2::from_shape_fn((bins, k), |(f, c)| value(f * k + c, 2));
            let g = Array2::from_shape_fn((frames, k), |(t, c)| value(t * k + c, 3));
            for (beta, gamma) in [(0.0, 0.5), (1.0, 1.0), (2.0, 1.0)] {
                let engine = |tiled| {
                    Engine::new(x.clone(), beta, gamma, (k, fixed), Penalties::default())
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
}
