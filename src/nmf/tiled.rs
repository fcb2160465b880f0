//! The tiled path: Itakura–Saito and Kullback–Leibler passes on the register-tiled AVX-512
//! kernels of [`super::avx512`], where the CPU has them.
//!
//! Model and terms are made in one kernel, a sub-block of `SUB_BLOCK` frames at a time so
//! that the terms stay in L2 between the model and the products, and the H pass can also make
//! the next W update's terms in the same sweep ([`Tiled::h_then_w_pass`]). The W terms do not
//! include the cost: where it is wanted, the portable path ([`super::portable`]) makes it in a
//! pass of its own.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::avx512::{self, Terms};
use super::blocks::{
    SUB_BLOCK, Slot, WTerms, add_into, block, block_len, block_slice, for_each_block, n_blocks,
    padded, sub_blocks,
};
use super::divergence::{Divergence, flushed, step32};
use super::kernels;

/// The tiled kernels' view of one pass: the loss's terms, the sizes, W and Wᵀ (see
/// [`transpose_w`]).
#[derive(Clone, Copy)]
pub(crate) struct Tiled<'a> {
    terms: Terms,
    bins: usize,
    ldw: usize,
    k: usize,
    fixed: usize,
    w: &'a [f32],
    wt: &'a [f32],
}

impl<'a> Tiled<'a> {
    /// The view for W (bins × components, standard layout) of which `fixed` leading
    /// components are not updated, and `wt` made from it by [`transpose_w`].
    pub(crate) fn new(
        div: Divergence,
        fixed: usize,
        w: &'a Array2<f32>,
        wt: &'a [f32],
    ) -> Tiled<'a> {
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

    /// Values per frame of the update terms (padded rows, see [`avx512::row_len`]).
    fn row(&self) -> usize {
        avx512::row_len(self.terms, self.ldw)
    }

    /// Rows of H terms per frame: numerator and denominator for Itakura–Saito.
    fn per_frame(&self) -> usize {
        self.row() / self.ldw
    }

    /// The update terms of the frames whose activations are `gs` and data `xs`, into `out`.
    fn model_terms(&self, gs: &[f32], xs: &[f32], out: &mut [f32]) {
        let (k, ldw, bins) = (self.k, self.ldw, self.bins);
        avx512::model_terms(self.terms, (gs, k, k), (self.wt, ldw), (xs, bins), out);
    }

    /// The cost of the frames whose data are `xs` (frames × bins), from their terms in `out`
    /// as [`Self::model_terms`] left them: each frame's sum, the frames in order.
    fn terms_cost(&self, xs: &[f32], out: &[f32]) -> f64 {
        let (bins, ldw, row) = (self.bins, self.ldw, self.row());
        (xs.chunks_exact(bins).enumerate())
            .map(|(t, x)| {
                let terms = &out[t * row..(t + 1) * row];
                match self.terms {
                    Terms::ItakuraSaito => {
                        kernels::itakura_saito_cost_of_inverse(x, &terms[ldw..ldw + bins])
                    }
                    Terms::KullbackLeibler => {
                        kernels::kullback_leibler_cost_of_ratio(x, &terms[..bins])
                    }
                }
            })
            .sum()
    }

