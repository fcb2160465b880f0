//! The dense linear algebra the NMF needs: a GEMM wrapper, tall-matrix products split into
//! row blocks for rayon, Gram–Schmidt, and a Jacobi eigensolver for small symmetric matrices.
//!
//! Every parallel product here splits its work at fixed row boundaries and sums partial results
//! in a fixed order, so results are bit-identical whatever the number of threads.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Rows of the tall operand per parallel task.
pub(crate) const ROW_BLOCK: usize = 256;

/// `c = alpha * a · b + beta * c` for any strides, single-threaded (callers parallelise over
/// blocks). faer's kernels measured fastest for the block shapes of the NMF (see
/// `benches/gemm.rs`).
pub(crate) fn gemm(
    alpha: f32,
    a: &ArrayView2<f32>,
    b: &ArrayView2<f32>,
    beta: f32,
    c: &mut ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k);
    assert_eq!(c.dim(), (m, n));
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the views are built from ndarray views of exactly these shapes and strides, so
    // every index faer touches is inside the arrays; `c` is borrowed mutably and cannot alias
    // `a` or `b`.
    unsafe {
        let a =
            faer::MatRef::<f32>::from_raw_parts(a.as_ptr(), m, k, a.strides()[0], a.strides()[1]);
        let b =
            faer::MatRef::<f32>::from_raw_parts(b.as_ptr(), k, n, b.strides()[0], b.strides()[1]);
        let c_strides = (c.strides()[0], c.strides()[1]);
        let c =
            faer::MatMut::<f32>::from_raw_parts_mut(c.as_mut_ptr(), m, n, c_strides.0, c_strides.1);
        let accum = if beta == 0.0 {
            faer::Accum::Replace
        } else {
            assert_eq!(beta, 1.0, "only beta 0 or 1");
            faer::Accum::Add
        };
        faer::linalg::matmul::matmul(c, accum, a, b, alpha, faer::Par::Seq);
    }
}

/// `x · q` for a tall `x` (rows split into blocks computed in parallel).
pub(crate) fn tall_times(x: ArrayView2<f32>, q: ArrayView2<f32>) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((x.nrows(), q.ncols()));
    out.axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
        .into_par_iter()
        .zip(x.axis_chunks_iter(Axis(0), ROW_BLOCK).into_par_iter())
        .for_each(|(mut o, xb)| gemm(1.0, &xb, &q, 0.0, &mut o));
    out
}

/// `xᵀ · y` for tall `x` and `y` with the same rows: partial products of row blocks in
/// parallel, summed in block order in `f64`.
pub(crate) fn tall_t_times(x: ArrayView2<f32>, y: ArrayView2<f32>) -> Array2<f64> {
    assert_eq!(x.nrows(), y.nrows());
    let partials: Vec<Array2<f32>> = x
        .axis_chunks_iter(Axis(0), ROW_BLOCK)
        .into_par_iter()
        .zip(y.axis_chunks_iter(Axis(0), ROW_BLOCK).into_par_iter())
        .map(|(xb, yb)| {
            let mut p = Array2::<f32>::zeros((xb.ncols(), yb.ncols()));
            gemm(1.0, &xb.t(), &yb, 0.0, &mut p.view_mut());
            p
        })
        .collect();
    let mut sum = Array2::<f64>::zeros((x.ncols(), y.ncols()));
    for p in &partials {
        sum.zip_mut_with(p, |s, &v| *s += f64::from(v));
    }
    sum
}

/// Makes the columns of `q` orthonormal (modified Gram–Schmidt, applied twice for accuracy).
/// A column that is (numerically) dependent on the previous ones becomes zero.
pub(crate) fn orthonormalize(q: &mut Array2<f64>) {
    for _ in 0..2 {
        for j in 0..q.ncols() {
            for i in 0..j {
                let dot = q.column(i).dot(&q.column(j));
                let qi = q.column(i).to_owned();
                q.column_mut(j).scaled_add(-dot, &qi);
            }
            let norm = q.column(j).dot(&q.column(j)).sqrt();
            let inv = if norm > 1e-300 { 1.0 / norm } else { 0.0 };
            q.column_mut(j).mapv_inplace(|v| v * inv);
        }
    }
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations: eigenvalues in
/// decreasing order and the matching eigenvectors as columns.
pub(crate) fn symmetric_eigen(a: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
    let n = a.nrows();
    let mut a = a.clone();
    let mut v = Array2::<f64>::eye(n);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[[i, j]] * a[[i, j]])
            .sum();
        let total: f64 = a.iter().map(|x| x * x).sum();
        if off <= 1e-30 * total.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[[p, q]];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[[j, j]].total_cmp(&a[[i, i]]));
    let values = Array1::from_iter(order.iter().map(|&i| a[[i, i]]));
    let vectors = v.select(Axis(1), &order);
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_product_over_no_columns_is_zero_or_leaves_c_alone() {
        // The models of a source with no components are such a product (separate's render).
        let (a, b) = (Array2::<f32>::zeros((3, 0)), Array2::<f32>::zeros((0, 4)));
        let mut c = Array2::from_elem((3, 4), 7.0f32);
        gemm(1.0, &a.view(), &b.view(), 1.0, &mut c.view_mut());
        assert!(c.iter().all(|&v| v == 7.0));
        gemm(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut());
        assert!(c.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn jacobi_finds_the_eigenpairs_of_a_known_matrix() {
        // Eigenvalues 6, 3, 1 with known eigenvectors.
        let a = array![[2.0, 1.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]];
        let (values, vectors) = symmetric_eigen(&a);
        for j in 0..3 {
            let v = vectors.column(j);
            let av = a.dot(&v);
            for i in 0..3 {
                assert!((av[i] - values[j] * v[i]).abs() < 1e-12);
            }
        }
        assert!(values[0] >= values[1] && values[1] >= values[2]);
        assert!((values.sum() - 8.0).abs() < 1e-12);
    }

    #[test]
    fn gram_schmidt_gives_orthonormal_columns() {
        let mut q = array![
            [1.0, 1.0, 0.0],
            [1.0, 0.0, 1.0],
            [0.0, 1.0, 1.0],
            [1.0, 1.0, 1.0]
        ];
        orthonormalize(&mut q);
        let gram = q.t().dot(&q);
        for i in 0..3 {
            for j in 0..3 {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((gram[[i, j]] - expected).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn tall_products_match_plain_products() {
        let x = Array2::from_shape_fn((1000, 7), |(i, j)| ((i * 7 + j) % 13) as f32 * 0.1);
        let q = Array2::from_shape_fn((7, 3), |(i, j)| (i + 2 * j) as f32 * 0.2);
        let y = tall_times(x.view(), q.view());
        let expected = x.dot(&q);
        assert!(y.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-4));
        let g = tall_t_times(x.view(), y.view());
        let expected = x.t().dot(&y);
        assert!(
            g.iter()
                .zip(&expected)
                .all(|(a, b)| (a - f64::from(*b)).abs() < 1e-2)
        );
    }
}
