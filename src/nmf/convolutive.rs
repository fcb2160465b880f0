//! Convolutive templates (NMFD, Smaragdis 2004): a template of L frames is L consecutive
//! columns of W, and its activation one row of H delayed by 0..L frames. The fit keeps the
//! delayed rows as columns of G = Hᵀ like any other, so the model `G Wᵀ`, the cost and the W
//! update are those of plain NMF; only the H update differs. An activation `h_t` is scaled by
//! the ratio of the update terms summed over the frames it reaches,
//! `(Σ_τ num[t+τ, c+τ] / Σ_τ den[t+τ, c+τ])^γ` for the group's columns `c..c+L`, which is the
//! majorisation–minimisation step of the tied model (it is linear and non-negative in H), and
//! the delayed columns are then filled from the first again.

use std::ops::Range;

use ndarray::{Array2, ArrayView2, s};

use super::divergence::{flushed, scale_by_step, step};

/// Fills each group's delayed columns of `g` (frames × components) from its first:
/// `g[t, c + τ] = g[t − τ, c]`, and 0 for `t < τ`.
pub(crate) fn spread(g: &mut Array2<f32>, groups: &[Range<usize>]) {
    let frames = g.nrows();
    for group in groups {
        let c = group.start;
        for tau in 1..group.len() {
            let lead = tau.min(frames);
            g.slice_mut(s![..lead, c + tau]).fill(0.0);
            for t in lead..frames {
                g[[t, c + tau]] = g[[t - tau, c]];
            }
        }
    }
}

/// The H update of every column of `g` from the update terms `num` and `den` (frames ×
/// components): independent columns by their own ratio, each group's first column by the
/// ratio of its sums over the delays; then the delayed columns are filled again. `groups` are
/// in column order and do not overlap (as [`super::NmfParams`] makes them).
pub(crate) fn apply_h(
    g: &mut Array2<f32>,
    (num, den): (ArrayView2<f32>, ArrayView2<f32>),
    groups: &[Range<usize>],
    gamma: f32,
) {
    let (frames, k) = g.dim();
    let independent = |g: &mut Array2<f32>, columns: Range<usize>| {
        let columns = s![.., columns];
        scale_by_step(
            g.slice_mut(columns),
            (num.slice(columns), den.slice(columns)),
            gamma,
        );
    };
    let mut next = 0;
    for group in groups {
        independent(g, next..group.start);
        for t in 0..frames {
            let (mut n, mut d) = (0.0f64, 0.0f64);
            for (tau, col) in group.clone().enumerate().take(frames - t) {
                n += f64::from(num[[t + tau, col]]);
                d += f64::from(den[[t + tau, col]]);
            }
            let x = &mut g[[t, group.start]];
            *x = flushed(*x * step(n, d, gamma));
        }
        next = group.end;
    }
    independent(g, next..k);
    spread(g, groups);
}

