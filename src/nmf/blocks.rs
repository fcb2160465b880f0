//! The blocks of frames every pass works on, their working memory, and the sums they feed.
//!
//! The data is held as `X = Vᵀ` (frames × bins) and the activations as `G = Hᵀ` (frames ×
//! components), so a block of frames is a contiguous slab of both. Blocks run in parallel in
//! groups, each into its own [`Slot`], and their partial results are combined in block order
//! ([`for_each_block`]), so results do not depend on the number of threads. All of this memory
//! is allocated once, before the first iteration.

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, s};
use rayon::prelude::*;

use super::divergence::Divergence;

/// Most frames per block.
pub(crate) const BLOCK: usize = 256;

/// Frames per step of the tiled kernels inside a block, so that the block's update terms
/// (about 0.5 MB for 1025 bins) stay in the L2 cache between the model and the product.
pub(crate) const SUB_BLOCK: usize = 64;

/// Blocks in flight per thread, between two rounds of combining their sums (fewer rounds,
/// fewer wake-ups of the threads); each holds about 2.5 MB for 1025 bins, of which the tiled
/// path touches a third. Six against two, W30 on two threads, A/B in one run: IS 3% and KL 7%
/// faster on the tiled path, IS 11% on the portable one.
const SLOTS_PER_THREAD: usize = 6;

/// Working memory of one block in flight.
pub(crate) struct Slot {
    /// The model block `Λ_b` (frames × bins), transformed in place. For Itakura–Saito and
    /// other β, each frame's row is preceded by the row of the numerator term (frames × 2
    /// bins), so that one product gives both the numerator and the denominator of an update.
    pub(crate) model: Vec<f32>,
    /// Partial W numerator of the block (bins × free components); for the losses that need
    /// both, numerator over denominator (2 bins × free components).
    pub(crate) w_num: Array2<f32>,
    /// H numerator of the block (frames × components); for the losses that need both,
    /// numerator and denominator rows in turn (2 frames × components).
    pub(crate) h_num: Array2<f32>,
    /// H denominator of the block, for the losses whose numerator stands alone.
    pub(crate) h_den: Array2<f32>,
    /// Partial Gram matrix `G_bᵀ G_b` (Euclidean W update).
    pub(crate) gram: Array2<f32>,
    /// Cost of the block.
    pub(crate) cost: f64,
}

impl Slot {
    /// The H update's numerators and denominators of a block of `tb` frames, as the H pass
    /// left them.
    pub(crate) fn h_terms(
        &self,
        div: Divergence,
        tb: usize,
    ) -> (ArrayView2<'_, f32>, ArrayView2<'_, f32>) {
        match div {
            Divergence::ItakuraSaito | Divergence::Beta(_) => (
                self.h_num.slice(s![..2 * tb;2, ..]),
                self.h_num.slice(s![1..2 * tb;2, ..]),
            ),
            _ => (
                self.h_num.slice(s![..tb, ..]),
                self.h_den.slice(s![..tb, ..]),
            ),
        }
    }

    /// [`Self::h_terms`] with the numerators writable.
    pub(crate) fn h_terms_mut(
        &mut self,
        div: Divergence,
        tb: usize,
    ) -> (ArrayViewMut2<'_, f32>, ArrayViewMut2<'_, f32>) {
        match div {
            Divergence::ItakuraSaito | Divergence::Beta(_) => self
                .h_num
                .multi_slice_mut((s![..2 * tb;2, ..], s![1..2 * tb;2, ..])),
            _ => (
                self.h_num.slice_mut(s![..tb, ..]),
                self.h_den.slice_mut(s![..tb, ..]),
            ),
        }
    }
}

/// The slots for the current thread pool: `bins` of data, `k` components of which `free` are
/// updated.
pub(crate) fn slots(bins: usize, k: usize, free: usize) -> Vec<Slot> {
    let n_slots = SLOTS_PER_THREAD * rayon::current_num_threads().max(1);
    (0..n_slots)
        .map(|_| Slot {
            // With room for the tiled kernels' padded and aligned rows.
            model: vec![0.0; (2 * BLOCK * bins).max(2 * SUB_BLOCK * padded(bins) + 16)],
            w_num: Array2::zeros((2 * bins, free)),
            h_num: Array2::zeros((2 * BLOCK, k)),
            h_den: Array2::zeros((BLOCK, k)),
            gram: Array2::zeros((k, free)),
            cost: 0.0,
        })
        .collect()
}

/// The W update's terms summed over the blocks, in `f64`.
pub(crate) struct WTerms {
    /// Numerator (bins × free components).
    pub(crate) num: Array2<f64>,
    /// Denominator (bins × free components), where it is not made from the sums below.
    pub(crate) den: Array2<f64>,
    /// Column sums of the free activations (Kullback–Leibler).
    pub(crate) g_sums: Array1<f64>,
    /// `Gᵀ G_free` (Euclidean).
    pub(crate) g_gram: Array2<f64>,
}

