//! Hand-tiled AVX-512 kernels for the products of an Itakura–Saito or Kullback–Leibler update
//! (and the Euclidean loss's products with the data), chosen at run time when the CPU has
//! AVX-512F (elsewhere the portable path of [`super::portable`], faer plus the fused
//! element-wise kernels, does the same work). [`super::tiled`] runs the passes on them.
//!
//! The products of a block have a small inner size K (the components) on one side, where a
//! general GEMM spends much of its time packing and on edges. These kernels instead keep a
//! tile of the result in the 32 vector registers and read both operands where they lie:
//!
//! - [`model_terms`]: the model `Λ = G_b Wᵀ` of a block, vectorised over bins and with the
//!   update's element-wise terms formed from the registers (no pass over the model in memory);
//! - [`product`]: `C (+)= A · B` with B's rows K wide (vectorised over K), for the H update's
//!   `terms · W` and the W update's `termsᵀ · G_b`, A read by any strides.
//!
//! Results are the same whatever the number of threads (each call is serial and sums in a
//! fixed order); they differ from the portable path by rounding only.

use tiles::{model_rows, model_tile, product_tile};

/// Whether this CPU runs the kernels (checked once, then cached by std).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Lanes of one vector.
const LANES: usize = 16;

/// Which update terms [`model_terms`] leaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Terms {
    /// Itakura–Saito: `X/Λ²` in each frame's first `bins` values, `1/Λ` in the next `bins`.
    ItakuraSaito,
    /// Kullback–Leibler: `X/Λ` in each frame's `bins` values.
    KullbackLeibler,
}

/// The floored model of a block and its update terms.
///
/// `g` is the block's activations (`frames` rows of `k` values, row stride `ldg`), `wt` the
/// templates transposed (`k` rows of `ldw >= bins` values, zero beyond `bins`, `ldw` a
/// multiple of 16), `x` the block's data (`frames` rows of `bins`), and `out` receives
/// `frames` rows of [`row_len`] values, of which those past `bins` in each half are left
/// alone (the stores fill whole cache lines when `out` starts on one).
pub(crate) fn model_terms(
    terms: Terms,
    (g, ldg, k): (&[f32], usize, usize),
    (wt, ldw): (&[f32], usize),
    (x, bins): (&[f32], usize),
    out: &mut [f32],
) {
    let frames = x.len() / bins.max(1);
    let row = row_len(terms, ldw);
    if frames == 0 || bins == 0 || k == 0 {
        return;
    }
    assert!(ldw >= bins && ldw.is_multiple_of(LANES) && wt.len() >= span(k, ldw, ldw));
    assert!(g.len() >= span(frames, ldg, k) && out.len() >= span(frames, row, row));
    assert!(available(), "AVX-512 kernels on a CPU without AVX-512F");
    // Frames outside, bins inside, so that X is read row by row (and prefetched); Wᵀ (k × ldw
    // values) stays in L2.
    let mut t0 = 0;
    while t0 < frames {
        let rows = (frames - t0).min(8);
        let mut f0 = 0;
        while f0 < bins {
            let width = (bins - f0).min(3 * LANES);
            // SAFETY: AVX-512F is present (asserted above); the tile reads rows
            // t0..t0+rows of g (checked above), k rows of wt at f0..f0+16·nv (f0 a multiple
            // of 48, so that ≤ ldw: whole vectors never pass a row), and reads x and writes
            // out only at the `width` bins masked in, inside the rows checked above.
            unsafe {
                let g = g.as_ptr().add(t0 * ldg);
                let wt = wt.as_ptr().add(f0);
                let x = x.as_ptr().add(t0 * bins + f0);
                let o = out.as_mut_ptr().add(t0 * row + f0);
                let a = ModelArgs {
                    g,
                    ldg,
                    k,
                    wt,
                    ldw,
                    x,
                    ldx: bins,
                    out: o,
                    ldo: row,
                    width,
                };
                let nv = width.div_ceil(LANES);
                match terms {
                    Terms::ItakuraSaito => model_tiles::<true>(a, rows, nv),
                    Terms::KullbackLeibler => model_tiles::<false>(a, rows, nv),
                }
            }
            f0 += width;
        }
        t0 += rows;
    }
}