/// Replaces each group's column sums in `sums` by the group's total, so that normalising the
/// columns scales every frame of a template, and every delayed copy of its activation, by the
/// same factor.
pub(crate) fn pool_sums(sums: &mut [f64], groups: &[Range<usize>]) {
    for group in groups {
        let total: f64 = sums[group.clone()].iter().sum();
        sums[group.clone()].fill(total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nmf::{Init, Loss, NmfParams, Rng, fit};

    /// A spectrogram (bins × frames) made by `templates` (L frames each, bins × L) struck at
    /// `onsets` (template, frame, level), plus `noise`.
    fn convolved(
        templates: &[Array2<f32>],
        onsets: &[(usize, usize, f32)],
        frames: usize,
        noise: f32,
    ) -> Array2<f32> {
        let bins = templates[0].nrows();
        let mut v = Array2::from_elem((bins, frames), noise);
        for &(k, t0, level) in onsets {
            for (tau, col) in templates[k].columns().into_iter().enumerate() {
                if t0 + tau < frames {
                    let mut frame = v.column_mut(t0 + tau);
                    frame.scaled_add(level, &col);
                }
            }
        }
        v
    }

    /// Two templates of 4 frames whose spectra move: a falling line and a widening band.
    fn two_templates(bins: usize) -> Vec<Array2<f32>> {
        let fall = Array2::from_shape_fn((bins, 4), |(f, tau)| {
            let centre = 20.0 - 4.0 * tau as f32;
            (-((f as f32 - centre) / 1.5).powi(2)).exp() * (1.0 - 0.2 * tau as f32)
        });
        let band = Array2::from_shape_fn((bins, 4), |(f, tau)| {
            let width = 2.0 + 3.0 * tau as f32;
            (-((f as f32 - 8.0) / width).powi(2)).exp() * 0.8
        });
        vec![fall, band]
    }

    /// The templates side by side as fixed columns (template by template, frames in order).
    fn stacked(templates: &[Array2<f32>]) -> Array2<f32> {
        let views: Vec<_> = templates.iter().map(|t| t.view()).collect();
        ndarray::concatenate(ndarray::Axis(1), &views).unwrap()
    }

    #[test]
    fn known_templates_find_where_each_was_struck() {
        let templates = two_templates(32);
        let onsets = [
            (0, 3, 2.0),
            (1, 10, 1.0),
            (0, 20, 1.0),
            (1, 21, 3.0),
            (0, 34, 1.5),
        ];
        let v = convolved(&templates, &onsets, 40, 1e-3);
        let params = NmfParams::new(0)
            .with_loss(Loss::KullbackLeibler)
            .with_fixed_templates(stacked(&templates))
            .with_fixed_frames(vec![4, 4])
            .with_max_iter(500)
            .with_tol(0.0);
        let model = fit(v.view(), &params).unwrap();
        // Row 0 is the first template's activation, row 4 the second's; 1..4 and 5..8 are
        // them delayed.
        for (k, row) in [(0, 0), (1, 4)] {
            let h = model.h.row(row);
            for &(_, t0, level) in onsets.iter().filter(|o| o.0 == k) {
                assert!(
                    (h[t0] - level).abs() < 0.1 * level,
                    "template {k} at {t0}: {h}"
                );
            }
            let struck: f32 = onsets.iter().filter(|o| o.0 == k).map(|o| o.2).sum();
            let total: f32 = h.sum();
            assert!((total - struck).abs() < 0.1 * struck, "template {k}: {h}");
            assert_eq!(model.h[[1 + row, 5]], h[4], "delayed copy");
        }
    }

    #[test]
    fn one_update_is_the_tied_majorisation_step() {
        // Dense reference, in f64: Λ = Σ_τ W_τ h(t − τ), then
        // h_t ← h_t (Σ_τ W_τᵀ (V Λ^(β−2))_(t+τ) / Σ_τ W_τᵀ Λ^(β−1)_(t+τ))^γ.
        let (bins, frames, len) = (6, 9, 3);
        let mut rng = Rng::new(5);
        let w = Array2::from_shape_fn((bins, len), |_| 0.1 + rng.uniform() as f32);
        let v = Array2::from_shape_fn((bins, frames), |_| 0.1 + rng.uniform() as f32);
        let h0: Vec<f64> = (0..frames).map(|_| 0.2 + rng.uniform()).collect();
        for (loss, beta, gamma) in [
            (Loss::ItakuraSaito, 0.0, 0.5),
            (Loss::KullbackLeibler, 1.0, 1.0),
            (Loss::Euclidean, 2.0, 1.0),
        ] {
            let lambda = |f: usize, t: usize| -> f64 {
                (0..len)
                    .filter(|&tau| tau <= t)
                    .map(|tau| f64::from(w[[f, tau]]) * h0[t - tau])
                    .sum()
            };
            let expected: Vec<f64> = (0..frames)
                .map(|t| {
                    let (mut num, mut den) = (0.0, 0.0);
                    for tau in (0..len).filter(|&tau| t + tau < frames) {
                        for f in 0..bins {
                            let l = lambda(f, t + tau);
                            let wf = f64::from(w[[f, tau]]);
                            num += wf * f64::from(v[[f, t + tau]]) * l.powf(beta - 2.0);
                            den += wf * l.powf(beta - 1.0);
                        }
                    }
                    h0[t] * (num / den).powf(gamma)
                })
                .collect();
            let mut h_start = Array2::zeros((len, frames));
            for t in 0..frames {
                h_start[[0, t]] = h0[t] as f32;
            }
            // The data is scaled by its mean inside the fit; the step is scale-covariant.
            let params = NmfParams::new(0)
                .with_loss(loss)
                .with_fixed_templates(w.clone())
                .with_fixed_frames(vec![len])
                .with_initial(w.clone(), h_start)
                .with_floor(0.0)
                .with_max_iter(1)
                .with_tol(0.0);
            let model = fit(v.view(), &params).unwrap();
            for (t, &want) in expected.iter().enumerate() {
                let got = f64::from(model.h[[0, t]]);
                assert!(
                    (got - want).abs() < 1e-4 * want,
                    "{loss:?}, frame {t}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn learning_convolutive_templates_never_raises_the_cost() {
        let templates = two_templates(24);
        let onsets: Vec<_> = (0..12)
            .map(|i| (i % 2, 5 * i + 1, 1.0 + i as f32 * 0.1))
            .collect();
        let v = convolved(&templates, &onsets, 64, 1e-2);
        for loss in [Loss::ItakuraSaito, Loss::KullbackLeibler, Loss::Beta(0.5)] {
            let params = NmfParams::new(2)
                .with_frames(4)
                .with_loss(loss)
                .with_init(Init::Random)
                .with_max_iter(100)
                .with_cost_every(1)
                .with_tol(0.0);
            let model = fit(v.view(), &params).unwrap();
            assert_eq!(model.w.dim(), (24, 8));
            // Each template's frames sum to 1 together.
            for k in 0..2 {
                let sum: f32 = model.w.slice(s![.., 4 * k..4 * k + 4]).sum();
                assert!(
                    (sum - 1.0).abs() < 1e-4,
                    "{loss:?}: template {k} sums to {sum}"
                );
            }
            let costs: Vec<f64> = model.cost_history.iter().map(|c| c.cost).collect();
            for pair in costs.windows(2) {
                assert!(pair[1] <= pair[0] * (1.0 + 1e-5), "{loss:?}: {pair:?}");
            }
            assert!(
                costs[costs.len() - 1] < 0.5 * costs[0],
                "{loss:?}: {costs:?}"
            );
        }
    }

    #[test]
    fn columns_around_a_group_keep_their_own_step() {
        // Columns 0 and 3 are independent, 1..3 one template of two frames.
        let mut g = Array2::from_elem((3, 4), 1.0f32);
        g[[0, 2]] = 0.0;
        let num = Array2::from_shape_fn((3, 4), |(t, c)| (1 + t + 3 * c) as f32);
        let den = Array2::from_elem((3, 4), 2.0f32);
        let group = [Range { start: 1, end: 3 }];
        apply_h(&mut g, (num.view(), den.view()), &group, 1.0);
        for t in 0..3 {
            assert_eq!(g[[t, 0]], (1 + t) as f32 / 2.0);
            assert_eq!(g[[t, 3]], (10 + t) as f32 / 2.0);
        }
        // h_0 · (num[0,1] + num[1,2]) / (2 + 2) = (4 + 8) / 4; the last frame reaches one.
        assert_eq!(g.column(1).to_vec(), [3.0, (5.0 + 9.0) / 4.0, 6.0 / 2.0]);
        assert_eq!(g.column(2).to_vec(), [0.0, 3.0, 3.5]);
    }

    #[test]
    fn templates_longer_than_the_data_fit_without_harm() {
        // Two frames of data, templates of four: the delays past the end hold nothing.
        let templates = two_templates(16);
        let v = convolved(&templates, &[(0, 0, 1.0), (1, 1, 2.0)], 2, 1e-3);
        let params = NmfParams::new(0)
            .with_fixed_templates(stacked(&templates))
            .with_fixed_frames(vec![4, 4]);
        let model = fit(v.view(), &params).unwrap();
        assert!(model.h.iter().all(|a| a.is_finite()) && model.final_cost().is_finite());
        assert_eq!(model.h.dim(), (8, 2));
        assert_eq!(
            model.h[[2, 0]],
            0.0,
            "delay 2 of frame 0 is before the data"
        );
    }

    #[test]
    fn lengths_are_checked_once() {
        for frames in [0, 65] {
            assert!(NmfParams::new(2).with_frames(frames).check().is_err());
        }
        let w = Array2::from_elem((4, 5), 0.1f32);
        let fixed = NmfParams::new(0).with_fixed_templates(w);
        assert!(fixed.clone().with_fixed_frames(vec![2, 2]).check().is_err());
        assert!(fixed.clone().with_fixed_frames(vec![2, 3]).check().is_ok());
        let penalised = fixed.with_fixed_frames(vec![2, 3]).with_sparsity(0.1);
        assert!(penalised.check().is_err());
        assert_eq!(NmfParams::new(3).with_frames(4).total_components(), 12);
    }

    #[test]
    fn delayed_columns_are_the_first_shifted_down() {
        let mut g = Array2::from_shape_fn((4, 4), |(t, c)| (10 * c + t + 1) as f32);
        let group = [Range { start: 1, end: 4 }];
        spread(&mut g, &group);
        assert_eq!(g.column(0).to_vec(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(g.column(1).to_vec(), [11.0, 12.0, 13.0, 14.0]);
        assert_eq!(g.column(2).to_vec(), [0.0, 11.0, 12.0, 13.0]);
        assert_eq!(g.column(3).to_vec(), [0.0, 0.0, 11.0, 12.0]);
    }

    #[test]
    fn a_group_is_scaled_by_its_summed_terms() {
        // Two frames, one group of two columns: h_0 reaches both frames, h_1 only the last.
        let mut g = Array2::from_shape_vec((2, 2), vec![1.0, 0.0, 2.0, 1.0]).unwrap();
        let num = Array2::from_shape_vec((2, 2), vec![1.0, 8.0, 3.0, 4.0]).unwrap();
        let den = Array2::from_shape_vec((2, 2), vec![2.0, 2.0, 1.0, 1.0]).unwrap();
        let group = [Range { start: 0, end: 2 }];
        apply_h(&mut g, (num.view(), den.view()), &group, 1.0);
        // h_0 · (1 + 4) / (2 + 1), h_1 · 3 / 1.
        let h0 = 5.0 / 3.0;
        assert!((g[[0, 0]] - h0).abs() < 1e-6 && g[[1, 0]] == 6.0);
        assert_eq!(g.column(1).to_vec(), [0.0, g[[0, 0]]]);
    }
}