    /// The H update's terms of `frames` frames (terms · W) into `h_terms`, laid out as
    /// [`Slot::h_terms`] reads them.
    fn h_products(&self, out: &[f32], frames: usize, h_terms: &mut [f32]) {
        let (k, ldw, bins) = (self.k, self.ldw, self.bins);
        let rows = self.per_frame() * frames;
        avx512::product(
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
                *a = flushed(*a * step32(n, d, gamma));
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
        avx512::product((out, 1, row), (bins, frames), g_free, num, free, accumulate);
        if self.terms == Terms::ItakuraSaito {
            let inv = &out[ldw..];
            avx512::product((inv, 1, row), (bins, frames), g_free, den, free, accumulate);
        }
    }

    /// The H update's terms of the block `r` of `x` (frames × bins) into `slot` (see
    /// [`Slot::h_terms`]); `g` is all the activations (frames × components).
    pub(crate) fn h_terms(
        &self,
        x: &ArrayView2<f32>,
        g: &[f32],
        r: &Range<usize>,
        slot: &mut Slot,
    ) {
        let k = self.k;
        let out = aligned(&mut slot.model);
        let h_terms = slot.h_num.as_slice_mut().expect("standard layout");
        for sub in sub_blocks(r) {
            let gs = &g[sub.start * k..sub.end * k];
            self.model_terms(gs, block_slice(x, &sub), out);
            let first = (sub.start - r.start) * self.per_frame() * k;
            self.h_products(out, sub.len(), &mut h_terms[first..]);
        }
    }

    /// The W update's terms (not the cost) for the activations `g` (frames × components) of
    /// the data `x` (frames × bins), summed into `sums` (which start at zero).
    pub(crate) fn w_pass(
        &self,
        x: ArrayView2<f32>,
        g: &Array2<f32>,
        slots: &mut [Slot],
        sums: &mut WTerms,
    ) {
        let g = g.as_slice().expect("standard layout");
        let k = self.k;
        for_each_block(
            slots,
            x.nrows(),
            sums,
            |slot, _, r| {
                let gb = &g[r.start * k..r.end * k];
                let out = aligned(&mut slot.model);
                for (i, sub) in sub_blocks(&r).enumerate() {
                    let local = (sub.start - r.start) * k..(sub.end - r.start) * k;
                    let gs = &gb[local];
                    self.model_terms(gs, block_slice(&x, &sub), out);
                    self.w_products(out, gs, &mut slot.w_num, i > 0);
                }
            },
            |sums, slot, r| self.add_w_terms(sums, slot, &g[r.start * k..r.end * k]),
        );
    }

    /// One H step of the sub-block whose data are `xs` and activations `gs`: the model's
    /// terms into `out` (kept there), their products with W into `h_terms`, then `gs` updated
    /// in place; `w_sums` are the Kullback–Leibler denominators.
    fn h_step(
        &self,
        xs: &[f32],
        gs: &mut [f32],
        out: &mut [f32],
        h_terms: &mut [f32],
        (w_sums, gamma): (&[f32], f32),
    ) {
        self.model_terms(gs, xs, out);
        self.h_products(out, gs.len() / self.k, h_terms);
        self.apply_h_steps(h_terms, w_sums, gamma, gs);
    }

    /// The H pass alone (W fixed during it), each block's activations updated in the block's
    /// task as soon as its terms are made: they depend on its own frames only, so the results
    /// are those of all the terms first and then all the steps. With `cost`, also returns the
    /// cost of the factors before the update, from the pass's own model.
    pub(crate) fn h_pass(
        &self,
        x: ArrayView2<f32>,
        gamma: f32,
        w_sums: &[f32],
        g: &mut Array2<f32>,
        slots: &mut [Slot],
        cost: bool,
    ) -> Option<f64> {
        let k = self.k;
        let sweep = |slot: &mut Slot, r: Range<usize>, gb: &mut [f32]| {
            let out = aligned(&mut slot.model);
            let h_terms = slot.h_num.as_slice_mut().expect("standard layout");
            for (sub, gs) in sub_blocks(&r).zip(gb.chunks_mut(SUB_BLOCK * k)) {
                let xs = block_slice(&x, &sub);
                self.h_step(xs, gs, out, h_terms, (w_sums, gamma));
                if cost {
                    // The terms of the model before the step are still in `out`.
                    slot.cost += self.terms_cost(xs, out);
                }
            }
        };
        let total = sweep_blocks(g, slots, sweep, |_, _| {});
        cost.then_some(total)
    }

    /// The H pass and then [`Self::w_pass`] for the updated activations `g`, block by block
    /// and sub-block by sub-block: the same arithmetic as the two passes (so the same results),
    /// one sweep over the data. `w_sums` are the column sums of W; the W terms are summed into
    /// `sums` (which start at zero). With `cost`, also returns the cost of the updated
    /// factors, from the W terms' model (so without a pass of its own).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn h_then_w_pass(
        &self,
        x: ArrayView2<f32>,
        gamma: f32,
        w_sums: &[f32],
        g: &mut Array2<f32>,
        slots: &mut [Slot],
        sums: &mut WTerms,
        cost: bool,
    ) -> Option<f64> {
        let k = self.k;
        let sweep = |slot: &mut Slot, r: Range<usize>, gb: &mut [f32]| {
            let out = aligned(&mut slot.model);
            let h_terms = slot.h_num.as_slice_mut().expect("standard layout");
            for (j, (sub, gs)) in sub_blocks(&r).zip(gb.chunks_mut(SUB_BLOCK * k)).enumerate() {
                let xs = block_slice(&x, &sub);
                self.h_step(xs, gs, out, h_terms, (w_sums, gamma));
                self.model_terms(gs, xs, out);
                if cost {
                    slot.cost += self.terms_cost(xs, out);
                }
                self.w_products(out, gs, &mut slot.w_num, j > 0);
            }
        };
        let add = |slots: &[Slot], g_rows: &[f32]| {
            let len = sums.num.len();
            add_parts(&mut sums.num, slots, |slot| {
                &slot.w_num.as_slice().expect("standard layout")[..len]
            });
            if self.terms == Terms::ItakuraSaito {
                add_parts(&mut sums.den, slots, |slot| {
                    &slot.w_num.as_slice().expect("standard layout")[len..]
                });
            } else {
                self.add_column_sums(sums, g_rows);
            }
        };
        let total = sweep_blocks(g, slots, sweep, add);
        cost.then_some(total)
    }

