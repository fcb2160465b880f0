//! Handicapped components (`NmfParams::with_handicaps`): a handicapped template yields to an
//! equal one without, with KL a handicap is the L1 penalty, bad handicaps are refused.

use demix::error::{Param, ParamError};
use demix::nmf::{Factorization, Loss, NmfParams, fit};
use ndarray::{Array2, Axis, concatenate, s};

use crate::common::positive_matrix as random_matrix;

#[test]
fn a_handicapped_template_yields_to_an_equal_one_without() {
    // V made of two templates; each is given twice, the second copy handicapped.
    let w = random_matrix(30, 2, 1);
    let v = w.dot(&random_matrix(2, 50, 2));
    let twice = concatenate(Axis(1), &[w.view(), w.view()]).unwrap();
    for loss in [Loss::ItakuraSaito, Loss::KullbackLeibler, Loss::Euclidean] {
        let params = NmfParams::new(0)
            .with_loss(loss)
            .with_fixed_templates(twice.clone())
            .with_max_iter(200)
            .with_tol(0.0);
        let share = |params: &NmfParams| {
            let h = fit(v.view(), params).unwrap().h;
            h.slice(s![2.., ..]).sum() / h.sum()
        };
        // Equal copies from an equal start share the activations evenly. Measured: 0.5, and
        // under 1e-7 with the handicaps.
        let even = share(&params);
        let handicapped = share(&params.clone().with_handicaps(vec![0.0, 0.0, 0.2, 0.2]));
        assert!(
            (even - 0.5).abs() < 1e-3 && handicapped < 0.05,
            "{loss}: the copies' share {even:.3} alike, {handicapped:.4} handicapped"
        );
    }
}

#[test]
fn with_kl_a_handicap_is_the_l1_penalty_on_the_activations() {
    let v = random_matrix(40, 60, 3);
    let fixed = random_matrix(40, 5, 4);
    let base = NmfParams::new(0)
        .with_loss(Loss::KullbackLeibler)
        .with_fixed_templates(fixed)
        .with_max_iter(60)
        .with_tol(0.0);
    let handicapped = fit(v.view(), &base.clone().with_handicaps(vec![0.3; 5])).unwrap();
    let penalised = fit(v.view(), &base.clone().with_sparsity(0.3)).unwrap();
    let plain = fit(v.view(), &base).unwrap();
    let gap = |a: &Array2<f32>, b: &Array2<f32>| {
        let largest = b.iter().fold(0f32, |m, &x| m.max(x));
        (a - b).iter().map(|x| x.abs()).fold(0f32, f32::max) / largest
    };
    let (same, moved) = (
        gap(&handicapped.h, &penalised.h),
        gap(&plain.h, &penalised.h),
    );
    // Measured: 2e-7 of the largest activation, and 0.30 without the handicaps.
    assert!(
        same < 1e-4 && moved > 0.05,
        "handicap against penalty {same:.2e}, no handicap against penalty {moved:.3}"
    );
}

#[test]
fn with_free_components_the_last_cost_is_that_of_the_factors_returned() {
    // Free components fitted beside handicapped templates: the last cost the fit records is
    // that of the factors it returns, for every loss. (That the fused AVX-512 sweep does not
    // run ahead of the handicaps is `nmf::handicap_tests`'s, inside the crate.)
    let v = random_matrix(30, 40, 7);
    let fixed = random_matrix(30, 4, 8);
    for loss in [Loss::ItakuraSaito, Loss::KullbackLeibler, Loss::Euclidean] {
        let params = NmfParams::new(2)
            .with_loss(loss)
            .with_fixed_templates(fixed.clone())
            .with_handicaps(vec![0.0, 0.0, 0.5, 0.5, 0.0, 0.0])
            .with_max_iter(30)
            .with_tol(0.0)
            .with_cost_every(1);
        let model = fit(v.view(), &params).unwrap();
        let recorded = model.final_cost();
        let returned = NmfParams::new(0)
            .with_loss(loss)
            .with_fixed_templates(model.w.clone())
            .with_initial(model.w.clone(), model.h.clone());
        let actual = Factorization::new(v.view(), &returned).unwrap().cost();
        assert!(
            (recorded - actual).abs() <= 1e-6 * actual.abs(),
            "{loss}: recorded {recorded}, actual {actual}"
        );
    }
}

#[test]
fn handicaps_of_the_wrong_number_or_value_are_refused() {
    let v = random_matrix(10, 20, 5);
    let params = NmfParams::new(1).with_fixed_templates(random_matrix(10, 2, 6));
    // One per component, fixed and free: three.
    let err = fit(v.view(), &params.clone().with_handicaps(vec![0.1, 0.1])).unwrap_err();
    assert!(
        matches!(
            err,
            ParamError::Conflict {
                param: Param::Handicaps,
                ..
            }
        ),
        "{err}"
    );
    for bad in [-0.1, f32::NAN, f32::INFINITY] {
        let err = fit(
            v.view(),
            &params.clone().with_handicaps(vec![0.0, bad, 0.0]),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ParamError::OutOfRange {
                    param: Param::Handicaps,
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
    assert!(fit(v.view(), &params.with_handicaps(vec![0.0, 0.5, 0.0])).is_ok());
}
