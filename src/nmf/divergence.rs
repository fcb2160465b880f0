//! The β-divergence in the form the updates use, and the numbers every update shares: the
//! model floor and the multiplicative step `(num / den)^γ`.
//!
//! A leaf of the NMF module: it imports nothing from it, so that the parameters, the kernels,
//! the penalties and the update passes can all use it without import circles.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

/// The model `W·H` is floored here (in units of the mean of V) before negative powers.
pub(crate) const MODEL_FLOOR: f32 = 1e-12;

/// Smallest denominator of an update ratio; a zero numerator over it stays zero.
const TINY: f64 = 1e-30;

/// The β-divergence, with its three named cases computed by their cheaper formulas. Built
/// once, when the parameters are checked (`Loss::check`), and carried from there to every
/// pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Divergence {
    /// β = 0.
    ItakuraSaito,
    /// β = 1.
    KullbackLeibler,
    /// β = 2.
    Euclidean,
    /// Any other β.
    Beta(f32),
}

impl Divergence {
    /// The divergence of `beta`, the three named values by their names.
    pub(crate) fn new(beta: f32) -> Divergence {
        match beta {
            0.0 => Divergence::ItakuraSaito,
            1.0 => Divergence::KullbackLeibler,
            2.0 => Divergence::Euclidean,
            b => Divergence::Beta(b),
        }
    }

    /// Its β.
    pub(crate) fn beta(self) -> f32 {
        match self {
            Divergence::ItakuraSaito => 0.0,
            Divergence::KullbackLeibler => 1.0,
            Divergence::Euclidean => 2.0,
            Divergence::Beta(b) => b,
        }
    }

    /// The exponent γ(β) of the majorisation–minimisation updates (Févotte & Idier 2011), which
    /// keeps the cost from rising: `1/(2-β)` below 1, 1 on [1, 2], `1/(β-1)` above 2.
    pub(crate) fn gamma(self) -> f32 {
        let b = self.beta();
        if b < 1.0 {
            1.0 / (2.0 - b)
        } else if b > 2.0 {
            1.0 / (b - 1.0)
        } else {
            1.0
        }
    }
}

/// The multiplicative factor `(num / den)^γ`.
pub(crate) fn step(num: f64, den: f64, gamma: f32) -> f32 {
    let r = num / den.max(TINY);
    if gamma == 1.0 {
        r as f32
    } else if gamma == 0.5 {
        r.sqrt() as f32
    } else if gamma == 0.75 {
        let root = r.sqrt();
        (root * root.sqrt()) as f32
    } else {
        r.powf(f64::from(gamma)) as f32
    }
}

/// `x`, or 0 when it is below the smallest normal `f32`: factors never hold subnormal
/// values, whose arithmetic costs processors tens of times a normal one's (activations that
/// multiplicative updates drive towards zero reach them; a value below 1e-38 of the data's
/// scale is 0 for every purpose, and stays 0 as zeros do under these updates).
#[inline(always)]
pub(crate) fn flushed(x: f32) -> f32 {
    if x < f32::MIN_POSITIVE { 0.0 } else { x }
}

/// Whether `x` may be an entry of the data or the factors: finite and at least 0.
#[inline(always)]
pub(crate) fn is_valid_entry(x: f32) -> bool {
    (0.0..f32::INFINITY).contains(&x)
}

/// [`step`] in `f32`, for the many activations. The exponents 1, 1/2, 3/4 and 3/2 take no
/// `powf`: 3/4 as `√r·√√r` and 3/2 as `r·√r` (within an ulp or two of `powf`, vectorised,
/// many times faster).
#[inline(always)]
pub(crate) fn step32(num: f32, den: f32, gamma: f32) -> f32 {
    let r = num / den.max(TINY as f32);
    if gamma == 1.0 {
        r
    } else if gamma == 0.5 {
        r.sqrt()
    } else if gamma == 0.75 {
        let root = r.sqrt();
        root * root.sqrt()
    } else if gamma == 1.5 {
        r * r.sqrt()
    } else {
        r.powf(gamma)
    }
}

/// The multiplicative H step `g ← g (num / den)^γ` of every element, flushed.
pub(crate) fn scale_by_step(
    g: ArrayViewMut2<f32>,
    (num, den): (ArrayView2<f32>, ArrayView2<f32>),
    gamma: f32,
) {
    Zip::from(g)
        .and(num)
        .and(den)
        .for_each(|g, &n, &d| *g = flushed(*g * step32(n, d, gamma)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_of_three_halves_and_three_quarters_are_the_power_to_an_ulp_or_two() {
        for gamma in [0.75f32, 1.5] {
            for i in 0..20_000 {
                // Ratios from 1e-6 to 1e6, as the updates meet them.
                let r = 10f64.powf(-6.0 + 12.0 * f64::from(i) / 20_000.0) as f32;
                let exact = f64::from(r).powf(f64::from(gamma));
                for got in [step32(r, 1.0, gamma), step(f64::from(r), 1.0, gamma)] {
                    let got = f64::from(got);
                    assert!(
                        (got - exact).abs() <= 2.5 * exact * f64::from(f32::EPSILON),
                        "{r}^{gamma}: {got} against {exact}"
                    );
                }
            }
        }
    }
}
