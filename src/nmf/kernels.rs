//! The element-wise passes of an update, fused: floor the model, optionally add up the cost,
//! and form the update terms, in one sweep over a block that sits in cache.
//!
//! Each kernel is compiled for AVX-512, AVX2+FMA and NEON besides the baseline, and the best
//! one for the running CPU is picked at run time (the `multiversion` crate), so release
//! binaries run on any x86-64 and still use the vector units of the machine they run on. The
//! logarithm of the costs, and the exponential and powers of the general β, are branch-free
//! polynomials in `f64` (below), so they vectorise too.

use multiversion::multiversion;

use super::divergence::{Divergence, MODEL_FLOOR};

/// `ln(x)` for positive, finite, normal `x`, accurate to about 1e-15 relative, written without
/// branches or calls so that it vectorises: `x = m · 2^e` with `m` in [√½, √2), and
/// `ln m = 2 atanh(s)`, `s = (m - 1) / (m + 1)`, by its series up to `s^17`.
#[inline(always)]
pub(crate) fn ln(x: f64) -> f64 {
    const LN_2: f64 = std::f64::consts::LN_2;
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = f64::from(e + i32::from(big));
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let series = 1.0
        + z * (1.0 / 3.0
            + z * (1.0 / 5.0
                + z * (1.0 / 7.0
                    + z * (1.0 / 9.0
                        + z * (1.0 / 11.0 + z * (1.0 / 13.0 + z * (1.0 / 15.0 + z / 17.0)))))));
    2.0 * s * series + e * LN_2
}

/// `e^y`, accurate to a few units in the last place of `f64`, written without branches or
/// calls so that it vectorises: `y = k ln 2 + r` with `k` rounded to nearest (by adding
/// 1.5·2⁵², whose low bits then hold `k`) and `|r| ≤ ln 2 / 2`, `e^r` by its Taylor series to
/// `r^13`, and `2^k` put into the exponent bits. `y` is clamped to ±700 (results of
/// 1e±304), far beyond what an `f32` result can hold.
#[inline(always)]
fn exp(y: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    let y = y.clamp(-700.0, 700.0);
    let t = y * std::f64::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    let k_bits = t.to_bits().wrapping_sub(MAGIC.to_bits());
    // ln 2 in two parts, so that k · ln 2 is exact enough for |k| up to 1010.
    const LN_2_HI: f64 = 0.693_147_180_369_123_8;
    const LN_2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let r = (y - k * LN_2_HI) - k * LN_2_LO;
    // 1/n, so that the nested series multiplies (a division per term would be slow).
    const INV: [f64; 14] = {
        let mut inv = [0.0; 14];
        let mut n = 1;
        while n < 14 {
            inv[n] = 1.0 / n as f64;
            n += 1;
        }
        inv
    };
    let mut p = 1.0;
    for n in (1..=13).rev() {
        p = 1.0 + r * p * INV[n];
    }
    p * f64::from_bits(k_bits.wrapping_add(1023) << 52)
}

/// `a^b` for positive, finite, normal `a`, as `e^(b ln a)`, vectorisable (see [`exp`], [`ln`]).
#[inline(always)]
fn pow(a: f64, b: f64) -> f64 {
    exp(b * ln(a))
}

/// Elements per step of the vectorised loops. The cost is summed in this many partial sums
/// side by side, so that summing vectorises without reordering any single sum (floating-point
/// addition is not associative; the order is fixed by the data's length, not by threads).
const LANES: usize = 8;

/// Applies `element` to every index of three equally long slices, summing what it returns.
/// Fixed-size chunks let the compiler drop bounds checks and vectorise `element`.
#[inline(always)]
fn for_each_lane(
    x: &[f32],
    a: &mut [f32],
    b: &mut [f32],
    mut element: impl FnMut(f32, &mut f32, &mut f32) -> f64,
) -> f64 {
    let n = x.len();
    let (a, b) = (&mut a[..n], &mut b[..n]);
    let mut acc = [0f64; LANES];
    let (xs, x_tail) = x.as_chunks::<LANES>();
    let (as_, a_tail) = a.as_chunks_mut::<LANES>();
    let (bs, b_tail) = b.as_chunks_mut::<LANES>();
    for ((xc, ac), bc) in xs.iter().zip(as_.iter_mut()).zip(bs.iter_mut()) {
        for j in 0..LANES {
            acc[j] += element(xc[j], &mut ac[j], &mut bc[j]);
        }
    }
    for ((&x, a), b) in x_tail.iter().zip(a_tail.iter_mut()).zip(b_tail.iter_mut()) {
        acc[0] += element(x, a, b);
    }
    acc.iter().sum()
}

