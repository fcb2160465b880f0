//! The stability of a rank's templates across starts: columns matched one to one by the
//! Hungarian algorithm on their cosine similarities.

use ndarray::Array2;

/// The mean cosine similarity of the columns of `a` and `b` (same shape) matched one to one
/// so that the sum of similarities is largest.
pub(crate) fn matched_similarity(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    let k = a.ncols();
    let unit = |m: &Array2<f32>| {
        let mut m = m.mapv(f64::from);
        for mut c in m.columns_mut() {
            let n = c.dot(&c).sqrt();
            if n > 0.0 {
                c.mapv_inplace(|v| v / n);
            }
        }
        m
    };
    let (ua, ub) = (unit(a), unit(b));
    let sim = ua.t().dot(&ub);
    let assignment = hungarian(&sim.mapv(|s| 1.0 - s));
    (0..k).map(|i| sim[[i, assignment[i]]]).sum::<f64>() / k.max(1) as f64
}

/// The assignment of rows to columns of the square `cost` with the smallest total (Kuhn and
/// Munkres; the O(n³) form with potentials). Returns the column of each row.
pub(crate) fn hungarian(cost: &Array2<f64>) -> Vec<usize> {
    let n = cost.nrows();
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[[i0 - 1, j - 1]] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0; n];
    for j in 1..=n {
        if p[j] > 0 {
            assignment[p[j] - 1] = j - 1;
        }
    }
    assignment
}
