//! The weighted β-divergence NMF the rank selection runs: multiplicative updates of
//! `Σ m_tf d_β(x_tf | [G Wᵀ]_tf)` with weights `m` of 1 (fitted) or 0 (held out), and, for
//! automatic relevance determination, the ℓ1 relevance penalty of Tan & Févotte (2013).
//!
//! The weights enter the updates as they enter the cost: each term of the numerator and the
//! denominator of the usual majorisation–minimisation step (Févotte & Idier 2011) is
//! multiplied by its weight, which keeps the property that the cost never rises (the auxiliary
//! function is the weighted sum of the per-entry ones). A plain implementation on purpose:
//! faer's products, single-threaded, and one element-wise pass per half-iteration, so that the
//! rank sweep can run its starts on separate threads with results that do not depend on how
//! many there are. `tests` checks it against a triple-loop reference.

use ndarray::{Array1, Array2, ArrayView2, Zip};

use super::divergence::{Divergence, MODEL_FLOOR, flushed, step};
use super::kernels::entry_divergence;
use super::linalg::gemm;

/// The ℓ1 automatic relevance determination prior of Tan & Févotte (2013), on data scaled to
/// mean 1 with dispersion φ = 1: the objective adds `Σ_k (|w_k|₁ + |h_k|₁ + b) / λ_k + c ln λ_k`
/// and the relevances `λ_k` are updated in closed form after each iteration.
#[derive(Debug, Clone)]
pub(crate) struct Ard {
    /// The scale `b` of the inverse-gamma prior on the relevances.
    pub(crate) b: f64,
    /// `c = F + T + a + 1`.
    pub(crate) c: f64,
    /// The relevance of each component.
    pub(crate) relevance: Array1<f64>,
}

impl Ard {
    /// The prior of shape `a` for `k` components of data `x` (frames × bins) of mean `mean`,
    /// with the scale Tan & Févotte give for the ℓ1 prior: `b = sqrt((a-1)(a-2) mean / K)`.
    pub(crate) fn new(a: f64, x: ArrayView2<f32>, k: usize, mean: f64) -> Ard {
        let (frames, bins) = x.dim();
        let b = ((a - 1.0) * (a - 2.0) * mean / k as f64).sqrt();
        Ard {
            b,
            c: (bins + frames) as f64 + a + 1.0,
            relevance: Array1::zeros(k),
        }
    }

    /// The relevances' lower bound `b / c`, which a pruned component's relevance approaches.
    pub(crate) fn bound(&self) -> f64 {
        self.b / self.c
    }

    /// Sets each relevance to its minimiser `(|w_k|₁ + |h_k|₁ + b) / c`.
    pub(crate) fn update(&mut self, w: &Array2<f32>, g: &Array2<f32>) {
        for k in 0..self.relevance.len() {
            self.relevance[k] = (l1(w.column(k)) + l1(g.column(k)) + self.b) / self.c;
        }
    }

    /// The prior's part of the objective.
    #[cfg(test)]
    fn penalty(&self, w: &Array2<f32>, g: &Array2<f32>) -> f64 {
        (0..self.relevance.len())
            .map(|k| {
                let l = self.relevance[k];
                (l1(w.column(k)) + l1(g.column(k)) + self.b) / l + self.c * l.ln()
            })
            .sum()
    }
}

fn slice(a: &Array2<f32>) -> &[f32] {
    a.as_slice().expect("standard layout")
}

fn l1(v: ndarray::ArrayView1<f32>) -> f64 {
    v.iter().map(|&a| f64::from(a)).sum()
}

/// The costs of a model: on the fitted entries and on the held-out ones, in units of the
/// scaled data.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Costs {
    /// `Σ m d(x | λ)`.
    pub(crate) fitted: f64,
    /// `Σ (1 − m) d(x | λ)`.
    pub(crate) held_out: f64,
}