/// Itakura–Saito: floors `model`, returns the cost if `COST`, then leaves `1/Λ` in `model`
/// and `X/Λ²` in `ratio`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn itakura_saito<const COST: bool>(
    x: &[f32],
    model: &mut [f32],
    ratio: &mut [f32],
) -> f64 {
    for_each_lane(x, model, ratio, |x, model, ratio| {
        let m = model.max(MODEL_FLOOR);
        let inv = 1.0 / m;
        *ratio = x * inv * inv;
        *model = inv;
        if COST {
            let r = f64::from(x) / f64::from(m);
            r - ln(r) - 1.0
        } else {
            0.0
        }
    })
}

/// Kullback–Leibler: floors `model`, returns the cost if `COST`, then leaves `X/Λ` in `model`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn kullback_leibler<const COST: bool>(x: &[f32], model: &mut [f32]) -> f64 {
    let n = x.len();
    let model = &mut model[..n];
    let mut acc = [0f64; LANES];
    let (xs, x_tail) = x.as_chunks::<LANES>();
    let (ms, m_tail) = model.as_chunks_mut::<LANES>();
    let element = |x: f32, model: &mut f32| {
        let m = model.max(MODEL_FLOOR);
        *model = x / m;
        if COST {
            let (xd, md) = (f64::from(x), f64::from(m));
            xd * ln(xd / md) - xd + md
        } else {
            0.0
        }
    };
    for (xc, mc) in xs.iter().zip(ms.iter_mut()) {
        for j in 0..LANES {
            acc[j] += element(xc[j], &mut mc[j]);
        }
    }
    for (&x, m) in x_tail.iter().zip(m_tail.iter_mut()) {
        acc[0] += element(x, m);
    }
    acc.iter().sum()
}

/// The Itakura–Saito cost `Σ r − ln r − 1`, `r = x / Λ`, from the data `x` and the model's
/// reciprocals `inv` as the tiled kernels leave them (the model is not kept), in `f64`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn itakura_saito_cost_of_inverse(x: &[f32], inv: &[f32]) -> f64 {
    sum_of_pairs(x, inv, |x, inv| {
        // Positive: the data are floored, and so is the model (its reciprocal is finite).
        let r = (f64::from(x) * f64::from(inv)).max(f64::MIN_POSITIVE);
        r - ln(r) - 1.0
    })
}

/// The Kullback–Leibler cost `Σ x ln r − x + Λ`, `r = x / Λ`, from the data `x` and the
/// ratios `x / Λ` the tiled kernels leave (the model is not kept), in `f64`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn kullback_leibler_cost_of_ratio(x: &[f32], ratio: &[f32]) -> f64 {
    sum_of_pairs(x, ratio, |x, ratio| {
        // Positive, as above.
        let (xd, r) = (f64::from(x), f64::from(ratio).max(f64::MIN_POSITIVE));
        xd * ln(r) - xd + xd / r
    })
}

/// The divergence of one entry, in `f64`, with the model floored as the updates floor it.
pub(crate) fn entry_divergence(div: Divergence, x: f32, model: f32) -> f64 {
    let (x, m) = (f64::from(x), f64::from(model.max(MODEL_FLOOR)));
    match div {
        Divergence::ItakuraSaito => x / m - ln(x / m) - 1.0,
        Divergence::KullbackLeibler => x * ln(x / m) - x + m,
        Divergence::Euclidean => 0.5 * (x - m) * (x - m),
        Divergence::Beta(b) => {
            let b = f64::from(b);
            (x.powf(b) + (b - 1.0) * m.powf(b) - b * x * m.powf(b - 1.0)) / (b * (b - 1.0))
        }
    }
}

