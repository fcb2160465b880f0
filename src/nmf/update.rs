//! The multiplicative updates, computed block by block over time.
//!
//! The data is held as `X = Vᵀ` (frames × bins) and the activations as `G = Hᵀ` (frames ×
//! components), so a block of frames is a contiguous slab of both. For each block the model
//! `Λ = G_b Wᵀ`, its element-wise transforms and the products with W or G are computed while
//! the block sits in cache; only X is streamed from memory. Blocks run in parallel in groups,
//! each into its own slot, and their partial results are combined in block order, so results
//! do not depend on the number of threads.

use std::ops::Range;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip, s};
use rayon::prelude::*;

use super::linalg::{column_sums, gemm, tall_t_times};

/// Frames per block.
pub(crate) const BLOCK: usize = 128;

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

    /// `d(x | y)` for one element, in `f64`.
    pub(crate) fn element(self, x: f32, y: f32) -> f64 {
        let (x, y) = (f64::from(x), f64::from(y));
        match self {
            Divergence::ItakuraSaito => {
                let r = x / y;
                r - r.ln() - 1.0
            }
            Divergence::KullbackLeibler => {
                if x > 0.0 {
                    x * (x / y).ln() - x + y
                } else {
                    y
                }
            }
            Divergence::Euclidean => 0.5 * (x - y) * (x - y),
            Divergence::Beta(b) => {
                let b = f64::from(b);
                (x.powf(b) + (b - 1.0) * y.powf(b) - b * x * y.powf(b - 1.0)) / (b * (b - 1.0))
            }
        }
    }
}

/// Working memory of one block in flight.
struct Slot {
    /// The model block `Λ_b` (frames × bins), transformed in place.
    model: Array2<f32>,
    /// A second frames × bins buffer for the numerator term.
    ratio: Array2<f32>,
    /// Partial W numerator (bins × free components) or H numerator (frames × components).
    num: Array2<f32>,
    /// Partial denominator, shaped as `num`.
    den: Array2<f32>,
    /// Cost of the block.
    cost: f64,
}

/// The factorisation's working state that does not change between iterations: the data, the
/// divergence, and buffers reused by every pass.
pub(crate) struct Engine<'a> {
    x: ArrayView2<'a, f32>,
    div: Divergence,
    gamma: f32,
    fixed: usize,
    slots: Vec<Slot>,
    w_num: Array2<f64>,
    w_den: Array2<f64>,
}

