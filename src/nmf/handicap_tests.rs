//! Handicaps with free components: the fused AVX-512 sweep (activations, then the next W
//! update's terms) must not run ahead of them.

use ndarray::Array2;

use super::{Factorization, Loss, NmfParams, Rng};

#[test]
fn handicaps_with_free_components_fit_alike_on_both_kernels() {
    let mut rng = Rng::new(11);
    let v = Array2::from_shape_simple_fn((40, 300), || rng.uniform() as f32 + 0.01);
    let fixed = Array2::from_shape_simple_fn((40, 4), || rng.uniform() as f32 + 0.01);
    for loss in [Loss::ItakuraSaito, Loss::KullbackLeibler] {
        let params = NmfParams::new(2)
            .with_loss(loss)
            .with_fixed_templates(fixed.clone())
            .with_handicaps(vec![0.0, 0.0, 0.5, 0.5, 0.0, 0.0])
            .with_max_iter(30)
            .with_tol(0.0);
        let fitted = |tiled: bool| {
            let mut f = Factorization::new(v.view(), &params).unwrap();
            f.engine = f.engine.with_tiled_kernels(tiled);
            f.run(&mut |_| {});
            f.into_nmf()
        };
        let (tiled, portable) = (fitted(true), fitted(false));
        let gap = |a: &Array2<f32>, b: &Array2<f32>| {
            let largest = b.iter().fold(0f32, |m, &x| m.max(x));
            (a - b).iter().fold(0f32, |m, x| m.max(x.abs())) / largest
        };
        let (w, h) = (gap(&tiled.w, &portable.w), gap(&tiled.h, &portable.h));
        // Measured with IS: 3e-8 and 4e-7 of the largest value; 2e-3 and 3e-2 when the sweep
        // made the W terms of the activations before their handicap.
        assert!(
            w < 1e-5 && h < 1e-5,
            "{loss}: W apart by {w:.2e}, H by {h:.2e}"
        );
    }
}