/// `Σ n_f d(x_f | Λ_f)` over one frame, a weight per bin (bands summing several bins): the
/// divergence of [`entry_divergence`] for Itakura–Saito and Kullback–Leibler,
/// in [`LANES`] partial sums so that it vectorises; other losses term by term.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn weighted_cost(div: Divergence, x: &[f32], model: &[f32], weights: &[f32]) -> f64 {
    match div {
        Divergence::ItakuraSaito => {
            weighted_terms(x, model, weights, |x, m| x / m - ln(x / m) - 1.0)
        }
        Divergence::KullbackLeibler => {
            weighted_terms(x, model, weights, |x, m| x * ln(x / m) - x + m)
        }
        other => (x.iter().zip(model).zip(weights))
            .map(|((&x, &m), &w)| f64::from(w) * entry_divergence(other, x, m))
            .sum(),
    }
}

/// `Σ w · element(x, max(m, floor))` over three slices as long as `x`, in `f64`, in [`LANES`]
/// partial sums side by side.
#[inline(always)]
fn weighted_terms(
    x: &[f32],
    model: &[f32],
    weights: &[f32],
    element: impl Fn(f64, f64) -> f64,
) -> f64 {
    let n = x.len();
    let mut acc = [0f64; LANES];
    let (xs, x_tail) = x.as_chunks::<LANES>();
    let (ms, m_tail) = model[..n].as_chunks::<LANES>();
    let (ws, w_tail) = weights[..n].as_chunks::<LANES>();
    let term = |x: f32, m: f32, w: f32| {
        f64::from(w) * element(f64::from(x), f64::from(m.max(MODEL_FLOOR)))
    };
    for ((xc, mc), wc) in xs.iter().zip(ms).zip(ws) {
        for j in 0..LANES {
            acc[j] += term(xc[j], mc[j], wc[j]);
        }
    }
    for ((&x, &m), &w) in x_tail.iter().zip(m_tail).zip(w_tail) {
        acc[0] += term(x, m, w);
    }
    acc.iter().sum()
}

/// `Σ element(x[i], y[i])` over two equally long slices (`y` may be longer), in [`LANES`]
/// partial sums side by side (the order fixed by the length, so that it vectorises).
#[inline(always)]
fn sum_of_pairs(x: &[f32], y: &[f32], element: impl Fn(f32, f32) -> f64) -> f64 {
    let n = x.len();
    let mut acc = [0f64; LANES];
    let (xs, x_tail) = x.as_chunks::<LANES>();
    let (ys, y_tail) = y[..n].as_chunks::<LANES>();
    for (xc, yc) in xs.iter().zip(ys) {
        for j in 0..LANES {
            acc[j] += element(xc[j], yc[j]);
        }
    }
    for (&x, &y) in x_tail.iter().zip(y_tail) {
        acc[0] += element(x, y);
    }
    acc.iter().sum()
}

/// Half the squared Euclidean distance between `x` and the floored `model`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn euclidean_cost(x: &[f32], model: &[f32]) -> f64 {
    let n = x.len();
    let mut acc = [0f64; LANES];
    let (xs, x_tail) = x.as_chunks::<LANES>();
    let (ms, m_tail) = model[..n].as_chunks::<LANES>();
    let element = |x: f32, m: f32| {
        let d = f64::from(x) - f64::from(m.max(MODEL_FLOOR));
        0.5 * d * d
    };
    for (xc, mc) in xs.iter().zip(ms) {
        for j in 0..LANES {
            acc[j] += element(xc[j], mc[j]);
        }
    }
    for (&x, &m) in x_tail.iter().zip(m_tail) {
        acc[0] += element(x, m);
    }
    acc.iter().sum()
}

