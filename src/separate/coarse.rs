//! The fit of learned templates alone, made cheaper: its first iterations on frequency bands,
//! then the templates that no frame needs are dropped, and the rest of the fit runs on every
//! bin with the others.
//!
//! With pitch-shifted copies a source has 13 times the templates it learned, and most of them
//! play no part in a given recording. A few iterations on bands (neighbouring bins summed) are
//! enough to tell which: a single-frame template whose share of the model stays below
//! [`KEEP_SHARE`] in every frame (but the quietest) is dropped, its activations 0; convolutive
//! templates, and the largest of each source, are kept. The rest of the fit runs on every bin
//! from there, because bands alone mislead it: summed bins lose the fine structure of the upper
//! spectrum (docs/quality.md, "Bands, then every bin").

use std::ops::Range;

use ndarray::{Array2, ArrayView2, Axis};

use crate::error::ParamError;
use crate::nmf::{self, Nmf, NmfParams, Progress};
use crate::sources::Templates;
use crate::spectral::Bands;

/// Iterations fitted on bands, out of the fit's own, before the templates no frame needs are
/// dropped. Chosen with [`KEEP_SHARE`] on the quality corpus's tuning split against a fit of
/// every bin throughout (median change per source -0.005 dB, largest loss 3.1 dB); after 3 or
/// 5 iterations one song lost 17-23 dB, and shares of 0.01 lost more by the median
/// (docs/quality.md, "Bands, then every bin").
pub const BAND_ITERATIONS: usize = 10;

/// A template is kept when its share of the model reaches this in some frame after
/// [`BAND_ITERATIONS`]. A share of 1e-3 (measured after 5 iterations) kept more templates for
/// no better median, and one song lost 19 dB.
pub const KEEP_SHARE: f64 = 0.003;

/// Frames whose model is below this fraction of the largest frame's are not judged by.
const QUIET_FRAME: f64 = 1e-4;

/// Bands for a fit's first iterations, and the columns of W of each source (each keeps one).
#[derive(Debug, Clone)]
pub(crate) struct CoarseFit {
    bands: Bands,
    sources: Vec<Range<usize>>,
}

impl CoarseFit {
    /// For the stacked `templates` (with their copies made), on `bands`.
    pub(crate) fn new(bands: Bands, templates: &[Templates]) -> CoarseFit {
        let columns: Vec<usize> = templates.iter().map(Templates::len).collect();
        let sources = nmf::template_columns(&columns).collect();
        CoarseFit { bands, sources }
    }
}