/// One tile of `rows` ≤ 8 frames and `nv` ≤ 3 vectors of bins, Itakura–Saito terms if `IS`.
///
/// # Safety
/// As [`model_tile`]: AVX-512F, and pointers valid for the tile.
unsafe fn model_tiles<const IS: bool>(a: ModelArgs, rows: usize, nv: usize) {
    // SAFETY: passed on from the caller.
    unsafe {
        match (rows, nv) {
            (8, 3) => model_tile::<8, 3, IS>(a),
            (8, 2) => model_tile::<8, 2, IS>(a),
            (8, _) => model_tile::<8, 1, IS>(a),
            (_, 3) => model_rows::<3, IS>(a, rows),
            (_, 2) => model_rows::<2, IS>(a, rows),
            _ => model_rows::<1, IS>(a, rows),
        }
    }
}

/// The length of a frame's row of [`model_terms`]'s output: one (Kullback–Leibler) or two
/// (Itakura–Saito) padded rows of `ldw` bins.
pub(crate) fn row_len(terms: Terms, ldw: usize) -> usize {
    if terms == Terms::ItakuraSaito {
        2 * ldw
    } else {
        ldw
    }
}

/// The length a slice needs for `rows` rows at stride `stride` whose last row has `last`
/// values: `(rows - 1) · stride + last` (panics on overflow; `rows` ≥ 1).
fn span(rows: usize, stride: usize, last: usize) -> usize {
    (rows - 1)
        .checked_mul(stride)
        .and_then(|s| s.checked_add(last))
        .expect("array sizes overflow")
}

/// Pointers and strides of one [`model_tile`].
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct ModelArgs {
    g: *const f32,
    ldg: usize,
    k: usize,
    wt: *const f32,
    ldw: usize,
    x: *const f32,
    ldx: usize,
    out: *mut f32,
    ldo: usize,
    width: usize,
}