/// Any other β: floors `model`, returns the cost if `COST`, then leaves `Λ^(β-1)` in `model`
/// and `X Λ^(β-2)` in `ratio`. Powers are [`pow`] in `f64`, so that they vectorise.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn beta<const COST: bool>(
    x: &[f32],
    model: &mut [f32],
    ratio: &mut [f32],
    beta: f32,
) -> f64 {
    let b = f64::from(beta);
    for_each_lane(x, model, ratio, |x, model, ratio| {
        // Floored, and finite so that its logarithm is.
        let m = model.clamp(MODEL_FLOOR, f32::MAX);
        let (xd, md) = (f64::from(x), f64::from(m));
        let p = pow(md, b - 2.0);
        *ratio = (xd * p) as f32;
        *model = (md * p) as f32;
        if COST {
            // m^β and m^(β-1) from the same power; x is positive (the data are floored).
            let m_b = p * md * md;
            (pow(xd, b) + (b - 1.0) * m_b - b * xd * (p * md)) / (b * (b - 1.0))
        } else {
            0.0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_polynomial_logarithm_matches_the_library_one() {
        let mut worst = 0f64;
        let mut x = 1e-30f64;
        while x < 1e30 {
            for y in [
                x,
                x * 1.000_001,
                x * 1.37,
                x * std::f64::consts::SQRT_2 * (1.0 - 1e-12),
                x * std::f64::consts::SQRT_2 * (1.0 + 1e-12),
                x * 1.9,
            ] {
                let err = (ln(y) - y.ln()).abs() / y.ln().abs().max(1e-300);
                worst = worst.max(if y.ln() == 0.0 { ln(y).abs() } else { err });
            }
            x *= 3.7;
        }
        assert!(worst < 1e-14, "worst relative error {worst:e}");
        // Near 1, where the Itakura–Saito term r - ln r - 1 cancels, the absolute error matters.
        for r in [1.0, 1.0 + 1e-9, 1.0 - 1e-9, 1.001, 0.999] {
            assert!((ln(r) - r.ln()).abs() < 1e-16, "{r}");
        }
    }

    #[test]
    fn the_polynomial_exponential_and_power_match_the_library_ones() {
        let mut worst = 0f64;
        let mut y = -700.0;
        while y <= 700.0 {
            worst = worst.max((exp(y) - y.exp()).abs() / y.exp());
            y += 0.37;
        }
        assert!(worst < 1e-14, "exp: worst relative error {worst:e}");
        let mut worst = 0f64;
        for a in [1e-12, 3e-7, 0.01, 0.5, 1.0, 1.7, 42.0, 1e6, 3e12] {
            for b in [-3.5, -1.0, -0.5, 0.3, 0.5, 1.5, 2.5, 3.0] {
                worst = worst.max((pow(a, b) - a.powf(b)).abs() / a.powf(b));
            }
        }
        assert!(worst < 1e-13, "pow: worst relative error {worst:e}");
    }

    #[test]
    fn fused_kernels_agree_with_the_plain_formulas() {
        let x: Vec<f32> = (0..1000)
            .map(|i| 0.01 + (i as f32 * 0.37).sin().abs())
            .collect();
        let model0: Vec<f32> = (0..1000)
            .map(|i| 0.02 + (i as f32 * 0.11).cos().abs())
            .collect();

        let (mut m, mut r) = (model0.clone(), vec![0.0; 1000]);
        let cost = itakura_saito::<true>(&x, &mut m, &mut r);
        let expected: f64 = x
            .iter()
            .zip(&model0)
            .map(|(&a, &b)| {
                let q = f64::from(a) / f64::from(b);
                q - q.ln() - 1.0
            })
            .sum();
        assert!((cost - expected).abs() < 1e-9 * expected);
        assert!((m[7] - 1.0 / model0[7]).abs() < 1e-6 * m[7]);
        assert!((r[7] - x[7] / model0[7].powi(2)).abs() < 1e-5 * r[7]);

        let mut m = model0.clone();
        let cost = kullback_leibler::<true>(&x, &mut m);
        let expected: f64 = x
            .iter()
            .zip(&model0)
            .map(|(&a, &b)| {
                let (a, b) = (f64::from(a), f64::from(b));
                a * (a / b).ln() - a + b
            })
            .sum();
        assert!((cost - expected).abs() < 1e-9 * expected);
        assert!((m[3] - x[3] / model0[3]).abs() < 1e-6 * m[3]);

        let (mut m, mut r) = (model0.clone(), vec![0.0; 1000]);
        let cost = beta::<true>(&x, &mut m, &mut r, 0.5);
        let expected: f64 = x
            .iter()
            .zip(&model0)
            .map(|(&a, &m)| {
                let (a, m, b) = (f64::from(a), f64::from(m), 0.5);
                (a.powf(b) + (b - 1.0) * m.powf(b) - b * a * m.powf(b - 1.0)) / (b * (b - 1.0))
            })
            .sum();
        assert!(
            (cost - expected).abs() < 1e-9 * expected,
            "{cost} vs {expected}"
        );
        for i in [5, 500, 999] {
            assert!((r[i] - x[i] * model0[i].powf(-1.5)).abs() < 1e-6 * r[i]);
            assert!((m[i] - model0[i].powf(-0.5)).abs() < 1e-6 * m[i]);
        }
    }
}