/// The buffers of a weighted fit of `X ≈ G Wᵀ` (X frames × bins, W bins × K, G frames × K),
/// reused across iterations and across ranks.
pub(crate) struct Masked<'a> {
    x: ArrayView2<'a, f32>,
    /// 1 for a fitted entry, 0 for a held-out one; `None`: every entry fitted.
    mask: Option<ArrayView2<'a, f32>>,
    div: Divergence,
    gamma: f32,
    /// The model, then the numerator's weighted terms.
    a: Array2<f32>,
    /// The denominator's weighted terms (unused for Kullback–Leibler, whose are the weights).
    b: Array2<f32>,
    /// The flat indices (frame × bins + bin) of the held-out entries.
    held: Vec<u32>,
    /// The numerator and denominator of W's update (bins × K), then of G's (frames × K):
    /// reallocated only when K changes.
    w_terms: [Array2<f32>; 2],
    g_terms: [Array2<f32>; 2],
}

impl<'a> Masked<'a> {
    /// A fit of `x` (frames × bins, scaled and floored) with these weights.
    pub(crate) fn new(
        x: ArrayView2<'a, f32>,
        mask: Option<ArrayView2<'a, f32>>,
        div: Divergence,
    ) -> Masked<'a> {
        let needs_b = div != Divergence::KullbackLeibler;
        let held = mask.map_or_else(Vec::new, |m| {
            let m = m.as_slice().expect("standard layout");
            (0..m.len())
                .filter(|&i| m[i] == 0.0)
                .map(|i| i as u32)
                .collect()
        });
        Masked {
            held,
            x,
            mask,
            div,
            gamma: div.gamma(),
            a: Array2::zeros(x.dim()),
            b: if needs_b {
                Array2::zeros(x.dim())
            } else {
                Array2::zeros((0, 0))
            },
            w_terms: Default::default(),
            g_terms: Default::default(),
        }
    }

    /// Fills the model `G Wᵀ` and the weighted update terms; returns the costs when asked.
    fn terms(&mut self, w: &Array2<f32>, g: &Array2<f32>, want_cost: bool) -> Option<Costs> {
        gemm(1.0, &g.view(), &w.t(), 0.0, &mut self.a.view_mut());
        let costs = want_cost.then(|| self.model_costs());
        match self.div {
            Divergence::KullbackLeibler => self.transform(|x, m| (x / m, 1.0)),
            Divergence::ItakuraSaito => self.transform(|x, m| {
                let inv = 1.0 / m;
                (x * inv * inv, inv)
            }),
            Divergence::Euclidean => self.transform(|x, m| (x, m)),
            Divergence::Beta(beta) => self.transform(move |x, m| {
                let p = m.powf(beta - 2.0);
                (x * p, m * p)
            }),
        }
        costs
    }

    /// The costs of the model in `a`.
    fn model_costs(&self) -> Costs {
        let (x, a) = (self.x.as_slice().expect("standard layout"), slice(&self.a));
        let div = self.div;
        // Branch-free sums (the weights are 0 or 1), so that the loop vectorises.
        let (mut fitted, mut all) = (0.0f64, 0.0f64);
        match self.mask.as_ref() {
            Some(mask) => {
                let mask = mask.as_slice().expect("standard layout");
                for ((&x, &m), &w) in x.iter().zip(a).zip(mask) {
                    let d = entry_divergence(div, x, m);
                    all += d;
                    fitted += f64::from(w) * d;
                }
            }
            None => {
                for (&x, &m) in x.iter().zip(a) {
                    all += entry_divergence(div, x, m);
                }
                fitted = all;
            }
        }
        Costs {
            fitted,
            held_out: (all - fitted).max(0.0),
        }
    }

    /// Replaces the model in `a` by the weighted numerator terms and fills `b` with the
    /// weighted denominator terms, `terms(x, floored model) = (num, den)` (`b` is not kept for
    /// Kullback–Leibler, whose denominator terms are the weights).
    fn transform(&mut self, terms: impl Fn(f32, f32) -> (f32, f32)) {
        let x = self.x.as_slice().expect("standard layout");
        let a = self.a.as_slice_mut().expect("standard layout");
        let keep_b = self.div != Divergence::KullbackLeibler;
        let b = self.b.as_slice_mut().expect("standard layout");
        match (self.mask.as_ref(), keep_b) {
            (Some(mask), true) => {
                let mask = mask.as_slice().expect("standard layout");
                for (((a, b), &x), &m) in a.iter_mut().zip(b.iter_mut()).zip(x).zip(mask) {
                    let (num, den) = terms(x, a.max(MODEL_FLOOR));
                    (*a, *b) = (m * num, m * den);
                }
            }
            (Some(mask), false) => {
                let mask = mask.as_slice().expect("standard layout");
                for ((a, &x), &m) in a.iter_mut().zip(x).zip(mask) {
                    *a = m * terms(x, a.max(MODEL_FLOOR)).0;
                }
            }
            (None, true) => {
                for ((a, b), &x) in a.iter_mut().zip(b.iter_mut()).zip(x) {
                    (*a, *b) = terms(x, a.max(MODEL_FLOOR));
                }
            }
            (None, false) => {
                for (a, &x) in a.iter_mut().zip(x) {
                    *a = terms(x, a.max(MODEL_FLOOR)).0;
                }
            }
        }
    }

    /// The costs of the current factors.
    pub(crate) fn costs(&mut self, w: &Array2<f32>, g: &Array2<f32>) -> Costs {
        self.terms(w, g, true).expect("asked for")
    }

    /// One iteration: W, then G, then (without ARD) the columns of W scaled to sum 1 with the
    /// scale moved into G, or (with ARD) the relevances. Returns the costs of the factors it
    /// started from when `want_cost`.
    pub(crate) fn step(
        &mut self,
        w: &mut Array2<f32>,
        g: &mut Array2<f32>,
        ard: Option<&mut Ard>,
        want_cost: bool,
    ) -> Option<Costs> {
        let k = w.ncols();
        // W ← W ⊙ ((Aᵀ G) / (Bᵀ G + φ/λ))^γ.
        let costs = self.terms(w, g, want_cost);
        let [mut num, mut den] =
            std::mem::take(&mut self.w_terms).map(|b| sized(b, (w.nrows(), k)));
        gemm(1.0, &self.a.t(), &g.view(), 0.0, &mut num.view_mut());
        self.products_t(g, &mut den);
        let penalty = ard
            .as_deref()
            .map(|a| a.relevance.mapv(|l| (1.0 / l) as f32));
        apply(w, &num, &den, penalty.as_ref(), self.gamma);
        self.w_terms = [num, den];
        // G ← G ⊙ ((A W) / (B W + φ/λ))^γ.
        self.terms(w, g, false);
        let [mut num, mut den] =
            std::mem::take(&mut self.g_terms).map(|b| sized(b, (g.nrows(), k)));
        gemm(1.0, &self.a.view(), &w.view(), 0.0, &mut num.view_mut());
        self.products(w, &mut den);
        apply(g, &num, &den, penalty.as_ref(), self.gamma);
        self.g_terms = [num, den];
        match ard {
            Some(ard) => ard.update(w, g),
            None => normalize(w, g),
        }
        costs
    }

    /// `Bᵀ G` (bins × K) into `den`. For Kullback–Leibler, whose terms are the weights: the
    /// column sums of G less the rows of G at each bin's held-out entries (few), not a product.
    fn products_t(&self, g: &Array2<f32>, den: &mut Array2<f32>) {
        let bins = self.x.ncols();
        if self.div != Divergence::KullbackLeibler {
            gemm(1.0, &self.b.t(), &g.view(), 0.0, &mut den.view_mut());
            return;
        }
        let sums = g.sum_axis(ndarray::Axis(0));
        den.rows_mut().into_iter().for_each(|mut r| r.assign(&sums));
        for &i in &self.held {
            let (t, f) = (i as usize / bins, i as usize % bins);
            den.row_mut(f).zip_mut_with(&g.row(t), |d, &v| *d -= v);
        }
    }

    /// `B W` (frames × K) into `den`, for Kullback–Leibler as [`Self::products_t`] does.
    fn products(&self, w: &Array2<f32>, den: &mut Array2<f32>) {
        let bins = self.x.ncols();
        if self.div != Divergence::KullbackLeibler {
            gemm(1.0, &self.b.view(), &w.view(), 0.0, &mut den.view_mut());
            return;
        }
        let sums = w.sum_axis(ndarray::Axis(0));
        den.rows_mut().into_iter().for_each(|mut r| r.assign(&sums));
        for &i in &self.held {
            let (t, f) = (i as usize / bins, i as usize % bins);
            den.row_mut(t).zip_mut_with(&w.row(f), |d, &v| *d -= v);
        }
    }

    /// The objective: the weighted divergence plus the ARD prior's terms.
    #[cfg(test)]
    pub(crate) fn objective(&mut self, w: &Array2<f32>, g: &Array2<f32>, ard: &Ard) -> f64 {
        self.costs(w, g).fitted + ard.penalty(w, g)
    }
}

