//! Sparsity and temporal-continuity penalties, with majorisation–minimisation steps that keep
//! the penalised cost from rising.
//!
//! The penalised objective, on the data scaled to mean 1, is
//!
//! ```text
//! J = D(V | W H) + λs Σ_k s_k Σ_t h_kt + λt Σ_k s_k² Σ_t (h_kt − h_k,t−1)²,   s_k = Σ_f w_fk
//! ```
//!
//! an L1 penalty on the activations and a quadratic penalty on their frame-to-frame change (as
//! Virtanen 2007 proposes). The factors `s_k` make J unchanged when a template is scaled and its
//! activations scaled back, so normalising W keeps J as it is.
//!
//! Each element's step minimises an auxiliary function: the usual one of the β-divergence
//! (Févotte & Idier 2011), plus the penalties majorised so that they separate: the smoothness
//! term by `(a − b)² ≤ 2(a − m)² + 2(b − m)²` with `m` the mean of the current values, and
//! `s_k²` (in the template step) by Jensen's inequality, `s² ≤ s̃ Σ_f w_f² / w̃_f`. The
//! auxiliary function of one element then has a derivative that grows strictly with the new
//! value, and its root is found in closed form or by a few Newton steps.

use ndarray::{Array1, Array2, ArrayView1, ArrayViewMut2, s};

use super::divergence::Divergence;

/// Weights of the penalties (0 turns one off).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Penalties {
    /// λs: weight of the activations' L1 norm.
    pub sparsity: f64,
    /// λt: weight of the squared frame-to-frame change of the activations.
    pub smoothness: f64,
}

impl Penalties {
    /// Whether any penalty is on.
    pub(crate) fn any(&self) -> bool {
        self.sparsity > 0.0 || self.smoothness > 0.0
    }

    /// The penalty terms of the objective for templates `w` (bins × components) and
    /// activations `g` (frames × components).
    pub(crate) fn value(&self, w: &Array2<f32>, g: &Array2<f32>) -> f64 {
        if !self.any() {
            return 0.0;
        }
        let Penalties {
            sparsity,
            smoothness,
        } = *self;
        let mut total = 0.0;
        for (k, w_col) in w.columns().into_iter().enumerate() {
            let s: f64 = w_col.iter().map(|&a| f64::from(a)).sum();
            let (l1, change) = activation_norms(g.column(k));
            total += sparsity * s * l1 + smoothness * s * s * change;
        }
        total
    }

    /// The template step with penalties for the columns of `w` from `fixed` on, from the
    /// plain update's numerators and denominators `(num, den)` (bins × free components): per
    /// element, the root of its auxiliary function's derivative (see [`step`]).
    pub(crate) fn apply_w_steps(
        &self,
        div: Divergence,
        (num, den): (&Array2<f64>, &Array2<f64>),
        fixed: usize,
        w: &mut Array2<f32>,
        g: &Array2<f32>,
    ) {
        let Penalties {
            sparsity,
            smoothness,
        } = *self;
        for (j, mut w_col) in w
            .slice_mut(s![.., fixed..])
            .columns_mut()
            .into_iter()
            .enumerate()
        {
            let (l1, change) = activation_norms(g.column(fixed + j));
            let s_old: f64 = w_col.iter().map(|&a| f64::from(a)).sum();
            let (c, a) = (sparsity * l1, 2.0 * smoothness * change * s_old);
            for (f, w) in w_col.iter_mut().enumerate() {
                let r = step(div, den[[f, j]], num[[f, j]], c, a);
                *w = super::divergence::flushed((f64::from(*w) * r) as f32);
            }
        }
    }

    /// The penalised activation steps of the block starting at frame `start`, from the update's
    /// numerators (`num`, overwritten with the steps) and denominators; `g` holds the
    /// activations before this pass (frames × components) and `w_sums` the templates' sums.
    pub(crate) fn h_steps(
        &self,
        div: Divergence,
        g: &Array2<f32>,
        start: usize,
        w_sums: &Array1<f32>,
        (num, den): (&mut ArrayViewMut2<f32>, &ArrayViewMut2<f32>),
    ) {
        let Penalties {
            sparsity,
            smoothness,
        } = *self;
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
                *n = step(div, f64::from(d), f64::from(*n), c, a) as f32;
            }
        }
    }
}

/// A component's activations' L1 norm and summed squared frame-to-frame change, the two
/// quantities the penalties weigh.
fn activation_norms(h: ArrayView1<f32>) -> (f64, f64) {
    let l1 = h.iter().map(|&a| f64::from(a)).sum();
    let change = h
        .iter()
        .zip(h.iter().skip(1))
        .map(|(&a, &b)| (f64::from(b) - f64::from(a)).powi(2))
        .sum();
    (l1, change)
}