/// The fit of `v` (frames × bins) with `params`; with `coarse`, as the module says, which
/// `params` must allow (learned templates alone, no free components). A fit of
/// [`BAND_ITERATIONS`] or fewer runs on every bin throughout, and so does one whose steps on the
/// bands overshot (see [`went_back`]). The costs recorded, and those `progress` is given, are of
/// every bin.
///
/// # Errors
/// Those of the fit.
pub(crate) fn fit_activations(
    v: Array2<f32>,
    params: &NmfParams,
    coarse: Option<&CoarseFit>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Nmf, ParamError> {
    let (Some(coarse), Some(w)) = (coarse, &params.fixed_w) else {
        return nmf::fit_transposed(v, params, progress);
    };
    if params.max_iter() <= BAND_ITERATIONS {
        return nmf::fit_transposed(v, params, progress);
    }
    debug_assert_eq!(params.components(), 0, "bands hold no free components");
    let start = on_bands(v.view(), params, w, &coarse.bands, progress)?;
    if went_back(&start) {
        return nmf::fit_transposed(v, params, progress);
    }
    let done = start.iterations;
    let lengths = params.template_lengths();
    let keep = kept_columns(w.view(), start.h.view(), &lengths, &coarse.sources);
    let mut frames = Vec::new();
    let mut columns = Vec::new();
    for template in nmf::template_columns(&lengths).filter(|t| keep[t.start]) {
        frames.push(template.len());
        columns.extend(template);
    }
    let w_kept = w.select(Axis(1), &columns);
    let mut rest = (params.clone())
        .with_fixed_templates(w_kept.clone())
        .with_fixed_frames(frames)
        .with_initial(w_kept, start.h.select(Axis(0), &columns))
        .with_max_iter(params.max_iter() - done);
    if let Some(handicaps) = &params.handicaps {
        rest = rest.with_handicaps(columns.iter().map(|&k| handicaps[k]).collect());
    }
    let mut fit = nmf::fit_transposed(v, &rest, &mut |p| {
        progress(Progress {
            iteration: p.iteration + done,
            max_iter: params.max_iter(),
            cost: p.cost,
        })
    })?;
    let mut h = Array2::zeros(start.h.dim());
    for (row, &k) in fit.h.rows().into_iter().zip(&columns) {
        h.row_mut(k).assign(&row);
    }
    fit.h = h;
    fit.w = w.clone();
    fit.iterations += done;
    for point in &mut fit.cost_history {
        point.iteration += done;
    }
    Ok(fit)
}

/// [`BAND_ITERATIONS`] of the fit on `bands` (fewer if it converges), each band weighed as the
/// bins it stands for; its templates are the bands'.
fn on_bands(
    v: ArrayView2<f32>,
    params: &NmfParams,
    w: &Array2<f32>,
    bands: &Bands,
    progress: &mut dyn FnMut(Progress),
) -> Result<Nmf, ParamError> {
    // With β-divergences d(a x | a y) = a^β d(x | y), so the bins' divergences from their
    // band's mean add up to n^(1 - β) times the sum's.
    let beta = params.loss().beta();
    let weights = (bands.edges().windows(2))
        .map(|e| ((e[1] - e[0]) as f32).powf(1.0 - beta))
        .collect();
    let pooled = (params.clone())
        .with_fixed_templates(bands.pool_rows(w.view()))
        .with_row_weights(weights)
        .with_max_iter(BAND_ITERATIONS);
    // The bands' costs are not comparable with those of every bin that follow.
    let mut band_progress = |p: Progress| {
        progress(Progress {
            max_iter: params.max_iter(),
            cost: None,
            ..p
        })
    };
    nmf::fit_transposed(bands.pool_columns(v), &pooled, &mut band_progress)
}

/// Whether the fit on bands went back to its start: its longer steps raised the cost at its
/// only check (the last iteration), so its activations are the flat start's and tell no
/// template from another.
fn went_back(fit: &Nmf) -> bool {
    fit.cost_history.last().map(|c| c.iteration) != Some(fit.iterations)
}

/// Whether each column of `w` is kept: every column of a convolutive template, a single-frame
/// one when its share of the model `w h` reaches [`KEEP_SHARE`] in some frame, and in each
/// source at least the template with the largest share.
fn kept_columns(
    w: ArrayView2<f32>,
    h: ArrayView2<f32>,
    lengths: &[usize],
    sources: &[Range<usize>],
) -> Vec<bool> {
    let sums: Vec<f64> = (w.columns().into_iter())
        .map(|c| c.iter().map(|&a| f64::from(a)).sum())
        .collect();
    let mut totals = vec![0f64; h.ncols()];
    for (row, &sum) in h.rows().into_iter().zip(&sums) {
        for (total, &a) in totals.iter_mut().zip(row) {
            *total += sum * f64::from(a);
        }
    }
    let loudest = totals.iter().copied().fold(0.0, f64::max);
    let judged: Vec<usize> = (0..totals.len())
        .filter(|&t| totals[t] > QUIET_FRAME * loudest)
        .collect();
    let share: Vec<f64> = (h.rows().into_iter().zip(&sums))
        .map(|(row, &sum)| {
            (judged.iter())
                .map(|&t| sum * f64::from(row[t]) / totals[t])
                .fold(0.0, f64::max)
        })
        .collect();
    debug_assert!(share.iter().all(|a| a.is_finite()), "shares {share:?}");
    let mut keep = vec![false; w.ncols()];
    for template in nmf::template_columns(lengths) {
        let single = template.len() == 1;
        keep[template.clone()].fill(!single || share[template.start] >= KEEP_SHARE);
    }
    for source in sources {
        // The first of equal shares: a learned template before its copies.
        let best = (source.clone().rev()).max_by(|&a, &b| share[a].total_cmp(&share[b]));
        if let Some(best) = best
            && !keep[source.clone()].iter().any(|&k| k)
        {
            keep[best] = true;
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nmf::Loss;
    use ndarray::Array2;

    /// Templates of `bins` bins with peaks at `(bin, height)`, on a low even floor.
    fn template(bins: usize, peaks: &[(usize, f32)]) -> Vec<f32> {
        let mut c = vec![1e-4; bins];
        for &(bin, height) in peaks {
            c[bin] += height;
        }
        c
    }

    #[test]
    fn a_template_is_kept_when_some_frame_needs_it_and_every_source_keeps_one() {
        // Two sources of three single-frame templates each, all of sum 1; four frames.
        let w = Array2::from_elem((4, 6), 0.25);
        let mut h = Array2::zeros((6, 4));
        h[[0, 0]] = 1.0; // the first source's first template fills frame 0
        h[[1, 1]] = 1.0; // its second fills frame 1 beside 1e-3 of its third
        h[[2, 1]] = 1e-3;
        h[[0, 2]] = 0.996; // frame 2: the third at 4e-3 of the model, above the share
        h[[2, 2]] = 4e-3;
        h[[4, 3]] = 1e-5; // the second source: 1e-5 of frame 3, yet its best template
        h[[0, 3]] = 1.0;
        let sources = [0..3, 3..6];
        let keep = kept_columns(w.view(), h.view(), &[1; 6], &sources);
        assert_eq!(keep, [true, true, true, false, true, false]);
        // A convolutive template (columns 3 and 4) is kept whole, whatever its share.
        let keep = kept_columns(w.view(), h.view(), &[1, 1, 1, 2, 1], &sources);
        assert_eq!(keep, [true, true, true, true, true, false]);
    }

    #[test]
    fn the_fit_ends_on_every_bin_without_the_templates_no_frame_needs() {
        let bins = 96;
        // Two sources of three harmonic templates each (fundamentals at these bins); the data
        // play the first of each.
        let mut columns = Vec::new();
        for f0 in [5, 7, 9, 11, 13, 17] {
            let peaks: Vec<_> = (1..=(bins - 1) / f0)
                .map(|n| (n * f0, 1.0 / n as f32))
                .collect();
            columns.extend(template(bins, &peaks));
        }
        let w = Array2::from_shape_vec((6, bins), columns)
            .unwrap()
            .reversed_axes();
        let w = &w / &w.sum_axis(Axis(0));
        let frames = 40;
        let truth = Array2::from_shape_fn((6, frames), |(k, t)| match k {
            0 => 1.0 + (t % 5) as f32,
            3 => 1.0 + (t % 7) as f32,
            _ => 0.0,
        });
        let v = w.dot(&truth).reversed_axes(); // frames × bins
        for loss in [Loss::ItakuraSaito, Loss::KullbackLeibler] {
            let params = NmfParams::new(0)
                .with_loss(loss)
                .with_fixed_templates(w.clone())
                .with_max_iter(60)
                .with_tol(0.0);
            let coarse = CoarseFit {
                bands: Bands::per_octave(bins, 12),
                sources: vec![0..3, 3..6],
            };
            let mut seen = Vec::new();
            let fit = fit_activations(v.clone(), &params, Some(&coarse), &mut |p| {
                seen.push((p.iteration, p.max_iter))
            })
            .unwrap();
            let every_bin = fit_activations(v.clone(), &params, None, &mut |_| {}).unwrap();
            // The templates no frame plays are dropped; those played are not.
            for k in [1, 2, 4, 5] {
                assert!(fit.h.row(k).iter().all(|&a| a == 0.0), "{loss:?}: row {k}");
            }
            assert!(fit.h.row(0).sum() > 0.0 && fit.h.row(3).sum() > 0.0);
            // Its iterations and costs count on from the bands', and its last cost is of
            // every bin: as low as the fit of every bin throughout.
            assert_eq!((fit.iterations, seen.last()), (60, Some(&(60, 60))));
            assert_eq!(fit.cost_history.last().unwrap().iteration, 60);
            let (cost, reference) = (fit.final_cost(), every_bin.final_cost());
            assert!(
                cost <= reference * 1.01 + 1e-6,
                "{loss:?}: {cost} vs {reference}"
            );
            assert_eq!((fit.w.dim(), fit.h.dim()), ((bins, 6), (6, frames)));
        }
    }

    #[test]
    fn a_fit_on_bands_that_went_back_to_its_start_is_told_apart() {
        let fit = |checked: &[usize], iterations| Nmf {
            w: Array2::zeros((1, 1)),
            h: Array2::zeros((1, 1)),
            cost_history: (checked.iter())
                .map(|&iteration| nmf::CostPoint {
                    iteration,
                    cost: 1.0,
                })
                .collect(),
            iterations,
            converged: false,
        };
        // A cost higher at 10 than at 0 is not recorded, and the activations are the start's.
        assert!(went_back(&fit(&[0], 10)));
        assert!(!went_back(&fit(&[0, 10], 10)));
        // Converged (the change below the tolerance) at its check.
        assert!(!went_back(&fit(&[0, 7], 7)));
    }

    #[test]
    fn each_source_is_given_the_columns_it_has_in_the_stacked_templates() {
        use crate::sources::{Templates, stack};
        let source = |name: &str, k: usize, frames: usize| {
            let w = Array2::from_elem((64, k * frames), 1.0 / (k * frames) as f32);
            Templates::for_tests(name, w, frames)
        };
        // Copies to ±2 of three single-frame templates (15 columns), two drum templates of
        // four frames (8, left as they are), copies of one template (5).
        let templates: Vec<_> = [
            source("keys", 3, 1),
            source("drums", 2, 4),
            source("bass", 1, 1),
        ]
        .into_iter()
        .map(|t| t.with_pitch_shifts(2))
        .collect();
        let coarse = CoarseFit::new(Bands::per_octave(64, 12), &templates);
        assert_eq!(coarse.sources, [0..15, 15..23, 23..28]);
        assert_eq!(stack(&templates).ncols(), 28);
    }
}