impl WTerms {
    /// Zeros for `bins` of data, `k` components of which `free` are updated.
    pub(crate) fn new(bins: usize, k: usize, free: usize) -> WTerms {
        WTerms {
            num: Array2::zeros((bins, free)),
            den: Array2::zeros((bins, free)),
            g_sums: Array1::zeros(free),
            g_gram: Array2::zeros((k, free)),
        }
    }

    /// Sets every sum to zero, before a pass adds to them.
    pub(crate) fn clear(&mut self) {
        self.num.fill(0.0);
        self.den.fill(0.0);
        self.g_sums.fill(0.0);
        self.g_gram.fill(0.0);
    }
}

/// Runs `compute` on every block of `frames` in groups of as many blocks as there are slots
/// (in parallel), then `combine` on each block of the group in order.
pub(crate) fn for_each_block<S, C, M>(
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
    let n_blocks = n_blocks(frames);
    let mut start = 0;
    while start < n_blocks {
        let n = slots.len().min(n_blocks - start);
        let shared: &S = state;
        slots[..n]
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, slot)| compute(slot, shared, block(start + i, frames)));
        for (i, slot) in slots[..n].iter().enumerate() {
            combine(state, slot, block(start + i, frames));
        }
        start += n;
    }
}

/// Frames per block of `frames`: an even number of blocks of at most [`BLOCK`] frames,
/// equal but for the last, so that two threads (or four, …) get equal shares; 1292 frames
/// are 6 blocks of 216 rather than 5 of 256 and one of 12, which kept one thread waiting for
/// a sixth of each pass. It depends on `frames` only, so the results do not depend on the
/// number of threads.
pub(crate) fn block_len(frames: usize) -> usize {
    let n = frames.div_ceil(BLOCK).next_multiple_of(2);
    frames.div_ceil(n).max(1)
}

/// How many blocks `frames` are cut into ([`block_len`]).
pub(crate) fn n_blocks(frames: usize) -> usize {
    frames.div_ceil(block_len(frames))
}

/// The frames of block `i` of `frames`.
pub(crate) fn block(i: usize, frames: usize) -> Range<usize> {
    let len = block_len(frames);
    (i * len).min(frames)..((i + 1) * len).min(frames)
}

/// The sub-blocks of block `r` for the tiled kernels.
pub(crate) fn sub_blocks(r: &Range<usize>) -> impl Iterator<Item = Range<usize>> {
    let end = r.end;
    (r.start..end)
        .step_by(SUB_BLOCK)
        .map(move |s| s..(s + SUB_BLOCK).min(end))
}

/// `bins` rounded up to whole vectors of the tiled kernels.
pub(crate) fn padded(bins: usize) -> usize {
    bins.next_multiple_of(16)
}

/// The rows `r` of the standard-layout `x` as one slice.
pub(crate) fn block_slice<'a>(x: &'a ArrayView2<'a, f32>, r: &Range<usize>) -> &'a [f32] {
    let bins = x.ncols();
    &x.as_slice().expect("standard layout")[r.start * bins..r.end * bins]
}

/// `acc += part`, with `acc` contiguous and as long as `part`.
pub(crate) fn add_into(acc: &mut Array2<f64>, part: &[f32]) {
    let acc = acc.as_slice_mut().expect("contiguous");
    for (a, &p) in acc.iter_mut().zip(part) {
        *a += f64::from(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_every_frame_once_in_an_even_number_of_equal_blocks() {
        for frames in [1, 2, 3, 5, 255, 256, 257, 511, 512, 513, 1292, 2584, 15_504] {
            let n = n_blocks(frames);
            let blocks: Vec<_> = (0..n).map(|i| block(i, frames)).collect();
            assert_eq!(blocks[0].start, 0);
            assert_eq!(blocks[n - 1].end, frames, "{frames}");
            assert!(blocks.windows(2).all(|p| p[0].end == p[1].start));
            assert!(blocks.iter().all(|b| !b.is_empty() && b.len() <= BLOCK));
            // Equal but the last, which is at most one frame per block shorter.
            assert!(blocks[..n - 1].iter().all(|b| b.len() == block_len(frames)));
            assert!(blocks[n - 1].len() + n > block_len(frames), "{frames}");
            if frames > 1 {
                assert_eq!(n % 2, 0, "{frames} frames in {n} blocks");
            }
        }
        // The 15 s clip of `learn`: 6 blocks of 216 frames but the last of 212.
        assert_eq!(
            (n_blocks(1292), block_len(1292), block(5, 1292).len()),
            (6, 216, 212)
        );
    }
}