/// The step `r = x_new / x_old` of one element that minimises its auxiliary function
///
/// ```text
/// ∂/∂x:  ∇D(r) + c + a·r = 0,   ∇D(r) = P r^e1 − Q r^e2
/// ```
///
/// with `(e1, e2)` = `(0, β−2)` for β < 1, `(β−1, β−2)` on [1, 2], `(β−1, 0)` above 2; `Q` and
/// `P` are the numerator and denominator of the plain multiplicative update, `a ≥ 0` and `c`
/// the penalties' linear and constant terms. The result is kept within [1e-6, 1e6] (a point
/// between the current value and the minimiser of a convex function still lowers it).
pub(crate) fn step(div: Divergence, p: f64, q: f64, c: f64, a: f64) -> f64 {
    const LO: f64 = 1e-6;
    const HI: f64 = 1e6;
    if q.is_nan() || q <= 0.0 {
        return LO;
    }
    let r = match div {
        // P − Q/r + c + a r = 0  ⇔  a r² + (P + c) r − Q = 0.
        Divergence::KullbackLeibler => {
            let b = p + c;
            if a > 0.0 {
                let root = (b * b + 4.0 * a * q).sqrt();
                if b >= 0.0 {
                    2.0 * q / (b + root)
                } else {
                    (root - b) / (2.0 * a)
                }
            } else if b > 0.0 {
                q / b
            } else {
                HI
            }
        }
        // P r − Q + c + a r = 0.
        Divergence::Euclidean => (q - c) / (p + a).max(1e-300),
        // P − Q/r² + c + a r = 0, by Newton's method.
        Divergence::ItakuraSaito => newton(|r| {
            let v = p - q / (r * r) + c + a * r;
            let d = 2.0 * q / (r * r * r) + a;
            (v, d)
        }),
        Divergence::Beta(beta) => {
            let b = f64::from(beta);
            let (e1, e2) = if b < 1.0 {
                (0.0, b - 2.0)
            } else if b <= 2.0 {
                (b - 1.0, b - 2.0)
            } else {
                (b - 1.0, 0.0)
            };
            newton(|r| {
                let v = p * r.powf(e1) - q * r.powf(e2) + c + a * r;
                let d = p * e1 * r.powf(e1 - 1.0) - q * e2 * r.powf(e2 - 1.0) + a;
                (v, d)
            })
        }
    };
    if r.is_nan() { 1.0 } else { r.clamp(LO, HI) }
}

/// The root of an increasing function on (0, ∞), given as value and derivative: Newton steps
/// in `ln r` from `r = 1`, kept inside a bracket that bisection shrinks when a step leaves it.
fn newton(f: impl Fn(f64) -> (f64, f64)) -> f64 {
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY); // bracket on ln r
    let mut u = 0.0f64; // ln r
    for _ in 0..60 {
        let r = u.exp();
        let (v, d) = f(r);
        if v == 0.0 {
            return r;
        }
        if v > 0.0 {
            hi = hi.min(u);
        } else {
            lo = lo.max(u);
        }
        // d/du f(e^u) = r f'(r).
        let mut next = u - v / (r * d).max(1e-300);
        if !(next > lo && next < hi) {
            next = match (lo.is_finite(), hi.is_finite()) {
                (true, true) => 0.5 * (lo + hi),
                (true, false) => lo + 2.0,
                (false, true) => hi - 2.0,
                _ => 0.0,
            };
        }
        if (next - u).abs() < 1e-10 {
            return next.exp();
        }
        u = next;
        if !(-14.0..=14.0).contains(&u) {
            break;
        }
    }
    u.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derivative of the auxiliary function at `r`, as `step` defines it.
    fn derivative(div: Divergence, p: f64, q: f64, c: f64, a: f64, r: f64) -> f64 {
        let b = match div {
            Divergence::ItakuraSaito => 0.0,
            Divergence::KullbackLeibler => 1.0,
            Divergence::Euclidean => 2.0,
            Divergence::Beta(b) => f64::from(b),
        };
        let (e1, e2) = if b < 1.0 {
            (0.0, b - 2.0)
        } else if b <= 2.0 {
            (b - 1.0, b - 2.0)
        } else {
            (b - 1.0, 0.0)
        };
        p * r.powf(e1) - q * r.powf(e2) + c + a * r
    }

    #[test]
    fn steps_are_roots_of_the_auxiliary_derivative() {
        for div in [
            Divergence::ItakuraSaito,
            Divergence::KullbackLeibler,
            Divergence::Euclidean,
            Divergence::Beta(0.5),
            Divergence::Beta(1.5),
            Divergence::Beta(3.0),
        ] {
            for &(p, q, c, a) in &[
                (1.0, 2.0, 0.0, 0.0),
                (1.0, 2.0, 0.3, 0.0),
                (0.5, 1.5, -0.2, 0.7),
                (2.0, 0.5, 0.1, 3.0),
                (1.0, 1.0, -0.5, 0.1),
            ] {
                let r = step(div, p, q, c, a);
                let g = derivative(div, p, q, c, a, r);
                let scale = p.abs() + q.abs() + c.abs() + a.abs() * r;
                // Either a root, or clamped where the root lies beyond the limits.
                assert!(
                    g.abs() < 1e-8 * scale || (r == 1e-6 && g > 0.0) || (r == 1e6 && g < 0.0),
                    "{div:?} p {p} q {q} c {c} a {a}: r {r}, derivative {g}"
                );
            }
        }
    }

    #[test]
    fn without_penalties_the_plain_update_comes_back() {
        assert!((step(Divergence::KullbackLeibler, 2.0, 3.0, 0.0, 0.0) - 1.5).abs() < 1e-12);
        assert!((step(Divergence::ItakuraSaito, 2.0, 8.0, 0.0, 0.0) - 2.0).abs() < 1e-9);
        assert!((step(Divergence::Euclidean, 2.0, 3.0, 0.0, 0.0) - 1.5).abs() < 1e-12);
    }
}
