//! demix against an independent reference: scikit-learn's multiplicative-update NMF.
//!
//! `tests/data/sklearn_mu` holds a 24 × 300 matrix V, initial factors W0 (24 × 3) and H0
//! (3 × 300), and the W and H that `sklearn.decomposition.non_negative_factorization(...,
//! init="custom", solver="mu", tol=0)` reaches from them after 50 iterations in f64, for the
//! Itakura–Saito, Kullback–Leibler and Frobenius losses. `scripts/make_sklearn_fixture.py`
//! made it; these tests need no Python. Both libraries update W then H in each iteration;
//! demix runs with normalisation off so that its path is scikit-learn's. V, W0 and H0 are
//! f32 values, so both start from the same numbers; what remains is demix's f32 arithmetic.
//! The 300 frames span three of demix's blocks of frames, the last one partial.
//! Every value in the fixture is far from every floor of either library, and no element of
//! the factors is small, so a purely relative tolerance applies to every element.

use std::path::PathBuf;

use demix::formats::npy::load_npy;
use demix::nmf::{Loss, NmfParams, fit};
use ndarray::{Array2, Ix2};

/// Iterations scikit-learn ran.
const ITERATIONS: usize = 50;

/// Largest accepted relative difference from scikit-learn, per element and for the cost.
const TOLERANCE: f64 = 1e-4;

/// The f64 array `name` of the fixture, with any number of dimensions.
fn fixture_any(name: &str) -> ndarray::ArrayD<f64> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sklearn_mu")
        .join(format!("{name}.npy"));
    load_npy(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .to_f64()
        .expect("numeric")
}

fn fixture(name: &str) -> Array2<f64> {
    fixture_any(name)
        .into_dimensionality::<Ix2>()
        .expect("a matrix")
}

fn to_f32(a: &Array2<f64>) -> Array2<f32> {
    a.mapv(|x| x as f32)
}

/// The largest `|actual - expected| / |expected|` and where it occurs.
fn max_relative_error(actual: &Array2<f32>, expected: &Array2<f64>) -> (f64, (usize, usize)) {
    assert_eq!(actual.dim(), expected.dim());
    let mut worst = (0.0, (0, 0));
    for (index, &b) in expected.indexed_iter() {
        let error = (f64::from(actual[index]) - b).abs() / b.abs();
        if error.is_nan() || error > worst.0 {
            worst = (error, index);
        }
    }
    worst
}

/// Fits the fixture with `loss` and compares W, H and the final cost with scikit-learn's.
fn assert_matches_scikit_learn(loss: Loss, name: &str) {
    let v: Array2<f64> = fixture("v");
    let w0: Array2<f64> = fixture("w0");
    let h0: Array2<f64> = fixture("h0");
    let params = NmfParams::new(w0.ncols())
        .with_loss(loss)
        .with_max_iter(ITERATIONS)
        .with_tol(0.0)
        .with_normalize(false)
        .with_initial(to_f32(&w0), to_f32(&h0));
    let model = fit(to_f32(&v).view(), &params).expect("the fixture is a valid input");
    assert_eq!(model.iterations, ITERATIONS);
    assert!(!model.converged);

    let w_ref: Array2<f64> = fixture(&format!("w_{name}"));
    let h_ref: Array2<f64> = fixture(&format!("h_{name}"));
    let cost_ref = fixture_any(&format!("cost_{name}"));
    let cost_ref = *cost_ref.first().expect("a scalar");
    let (w_err, w_at) = max_relative_error(&model.w, &w_ref);
    let (h_err, h_at) = max_relative_error(&model.h, &h_ref);
    let cost_err = (model.final_cost() - cost_ref).abs() / cost_ref;
    eprintln!(
        "{name}: max relative error W {w_err:.3e} at {w_at:?}, H {h_err:.3e} at {h_at:?}, \
         cost {cost_err:.3e}"
    );
    assert!(
        w_err <= TOLERANCE,
        "{name}: W{w_at:?} is off by {w_err:.3e} relative"
    );
    assert!(
        h_err <= TOLERANCE,
        "{name}: H{h_at:?} is off by {h_err:.3e} relative"
    );
    assert!(
        cost_err <= TOLERANCE,
        "{name}: cost {} against {cost_ref}, off by {cost_err:.3e} relative",
        model.final_cost()
    );
}

#[test]
fn itakura_saito_matches_scikit_learn_after_50_iterations() {
    assert_matches_scikit_learn(Loss::ItakuraSaito, "is");
}

#[test]
fn kullback_leibler_matches_scikit_learn_after_50_iterations() {
    assert_matches_scikit_learn(Loss::KullbackLeibler, "kl");
}

#[test]
fn frobenius_matches_scikit_learn_after_50_iterations() {
    assert_matches_scikit_learn(Loss::Euclidean, "frobenius");
}