/// `C (+)= A · B` for an A of `m` rows and `r` columns read at `a[i·rs + j·cs]`, a B of `r`
/// rows of `n` values (row stride `ldb`), and a C of `m` rows of `n` values (row stride
/// `ldc`). C is overwritten unless `accumulate`.
pub(crate) fn product(
    (a, rs, cs): (&[f32], usize, usize),
    (m, r): (usize, usize),
    (b, ldb, n): (&[f32], usize, usize),
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= span(m, ldc, n));
    if r == 0 {
        // An empty sum.
        if !accumulate {
            c.chunks_mut(ldc).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    assert!(available(), "AVX-512 kernels on a CPU without AVX-512F");
    assert!(
        a.len()
            > span(m, rs, 0)
                .checked_add(span(r, cs, 0))
                .expect("overflow")
    );
    assert!(b.len() >= span(r, ldb, n));
    // Columns of B and C in strips of two vectors; rows of A and C in tiles of 12, or of 24
    // when a strip is one vector wide (all of a C at most 16 wide, as with K ≤ 16, or the last
    // strip of a wider one: twice the rows keep as many sums in registers).
    let mut j0 = 0;
    while j0 < n {
        let width = (n - j0).min(2 * LANES);
        let mut i0 = 0;
        while i0 < m {
            let rows = match (m - i0, width <= LANES) {
                (24.., true) => 24,
                (16.., true) => 16,
                (12.., false) => 12,
                (8.., _) => 8,
                (4.., _) => 4,
                (left, _) => left,
            };
            // SAFETY: AVX-512F is present; the tile reads A at rows i0..i0+rows and columns
            // 0..r, B at rows 0..r and the `width` masked-in columns from j0, and C likewise
            // (all inside the slices, checked above).
            unsafe {
                let t = ProductArgs {
                    a: a.as_ptr().add(i0 * rs),
                    rs,
                    cs,
                    r,
                    b: b.as_ptr().add(j0),
                    ldb,
                    c: c.as_mut_ptr().add(i0 * ldc + j0),
                    ldc,
                    width,
                    accumulate,
                };
                match (rows, width <= LANES) {
                    (24, _) => product_tile::<24, 1>(t),
                    (16, _) => product_tile::<16, 1>(t),
                    (12, _) => product_tile::<12, 2>(t),
                    (8, true) => product_tile::<8, 1>(t),
                    (8, false) => product_tile::<8, 2>(t),
                    (4, true) => product_tile::<4, 1>(t),
                    (4, false) => product_tile::<4, 2>(t),
                    (3, _) => product_tile::<3, 2>(t),
                    (2, _) => product_tile::<2, 2>(t),
                    _ => product_tile::<1, 2>(t),
                }
            }
            i0 += rows;
        }
        j0 += width;
    }
}

/// Pointers and strides of one [`product_tile`].
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct ProductArgs {
    a: *const f32,
    rs: usize,
    cs: usize,
    r: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    width: usize,
    accumulate: bool,
}

/// The register tiles, in AVX-512 intrinsics.
#[cfg(target_arch = "x86_64")]
mod tiles {
    use std::arch::x86_64::*;

    use super::{LANES, ModelArgs, ProductArgs};
    use crate::nmf::divergence::MODEL_FLOOR;

    /// The first `n` lanes (all if `n >= 16`).
    #[inline(always)]
    fn lanes(n: usize) -> __mmask16 {
        if n >= LANES {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// A tile of fewer than 8 frames, one frame at a time.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn model_rows<const NV: usize, const IS: bool>(a: ModelArgs, rows: usize) {
        for i in 0..rows {
            // SAFETY: as the caller's tile, one frame of it.
            unsafe {
                let one = ModelArgs {
                    g: a.g.add(i * a.ldg),
                    x: a.x.add(i * a.ldx),
                    out: a.out.add(i * a.ldo),
                    ..a
                };
                model_tile::<1, NV, IS>(one);
            }
        }
    }

    /// `MR` frames × `NV` vectors of bins: the model in registers, then its terms.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn model_tile<const MR: usize, const NV: usize, const IS: bool>(
        a: ModelArgs,
    ) {
        // X streams from memory: ask for its lines two tiles ahead (without this, half the
        // kernel's time went to waiting for them).
        for i in 0..MR {
            for j in 0..NV {
                let ahead = a.x.wrapping_add(i * a.ldx + (j + 2 * NV) * LANES);
                _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
            }
        }
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        for kk in 0..a.k {
            // SAFETY: see `model_terms`.
            unsafe {
                let mut w = [_mm512_setzero_ps(); NV];
                for (j, w) in w.iter_mut().enumerate() {
                    *w = _mm512_loadu_ps(a.wt.add(kk * a.ldw + j * LANES));
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let gi = _mm512_set1_ps(*a.g.add(i * a.ldg + kk));
                    for (acc, &w) in acc.iter_mut().zip(&w) {
                        *acc = _mm512_fmadd_ps(gi, w, *acc);
                    }
                }
            }
        }
        let floor = _mm512_set1_ps(MODEL_FLOOR);
        let largest = _mm512_set1_ps(f32::MAX);
        let one = _mm512_set1_ps(1.0);
        for (i, acc) in acc.iter().enumerate() {
            for (j, &m) in acc.iter().enumerate() {
                let mask = lanes(a.width - j * LANES);
                // Floored, and finite so that the reciprocal's Newton step is too.
                let m = _mm512_min_ps(_mm512_max_ps(m, floor), largest);
                // SAFETY: see `model_terms`; only the masked-in bins are touched.
                unsafe {
                    let x = _mm512_maskz_loadu_ps(mask, a.x.add(i * a.ldx + j * LANES));
                    let out = a.out.add(i * a.ldo + j * LANES);
                    // 1/m: the 14-bit estimate and one Newton step (within about an ulp;
                    // a division here took half the kernel's time).
                    let r = _mm512_rcp14_ps(m);
                    let inv = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(m, r, one), r);
                    if IS {
                        let ratio = _mm512_mul_ps(_mm512_mul_ps(x, inv), inv);
                        _mm512_mask_storeu_ps(out, mask, ratio);
                        _mm512_mask_storeu_ps(out.add(a.ldw), mask, inv);
                    } else {
                        _mm512_mask_storeu_ps(out, mask, _mm512_mul_ps(x, inv));
                    }
                }
            }
        }
    }

    /// `MR` rows × `NV` (1 or 2) vectors of C, summed over all of A's columns in registers.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn product_tile<const MR: usize, const NV: usize>(t: ProductArgs) {
        let masks = [lanes(t.width), lanes(t.width.saturating_sub(LANES))];
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        for j in 0..t.r {
            // SAFETY: see `product`.
            unsafe {
                let b = t.b.add(j * t.ldb);
                let mut bv = [_mm512_setzero_ps(); NV];
                for (v, bv) in bv.iter_mut().enumerate() {
                    *bv = _mm512_maskz_loadu_ps(masks[v], b.wrapping_add(v * LANES));
                }
                let a = t.a.add(j * t.cs);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let ai = _mm512_set1_ps(*a.add(i * t.rs));
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc = _mm512_fmadd_ps(ai, bv, *acc);
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (v, &sum) in acc.iter().enumerate() {
                // SAFETY: see `product`; only the masked-in columns are touched.
                unsafe {
                    let c = t.c.add(i * t.ldc).wrapping_add(v * LANES);
                    let mut sum = sum;
                    if t.accumulate {
                        sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(masks[v], c));
                    }
                    _mm512_mask_storeu_ps(c, masks[v], sum);
                }
            }
        }
    }
}