impl<'a> Engine<'a> {
    /// `x` is frames × bins; `fixed` leading components of W are never updated.
    pub(crate) fn new(
        x: ArrayView2<'a, f32>,
        beta: f32,
        gamma: f32,
        k: usize,
        fixed: usize,
    ) -> Self {
        let bins = x.ncols();
        let free = k - fixed;
        let n_slots = 2 * rayon::current_num_threads().max(1);
        let slots = (0..n_slots)
            .map(|_| Slot {
                model: Array2::zeros((BLOCK, bins)),
                ratio: Array2::zeros((BLOCK, bins)),
                num: Array2::zeros((bins.max(BLOCK), k)),
                den: Array2::zeros((bins.max(BLOCK), k)),
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
        }
    }

    /// The cost `D(X | G Wᵀ)` summed in `f64`.
    pub(crate) fn cost(&mut self, w: &Array2<f32>, g: &Array2<f32>) -> f64 {
        let (x, div) = (self.x, self.div);
        let mut total = 0.0;
        for_each_block(
            &mut self.slots,
            x.nrows(),
            &mut total,
            |slot, _, r| {
                let tb = r.len();
                let mut model = slot.model.slice_mut(s![..tb, ..]);
                model_block(&g.slice(s![r.clone(), ..]), w, &mut model);
                slot.cost = block_cost(div, &x.slice(s![r, ..]), &model.view());
            },
            |total, slot, _| *total += slot.cost,
        );
        total
    }

    /// Accumulates the numerator and denominator of the W update for the current W and G.
    /// Returns the cost of the current factors when `want_cost`.
    pub(crate) fn w_pass(
        &mut self,
        w: &Array2<f32>,
        g: &Array2<f32>,
        want_cost: bool,
    ) -> Option<f64> {
        let (x, div, fixed) = (self.x, self.div, self.fixed);
        let need_model = div != Divergence::Euclidean || want_cost;
        let free = w.ncols() - fixed;
        self.w_num.fill(0.0);
        self.w_den.fill(0.0);
        let mut acc = (&mut self.w_num, &mut self.w_den, 0.0f64);
        for_each_block(
            &mut self.slots,
            x.nrows(),
            &mut acc,
            |slot, _, r| {
                let tb = r.len();
                let xb = x.slice(s![r.clone(), ..]);
                let gb = g.slice(s![r, ..]);
                let g_free = gb.slice(s![.., fixed..]);
                let mut model = slot.model.slice_mut(s![..tb, ..]);
                if need_model {
                    model_block(&gb, w, &mut model);
                }
                slot.cost = if want_cost {
                    block_cost(div, &xb, &model.view())
                } else {
                    0.0
                };
                let mut ratio = slot.ratio.slice_mut(s![..tb, ..]);
                let mut num = slot.num.slice_mut(s![..w.nrows(), ..free]);
                let mut den = slot.den.slice_mut(s![..w.nrows(), ..free]);
                match transform(div, &xb, &mut model, &mut ratio) {
                    Terms::NumeratorOnly(a) => gemm(1.0, &a.t(), &g_free, 0.0, &mut num),
                    Terms::Both(a, b) => {
                        gemm(1.0, &a.t(), &g_free, 0.0, &mut num);
                        gemm(1.0, &b.t(), &g_free, 0.0, &mut den);
                    }
                    Terms::Data => gemm(1.0, &xb.t(), &g_free, 0.0, &mut num),
                }
            },
            |(num, den, cost), slot, _| {
                let rows = num.nrows();
                add_into(num, &slot.num.slice(s![..rows, ..free]));
                if matches!(div, Divergence::ItakuraSaito | Divergence::Beta(_)) {
                    add_into(den, &slot.den.slice(s![..rows, ..free]));
                }
                *cost += slot.cost;
            },
        );
        let cost = acc.2;
        want_cost.then_some(cost)
    }

    /// Applies the W update accumulated by [`Self::w_pass`] to the free columns of `w`, then
    /// (if `normalize`) scales those columns to sum 1 and moves the scale into `g`.
    pub(crate) fn apply_w(&mut self, w: &mut Array2<f32>, g: &mut Array2<f32>, normalize: bool) {
        let fixed = self.fixed;
        match self.div {
            Divergence::KullbackLeibler => {
                // Λ^0 Hᵀ: every row of the denominator is the row sums of H.
                let sums = column_sums(g.slice(s![.., fixed..]));
                for mut row in self.w_den.rows_mut() {
                    row.assign(&sums);
                }
            }
            Divergence::Euclidean => {
                // (W H) Hᵀ = W (H Hᵀ), with the small Gram matrix.
                let g_free = g.slice(s![.., fixed..]);
                let gram = tall_t_times(g.view(), g_free);
                let w64 = w.mapv(f64::from);
                self.w_den.assign(&w64.dot(&gram));
            }
            _ => {}
        }
        let gamma = self.gamma;
        Zip::from(w.slice_mut(s![.., fixed..]))
            .and(&self.w_num)
            .and(&self.w_den)
            .for_each(|w, &n, &d| *w *= step(n, d, gamma));
        if normalize {
            normalize_columns(w, g, fixed);
        }
    }

    /// Updates every column of `g` (all components' activations) for the current W.
    pub(crate) fn h_pass(&mut self, w: &Array2<f32>, g: &mut Array2<f32>) {
        let (x, div, gamma) = (self.x, self.div, self.gamma);
        let k = w.ncols();
        // Denominators that do not depend on the block.
        let w_sums = column_sums(w.view()).mapv(|v| v as f32);
        let w_gram = if div == Divergence::Euclidean {
            w.t().dot(w)
        } else {
            Array2::zeros((0, 0))
        };
        for_each_block(
            &mut self.slots,
            x.nrows(),
            g,
            |slot, g: &Array2<f32>, r| {
                let tb = r.len();
                let xb = x.slice(s![r.clone(), ..]);
                let gb = g.slice(s![r, ..]);
                let mut model = slot.model.slice_mut(s![..tb, ..]);
                if div != Divergence::Euclidean {
                    model_block(&gb, w, &mut model);
                }
                let mut ratio = slot.ratio.slice_mut(s![..tb, ..]);
                let mut num = slot.num.slice_mut(s![..tb, ..k]);
                let mut den = slot.den.slice_mut(s![..tb, ..k]);
                match transform(div, &xb, &mut model, &mut ratio) {
                    Terms::NumeratorOnly(a) => {
                        gemm(1.0, &a, &w.view(), 0.0, &mut num);
                        for mut row in den.rows_mut() {
                            row.assign(&w_sums);
                        }
                    }
                    Terms::Both(a, b) => {
                        gemm(1.0, &a, &w.view(), 0.0, &mut num);
                        gemm(1.0, &b, &w.view(), 0.0, &mut den);
                    }
                    Terms::Data => {
                        gemm(1.0, &xb, &w.view(), 0.0, &mut num);
                        gemm(1.0, &gb, &w_gram.view(), 0.0, &mut den);
                    }
                }
            },
            |g, slot, r| {
                let tb = r.len();
                let mut gb = g.slice_mut(s![r, ..]);
                Zip::from(&mut gb)
                    .and(&slot.num.slice(s![..tb, ..k]))
                    .and(&slot.den.slice(s![..tb, ..k]))
                    .for_each(|g, &n, &d| *g *= step(f64::from(n), f64::from(d), gamma));
            },
        );
    }
}

/// Scales each column of `w` from `fixed` on to sum 1, moving the scale into `g`, so that
/// `g wᵀ` is unchanged.
pub(crate) fn normalize_columns(w: &mut Array2<f32>, g: &mut Array2<f32>, fixed: usize) {
    for j in fixed..w.ncols() {
        let sum: f64 = w.column(j).iter().map(|&a| f64::from(a)).sum();
        if sum > 0.0 {
            let inv = (1.0 / sum) as f32;
            w.column_mut(j).mapv_inplace(|a| a * inv);
            g.column_mut(j)
                .mapv_inplace(|a| (f64::from(a) * sum) as f32);
        }
    }
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

/// `model = max(g_b Wᵀ, floor)`.
fn model_block(gb: &ArrayView2<f32>, w: &Array2<f32>, model: &mut ArrayViewMut2<f32>) {
    gemm(1.0, gb, &w.t(), 0.0, model);
    model.mapv_inplace(|v| v.max(MODEL_FLOOR));
}

fn block_cost(div: Divergence, x: &ArrayView2<f32>, model: &ArrayView2<f32>) -> f64 {
    let mut sum = 0.0;
    Zip::from(x)
        .and(model)
        .for_each(|&x, &y| sum += div.element(x, y));
    sum
}

/// The element-wise terms of an update, multiplied with W or G afterwards.
enum Terms<'v> {
    /// `A = X ⊙ Λ^(β-2)`; the denominator `Λ^(β-1)` is all ones (KL).
    NumeratorOnly(ArrayView2<'v, f32>),
    /// `A = X ⊙ Λ^(β-2)` and `B = Λ^(β-1)`.
    Both(ArrayView2<'v, f32>, ArrayView2<'v, f32>),
    /// `A = X` itself; the denominator is formed from Gram matrices (Euclidean).
    Data,
}

/// Computes the update terms from the model block, overwriting `model` and `ratio`.
fn transform<'v>(
    div: Divergence,
    x: &ArrayView2<f32>,
    model: &'v mut ArrayViewMut2<f32>,
    ratio: &'v mut ArrayViewMut2<f32>,
) -> Terms<'v> {
    match div {
        Divergence::KullbackLeibler => {
            Zip::from(&mut *model).and(x).for_each(|m, &x| *m = x / *m);
            Terms::NumeratorOnly(model.view())
        }
        Divergence::ItakuraSaito => {
            Zip::from(&mut *model)
                .and(&mut *ratio)
                .and(x)
                .for_each(|m, r, &x| {
                    let inv = 1.0 / *m;
                    *r = x * inv * inv;
                    *m = inv;
                });
            Terms::Both(ratio.view(), model.view())
        }
        Divergence::Beta(b) => {
            let e = b - 2.0;
            Zip::from(&mut *model)
                .and(&mut *ratio)
                .and(x)
                .for_each(|m, r, &x| {
                    let p = m.powf(e);
                    *r = x * p;
                    *m *= p;
                });
            Terms::Both(ratio.view(), model.view())
        }
        Divergence::Euclidean => Terms::Data,
    }
}

fn add_into(acc: &mut Array2<f64>, part: &ArrayView2<f32>) {
    Zip::from(acc)
        .and(part)
        .for_each(|a, &p| *a += f64::from(p));
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