    /// Adds a block's W terms (from [`Self::w_products`]) into `sums`; `g_rows` are the
    /// block's activations.
    fn add_w_terms(&self, sums: &mut WTerms, slot: &Slot, g_rows: &[f32]) {
        let part = slot.w_num.as_slice().expect("standard layout");
        let (part_num, part_den) = part.split_at(sums.num.len());
        add_into(&mut sums.num, part_num);
        if self.terms == Terms::ItakuraSaito {
            add_into(&mut sums.den, part_den);
        } else {
            self.add_column_sums(sums, g_rows);
        }
    }

    /// Kullback–Leibler's `Λ^0 Hᵀ`: adds the column sums of the free activations `g_rows` to
    /// `sums.g_sums`, row by row.
    fn add_column_sums(&self, sums: &mut WTerms, g_rows: &[f32]) {
        for row in g_rows.chunks_exact(self.k) {
            for (s, &v) in sums.g_sums.iter_mut().zip(&row[self.fixed..]) {
                *s += f64::from(v);
            }
        }
    }
}

/// Runs `sweep` on every block of the frames of `g` (frames × components), in groups of as
/// many blocks as there are slots, in parallel, each with its slot (its cost first set to 0),
/// its frames and its rows of `g`; then `after` on each group's slots and rows, group by
/// group. Returns the slots' costs summed block by block, in order.
fn sweep_blocks(
    g: &mut Array2<f32>,
    slots: &mut [Slot],
    sweep: impl Fn(&mut Slot, Range<usize>, &mut [f32]) + Sync,
    mut after: impl FnMut(&[Slot], &[f32]),
) -> f64 {
    let (frames, k) = g.dim();
    let n_blocks = n_blocks(frames);
    let g_all = g.as_slice_mut().expect("standard layout");
    let (mut start, mut total) = (0, 0.0);
    while start < n_blocks {
        let n = slots.len().min(n_blocks - start);
        let rows = block(start, frames).start * k..block(start + n - 1, frames).end * k;
        slots[..n]
            .par_iter_mut()
            .zip(g_all[rows.clone()].par_chunks_mut(block_len(frames) * k))
            .enumerate()
            .for_each(|(i, (slot, gb))| {
                slot.cost = 0.0;
                sweep(slot, block(start + i, frames), gb);
            });
        total += slots[..n].iter().map(|slot| slot.cost).sum::<f64>();
        after(&slots[..n], &g_all[rows]);
        start += n;
    }
    total
}

/// Copies `w` (bins × components) into `wt` transposed (components × [`padded`] bins), for
/// the tiled kernels.
pub(crate) fn transpose_w(w: &Array2<f32>, wt: &mut [f32]) {
    let ldw = padded(w.nrows());
    for (f, row) in w.rows().into_iter().enumerate() {
        for (k, &a) in row.iter().enumerate() {
            wt[k * ldw + f] = a;
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

/// See [`super::k_wide_products`]: the products of [`Tiled::w_products`] and
/// [`Tiled::h_products`] alone, in the blocks of [`block`] in parallel, each thread's
/// sub-block of terms (made once, of value `term`) in cache as in an iteration.
#[cfg(feature = "bench-internals")]
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
    (0..n_blocks(frames)).into_par_iter().for_each(|b| {
        let r = block(b, frames);
        BUFFERS.with_borrow_mut(|buffers| {
            buffers.resize(SUB_BLOCK * row + 2 * bins * k + 2 * SUB_BLOCK * k, term);
            let (terms, sums) = buffers.split_at_mut(SUB_BLOCK * row);
            let (w_sums, h_sums) = sums.split_at_mut(2 * bins * k);
            let (num, den) = w_sums.split_at_mut(bins * k);
            for (i, sub) in sub_blocks(&r).enumerate() {
                let t = &terms[..sub.len() * row];
                let gs = &g[sub.start * k..sub.end * k];
                avx512::product((t, 1, row), (bins, sub.len()), (gs, k, k), num, k, i > 0);
                let inv = &t[bins..];
                avx512::product((inv, 1, row), (bins, sub.len()), (gs, k, k), den, k, i > 0);
                let rows = 2 * sub.len();
                avx512::product((t, bins, 1), (rows, bins), (w, k, k), h_sums, k, false);
            }
        });
    });
}