/// Elsewhere the tiles never run: [`available`] is false.
#[cfg(not(target_arch = "x86_64"))]
mod tiles {
    use super::{ModelArgs, ProductArgs};

    pub(super) unsafe fn model_rows<const NV: usize, const IS: bool>(_: ModelArgs, _: usize) {
        unreachable!("AVX-512 kernels without AVX-512")
    }

    pub(super) unsafe fn model_tile<const MR: usize, const NV: usize, const IS: bool>(
        _: ModelArgs,
    ) {
        unreachable!("AVX-512 kernels without AVX-512")
    }

    pub(super) unsafe fn product_tile<const MR: usize, const NV: usize>(_: ProductArgs) {
        unreachable!("AVX-512 kernels without AVX-512")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                0.05 + ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32
            })
            .collect()
    }

    #[test]
    fn products_match_a_plain_triple_loop_for_every_tile_shape() {
        if !available() {
            return;
        }
        for (m, r, n) in [
            (1, 1, 1),
            (13, 7, 32),
            (29, 40, 17),
            (7, 3, 33),
            (50, 64, 70),
            (53, 9, 16),
            (45, 11, 7),
            (3, 0, 5),
        ] {
            for (rs, cs) in [(r, 1), (1, m)] {
                let a = values(m * r, 1);
                let b = values(r * n, 2);
                let mut c = values(m * n, 3);
                let before = c.clone();
                for accumulate in [false, true] {
                    c.copy_from_slice(&before);
                    product((&a, rs, cs), (m, r), (&b, n, n), &mut c, n, accumulate);
                    for i in 0..m {
                        for j in 0..n {
                            let s: f64 = (0..r)
                                .map(|l| f64::from(a[i * rs + l * cs]) * f64::from(b[l * n + j]))
                                .sum();
                            let want = s + if accumulate {
                                f64::from(before[i * n + j])
                            } else {
                                0.0
                            };
                            let got = f64::from(c[i * n + j]);
                            assert!((got - want).abs() <= 1e-5 * want, "{m}x{r}x{n} ({i},{j})");
                        }
                    }
                }
            }
        }
    }
}
