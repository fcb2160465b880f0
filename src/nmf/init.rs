//! Initial factors: seeded random values, or NNDSVDA from a seeded randomized SVD.
//!
//! Both work on `X = Vᵀ` (frames × bins) and return W (bins × k) and `G = Hᵀ` (frames × k).

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::linalg::{orthonormalize, symmetric_eigen, tall_t_times, tall_times};
use super::rng::Rng;

/// `|N(0, 1)| · sqrt(mean(V) / k)` for every entry, as scikit-learn's `init="random"`.
pub(crate) fn random(x: ArrayView2<f32>, k: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let (frames, bins) = x.dim();
    let scale = (mean(x) / k as f64).sqrt();
    let mut rng = Rng::new(seed);
    let g = Array2::from_shape_simple_fn((frames, k), || (rng.normal().abs() * scale) as f32);
    let w = Array2::from_shape_simple_fn((bins, k), || (rng.normal().abs() * scale) as f32);
    (w, g)
}

/// NNDSVD (Boutsidis & Gallopoulos 2008) with zeros replaced by the mean of V ("nndsvda").
pub(crate) fn nndsvda(x: ArrayView2<f32>, k: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let (frames, bins) = x.dim();
    let (u, sigma, v) = randomized_svd(x, k, seed);
    let mut w = Array2::<f32>::zeros((bins, k));
    let mut g = Array2::<f32>::zeros((frames, k));
    for j in 0..k.min(sigma.len()) {
        let (uj, vj) = (u.column(j), v.column(j));
        let (col_w, col_g, s) = if j == 0 {
            // The leading singular vectors of a non-negative matrix have one sign.
            (uj.mapv(f64::abs), vj.mapv(f64::abs), sigma[0])
        } else {
            let pos = |a: f64| a.max(0.0);
            let neg = |a: f64| (-a).max(0.0);
            let (up, un) = (uj.mapv(pos), uj.mapv(neg));
            let (vp, vn) = (vj.mapv(pos), vj.mapv(neg));
            let norm = |a: &Array1<f64>| a.dot(a).sqrt();
            let (nup, nun, nvp, nvn) = (norm(&up), norm(&un), norm(&vp), norm(&vn));
            let (mp, mn) = (nup * nvp, nun * nvn);
            if mp >= mn && mp > 0.0 {
                (up / nup, vp / nvp, sigma[j] * mp)
            } else if mn > 0.0 {
                (un / nun, vn / nvn, sigma[j] * mn)
            } else {
                continue;
            }
        };
        let lambda = s.max(0.0).sqrt();
        w.column_mut(j).assign(&col_w.mapv(|a| (a * lambda) as f32));
        g.column_mut(j).assign(&col_g.mapv(|a| (a * lambda) as f32));
    }
    // Tiny values become zeros in NNDSVD; NNDSVDA fills every zero with the mean, since a zero
    // never changes under multiplicative updates.
    let fill = mean(x) as f32;
    let eps = 1e-6;
    w.mapv_inplace(|a| if a < eps { fill } else { a });
    g.mapv_inplace(|a| if a < eps { fill } else { a });
    (w, g)
}

fn mean(x: ArrayView2<f32>) -> f64 {
    x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len().max(1) as f64
}

/// The `k` leading singular triplets of `V = Xᵀ`: U (bins × k), σ, and the right singular
/// vectors as columns (frames × k). Subspace iteration from a seeded random start with 10 extra
/// directions, as in Halko, Martinsson & Tropp (2011) and scikit-learn's `randomized_svd`.
fn randomized_svd(
    x: ArrayView2<f32>,
    k: usize,
    seed: u64,
) -> (Array2<f64>, Array1<f64>, Array2<f64>) {
    let (frames, bins) = x.dim();
    let l = (k + 10).min(bins).min(frames);
    let power_iterations = if (k as f64) < 0.1 * bins.min(frames) as f64 {
        7
    } else {
        4
    };
    let mut rng = Rng::new(seed ^ 0x5EED_5EED);
    let mut q = Array2::from_shape_simple_fn((bins, l), || rng.normal());
    orthonormalize(&mut q);
    for _ in 0..power_iterations {
        // q ← orth(V Vᵀ q), with V Vᵀ q = Xᵀ (X q).
        let mut z = tall_times(x, q.mapv(|a| a as f32).view()).mapv(f64::from);
        orthonormalize(&mut z);
        q = tall_t_times(x, z.mapv(|a| a as f32).view());
        orthonormalize(&mut q);
    }
    // B = qᵀ V = (X q)ᵀ; the SVD of B from the eigenvectors of B Bᵀ = zᵀ z.
    let z = tall_times(x, q.mapv(|a| a as f32).view()).mapv(f64::from);
    let (eigenvalues, ub) = symmetric_eigen(&z.t().dot(&z));
    let k = k.min(l);
    let sigma = eigenvalues.mapv(|e| e.max(0.0).sqrt());
    let u = q.dot(&ub).select(Axis(1), &(0..k).collect::<Vec<_>>());
    let mut v = z.dot(&ub).select(Axis(1), &(0..k).collect::<Vec<_>>());
    for (j, mut col) in v.axis_iter_mut(Axis(1)).enumerate() {
        let s = sigma[j];
        col.mapv_inplace(|a| if s > 0.0 { a / s } else { 0.0 });
    }
    (u, sigma.slice(ndarray::s![..k]).to_owned(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn randomized_svd_recovers_an_exact_low_rank_matrix() {
        // X = A Bᵀ of rank 3; the top 3 singular values carry all of it.
        let mut rng = Rng::new(1);
        let a = Array2::from_shape_simple_fn((300, 3), || rng.uniform());
        let b = Array2::from_shape_simple_fn((40, 3), || rng.uniform());
        let x = a.dot(&b.t()).mapv(|v| v as f32);
        let (u, s, v) = randomized_svd(x.view(), 3, 0);
        let mut approx = Array2::<f64>::zeros((40, 300));
        for j in 0..3 {
            let uj = u.column(j).insert_axis(Axis(1));
            let vj = v.column(j).insert_axis(Axis(0));
            approx = approx + s[j] * uj.dot(&vj);
        }
        let err = approx
            .iter()
            .zip(x.t().iter())
            .map(|(a, &b)| (a - f64::from(b)).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn nndsvda_gives_positive_factors_of_the_right_shape() {
        let mut rng = Rng::new(3);
        let x = Array2::from_shape_simple_fn((50, 20), || rng.uniform() as f32);
        let (w, g) = nndsvda(x.view(), 4, 0);
        assert_eq!((w.dim(), g.dim()), ((20, 4), (50, 4)));
        assert!(w.iter().chain(g.iter()).all(|&v| v > 0.0 && v.is_finite()));
    }
}
