//! The portable path, one block at a time: the model `G_b Wᵀ` and the products with W or G by
//! faer ([`gemm`]), the element-wise terms fused with the cost by [`super::kernels`]. It runs
//! every divergence on every CPU, and makes every cost; where the CPU has AVX-512F the
//! Euclidean loss's products with the data take [`avx512::product`] instead of faer (the tiled
//! path, [`super::tiled`], runs Itakura–Saito and Kullback–Leibler there).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};

use super::avx512;
use super::blocks::Slot;
use super::divergence::Divergence;
use super::kernels;
use super::linalg::gemm;

/// What the portable path needs to know of a pass besides the block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portable {
    /// The divergence.
    pub(crate) div: Divergence,
    /// Leading components of W that are never updated.
    pub(crate) fixed: usize,
    /// Whether [`avx512::product`] makes the Euclidean loss's products with the data.
    pub(crate) tiled_products: bool,
}

impl Portable {
    /// The cost of a block: data `xb` (frames × bins), activations `gb` (frames × components).
    pub(crate) fn cost(
        self,
        xb: &[f32],
        gb: &ArrayView2<f32>,
        w: &Array2<f32>,
        slot: &mut Slot,
    ) -> f64 {
        let div = self.div;
        match div {
            Divergence::ItakuraSaito | Divergence::Beta(_) => {
                let pair = pair_block(gb, w, &mut slot.model);
                pair_terms::<true>(div, xb, pair, w.nrows())
            }
            Divergence::KullbackLeibler => {
                let model = model_block(gb, w, &mut slot.model);
                kernels::kullback_leibler::<true>(xb, model)
            }
            Divergence::Euclidean => {
                kernels::euclidean_cost(xb, model_block(gb, w, &mut slot.model))
            }
        }
    }

    /// The W update's terms of a block into `slot.w_num` (and, Euclidean, `slot.gram`), and
    /// its cost into `slot.cost` (0 unless `want_cost`); data `xb`, activations `gb` (standard
    /// layout).
    pub(crate) fn w_terms(
        self,
        xb: &[f32],
        gb: &ArrayView2<f32>,
        w: &Array2<f32>,
        want_cost: bool,
        slot: &mut Slot,
    ) {
        let (div, fixed) = (self.div, self.fixed);
        let tb = gb.nrows();
        let g_free = gb.slice(s![.., fixed..]);
        let bins = w.nrows();
        slot.cost = 0.0;
        let mut num = slot.w_num.slice_mut(s![..bins, ..]);
        match div {
            Divergence::KullbackLeibler => {
                let model = model_block(gb, w, &mut slot.model);
                slot.cost = if want_cost {
                    kernels::kullback_leibler::<true>(xb, model)
                } else {
                    kernels::kullback_leibler::<false>(xb, model)
                };
                gemm(1.0, &frames(model, tb).t(), &g_free, 0.0, &mut num);
            }
            Divergence::ItakuraSaito | Divergence::Beta(_) => {
                // Numerators over denominators (2 bins × free) in one product.
                let pair = pair_block(gb, w, &mut slot.model);
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
                    let model = model_block(gb, w, &mut slot.model);
                    slot.cost = kernels::euclidean_cost(xb, model);
                }
                if self.tiled_products {
                    let k = gb.ncols();
                    let g = gb.as_slice().expect("standard layout");
                    let num = slot.w_num.as_slice_mut().expect("standard layout");
                    let g_free = (&g[fixed..], k, k - fixed);
                    avx512::product((xb, 1, bins), (bins, tb), g_free, num, k - fixed, false);
                } else {
                    gemm(1.0, &frames(xb, tb).t(), &g_free, 0.0, &mut num);
                }
                gemm(1.0, &gb.t(), &g_free, 0.0, &mut slot.gram.view_mut());
            }
        }
    }

    /// The cost of a block as [`Self::cost`], bin `f` weighed by `weights[f]`.
    pub(crate) fn weighted_cost(
        self,
        xb: &[f32],
        gb: &ArrayView2<f32>,
        w: &Array2<f32>,
        weights: &[f32],
        slot: &mut Slot,
    ) -> f64 {
        let bins = w.nrows();
        let model = model_block(gb, w, &mut slot.model);
        (xb.chunks_exact(bins).zip(model.chunks_exact(bins)))
            .map(|(x, m)| kernels::weighted_cost(self.div, x, m, weights))
            .sum()
    }

    /// The H update's terms of a block into `slot.h_num` and `slot.h_den` (laid out as
    /// [`Slot::h_terms`] reads them; Kullback–Leibler's denominator is left to the caller);
    /// data `xb`, activations `gb`, the model made with `w` and the products taken with
    /// `w_products` (W itself, or its rows weighted), and `w_gram` = `w_productsᵀ W`
    /// (Euclidean).
    pub(crate) fn h_terms(
        self,
        xb: &[f32],
        gb: &ArrayView2<f32>,
        (w, w_products): (&Array2<f32>, &Array2<f32>),
        w_gram: &Array2<f32>,
        slot: &mut Slot,
    ) {
        let (tb, bins) = (gb.nrows(), w.nrows());
        match self.div {
            Divergence::KullbackLeibler => {
                let model = model_block(gb, w, &mut slot.model);
                kernels::kullback_leibler::<false>(xb, model);
                let mut num = slot.h_num.slice_mut(s![..tb, ..]);
                gemm(1.0, &frames(model, tb), &w_products.view(), 0.0, &mut num);
            }
            div @ (Divergence::ItakuraSaito | Divergence::Beta(_)) => {
                // The rows of numerator and denominator terms in turn (2 frames × bins), in
                // one product.
                let pair = pair_block(gb, w, &mut slot.model);
                pair_terms::<false>(div, xb, pair, bins);
                let mut num = slot.h_num.slice_mut(s![..2 * tb, ..]);
                gemm(
                    1.0,
                    &frames(pair, 2 * tb),
                    &w_products.view(),
                    0.0,
                    &mut num,
                );
            }
            Divergence::Euclidean => {
                if self.tiled_products {
                    let w = w_products.as_slice().expect("standard layout");
                    let k = w_products.ncols();
                    let num = slot.h_num.as_slice_mut().expect("standard layout");
                    avx512::product((xb, bins, 1), (tb, bins), (w, k, k), num, k, false);
                } else {
                    let mut num = slot.h_num.slice_mut(s![..tb, ..]);
                    gemm(1.0, &frames(xb, tb), &w_products.view(), 0.0, &mut num);
                }
                let mut den = slot.h_den.slice_mut(s![..tb, ..]);
                gemm(1.0, gb, &w_gram.view(), 0.0, &mut den);
            }
        }
    }
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