/// `f ← f ⊙ (num / (den + penalty_k))^γ`, element by element.
fn apply(
    f: &mut Array2<f32>,
    num: &Array2<f32>,
    den: &Array2<f32>,
    penalty: Option<&Array1<f32>>,
    gamma: f32,
) {
    Zip::indexed(f)
        .and(num)
        .and(den)
        .for_each(|(_, k), f, &n, &d| {
            let d = d + penalty.map_or(0.0, |p| p[k]);
            *f = flushed(*f * step(f64::from(n), f64::from(d), gamma));
        });
}

/// `buffer` if it has this shape, else a new one (every caller overwrites all of it).
fn sized(buffer: Array2<f32>, shape: (usize, usize)) -> Array2<f32> {
    if buffer.dim() == shape {
        buffer
    } else {
        Array2::zeros(shape)
    }
}

/// Scales each column of `w` to sum 1 and the same column of `g` by the inverse.
fn normalize(w: &mut Array2<f32>, g: &mut Array2<f32>) {
    for k in 0..w.ncols() {
        let s = l1(w.column(k));
        if s > 0.0 && s.is_finite() {
            w.column_mut(k).mapv_inplace(|a| (f64::from(a) / s) as f32);
            g.column_mut(k).mapv_inplace(|a| (f64::from(a) * s) as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nmf::rng::Rng;

    /// The weighted update of W, then of G, by triple loops in `f64`.
    fn reference_step(
        x: &Array2<f32>,
        m: &Array2<f32>,
        w: &mut Array2<f64>,
        g: &mut Array2<f64>,
        beta: f64,
    ) {
        let gamma = f64::from(Divergence::new(beta as f32).gamma());
        let (t_n, f_n, k_n) = (x.nrows(), x.ncols(), w.ncols());
        let model = |w: &Array2<f64>, g: &Array2<f64>, t: usize, f: usize| {
            (0..k_n)
                .map(|k| g[[t, k]] * w[[f, k]])
                .sum::<f64>()
                .max(f64::from(MODEL_FLOOR))
        };
        let mut new_w = w.clone();
        for f in 0..f_n {
            for k in 0..k_n {
                let (mut num, mut den) = (0.0, 0.0);
                for t in 0..t_n {
                    let l = model(w, g, t, f);
                    let wt = f64::from(m[[t, f]]);
                    num += wt * f64::from(x[[t, f]]) * l.powf(beta - 2.0) * g[[t, k]];
                    den += wt * l.powf(beta - 1.0) * g[[t, k]];
                }
                new_w[[f, k]] *= (num / den).powf(gamma);
            }
        }
        *w = new_w;
        let mut new_g = g.clone();
        for t in 0..t_n {
            for k in 0..k_n {
                let (mut num, mut den) = (0.0, 0.0);
                for f in 0..f_n {
                    let l = model(w, g, t, f);
                    let wt = f64::from(m[[t, f]]);
                    num += wt * f64::from(x[[t, f]]) * l.powf(beta - 2.0) * w[[f, k]];
                    den += wt * l.powf(beta - 1.0) * w[[f, k]];
                }
                new_g[[t, k]] *= (num / den).powf(gamma);
            }
        }
        *g = new_g;
        for k in 0..k_n {
            let s: f64 = w.column(k).sum();
            w.column_mut(k).mapv_inplace(|a| a / s);
            g.column_mut(k).mapv_inplace(|a| a * s);
        }
    }

    fn problem(seed: u64) -> (Array2<f32>, Array2<f32>, Array2<f32>, Array2<f32>) {
        let mut rng = Rng::new(seed);
        let (t, f, k) = (23, 17, 3);
        let x = Array2::from_shape_simple_fn((t, f), || (0.1 + rng.uniform()) as f32);
        let m = Array2::from_shape_simple_fn((t, f), || f32::from(rng.uniform() > 0.2));
        let w = Array2::from_shape_simple_fn((f, k), || (0.1 + rng.uniform()) as f32);
        let g = Array2::from_shape_simple_fn((t, k), || (0.1 + rng.uniform()) as f32);
        (x, m, w, g)
    }

    #[test]
    fn weighted_updates_match_a_triple_loop_reference() {
        for (seed, beta) in [
            (1, 0.0f32),
            (2, 0.5),
            (3, 1.0),
            (4, 1.5),
            (5, 2.0),
            (6, 3.0),
        ] {
            let (x, m, mut w, mut g) = problem(seed);
            let (mut rw, mut rg) = (w.mapv(f64::from), g.mapv(f64::from));
            let mut fit = Masked::new(x.view(), Some(m.view()), Divergence::new(beta));
            for _ in 0..5 {
                fit.step(&mut w, &mut g, None, false);
                reference_step(&x, &m, &mut rw, &mut rg, f64::from(beta));
            }
            let err = w
                .iter()
                .zip(&rw)
                .chain(g.iter().zip(&rg))
                .map(|(&a, &b)| (f64::from(a) - b).abs() / b.abs().max(1e-3))
                .fold(0.0, f64::max);
            assert!(err < 1e-3, "β = {beta}: relative error {err}");
        }
    }

    #[test]
    fn the_weighted_cost_never_rises_and_factors_stay_non_negative() {
        for (seed, beta) in [(7, 0.0f32), (8, 1.0), (9, 2.0), (10, 0.5), (11, 2.5)] {
            let (x, m, mut w, mut g) = problem(seed);
            let mut fit = Masked::new(x.view(), Some(m.view()), Divergence::new(beta));
            let mut last = f64::INFINITY;
            for _ in 0..60 {
                let c = fit.step(&mut w, &mut g, None, true).expect("asked");
                assert!(
                    c.fitted <= last * (1.0 + 1e-6),
                    "β = {beta}: {} > {last}",
                    c.fitted
                );
                last = c.fitted;
            }
            assert!(w.iter().chain(g.iter()).all(|&a| a >= 0.0 && a.is_finite()));
        }
    }

    #[test]
    fn held_out_entries_do_not_move_the_fit() {
        // Changing the data where the weight is 0 changes nothing but the held-out cost.
        let (x, m, w0, g0) = problem(12);
        let mut y = x.clone();
        Zip::from(&mut y).and(&m).for_each(|y, &m| {
            if m == 0.0 {
                *y *= 10.0;
            }
        });
        let run = |data: &Array2<f32>| {
            let (mut w, mut g) = (w0.clone(), g0.clone());
            let mut fit = Masked::new(data.view(), Some(m.view()), Divergence::KullbackLeibler);
            for _ in 0..10 {
                fit.step(&mut w, &mut g, None, false);
            }
            (w, g, fit.costs(&w0, &g0))
        };
        let (wa, ga, ca) = run(&x);
        let (wb, gb, cb) = run(&y);
        assert_eq!((wa, ga), (wb, gb));
        assert_eq!(ca.fitted, cb.fitted);
        assert!(cb.held_out > ca.held_out);
    }

    #[test]
    fn the_ard_objective_never_rises() {
        for beta in [0.0f32, 1.0, 2.0] {
            let (x, _, mut w, mut g) = problem(13);
            let mean = x.iter().map(|&a| f64::from(a)).sum::<f64>() / x.len() as f64;
            let mut ard = Ard::new(5.0, x.view(), w.ncols(), mean);
            ard.update(&w, &g);
            let mut fit = Masked::new(x.view(), None, Divergence::new(beta));
            let mut last = fit.objective(&w, &g, &ard);
            for _ in 0..50 {
                fit.step(&mut w, &mut g, Some(&mut ard), false);
                let now = fit.objective(&w, &g, &ard);
                assert!(
                    now <= last + 1e-6 * last.abs(),
                    "β = {beta}: {now} > {last}"
                );
                last = now;
            }
        }
    }
}
