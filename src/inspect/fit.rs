//! The factorisation of an inspection, in bounded memory: the whole spectrogram of a recording
//! of up to `max_frames` frames, else templates fitted on a sample of frames and activations
//! solved block by block, kept in memory or written to a file as they come.

use std::path::PathBuf;

use ndarray::{Array2, ArrayView2};

use super::notes::harmonic_templates;
use super::overview::ColumnMax;
use super::{InspectParams, NoteTemplates, charts};
use crate::error::Result;
use crate::nmf::{self, ActivationSums, CostPoint, Nmf, NmfParams, Progress, RankReport};
use crate::separate::{BlockSink, Blocks, Gathering, Input, Stored};
use crate::spectral::{Stft, StftParams};

/// The factorisation of one recording, components in the order of the fit.
#[derive(Debug)]
pub(crate) struct Fitted {
    /// Templates, bins × K.
    pub(crate) w: Array2<f32>,
    /// Activations, K × frames.
    pub(crate) h: Stored,
    /// Sums and peaks of every row of H.
    pub(crate) sums: ActivationSums,
    /// Frames of the recording.
    pub(crate) frames: usize,
    /// The note of each component's template (note templates), else `None`.
    pub(crate) template_notes: Vec<Option<u8>>,
    /// The magnitude spectrogram reduced to the pixel columns of the spectrogram chart.
    pub(crate) spectrum: ColumnMax,
    /// The costs of the fit (of a long recording: its template fit's iterations, and the
    /// summed final cost of its blocks).
    pub(crate) cost_history: Vec<CostPoint>,
    /// Iterations of the fit (of a long recording: of its templates).
    pub(crate) iterations: usize,
    /// Whether the fit stopped on its tolerance.
    pub(crate) converged: bool,
    /// The rank selection that chose the number of components (`-k auto`), if one ran.
    pub(crate) rank: Option<RankReport>,
}

/// Factorises `input` (whose samples are checked, at least one frame long) with the checked
/// `params` on the frames of `stft` (made from `stft_params`). The activations of a recording
/// longer than `params.max_frames` go to `spill` when given.
///
/// # Errors
/// Those of the decoder, [`Error::Param`](crate::Error::Param) for notes above the Nyquist
/// frequency, [`Error::TemplateMismatch`](crate::Error::TemplateMismatch), and a spill that
/// cannot be written.
pub(crate) fn fit(
    input: Input<'_>,
    params: &InspectParams,
    (stft_params, stft): (&StftParams, &Stft),
    progress: &mut dyn FnMut(Progress),
    spill: Option<PathBuf>,
) -> Result<Fitted> {
    let rate = input.sample_rate();
    let frames = stft.n_frames(input.len());
    let blocks = Blocks {
        max_frames: params.max_frames,
    };
    let (w0, mut template_notes) = match &params.notes {
        None => {
            for t in &params.templates {
                t.check_compatible(stft_params, rate)?;
            }
            let k = params.nmf_params().total_components();
            (None, vec![None; k])
        }
        Some(templates) => {
            let w0 = match &templates.learned {
                Some(learned) => {
                    learned.check_compatible(stft_params, rate)?;
                    learned.w.clone()
                }
                None => harmonic_templates(templates.range, rate, stft_params, &templates.shape)?,
            };
            let mut names: Vec<Option<u8>> = templates.range.iter().map(Some).collect();
            names.extend(std::iter::repeat_n(None, params.nmf.components()));
            (Some(w0), names)
        }
    };
    let columns = charts::spectrogram_columns(rate, stft.n_fft());
    let mut spectrum = ColumnMax::new(columns, frames, stft.n_bins());

    if frames <= params.max_frames {
        let whole = || blocks.spectrogram(input, stft, frames, std::iter::once(0..frames));
        let v = whole()?;
        spectrum.add(0, v.view());
        let (nmf, rank) = match (&params.notes, w0) {
            (Some(templates), Some(w0)) => (
                fit_note_templates(v, &mut || whole(), params, templates, w0, progress)?,
                None,
            ),
            _ => {
                let (free, rank) = free_params(v.view(), params)?;
                (nmf::fit_transposed(v, &free, progress)?, rank)
            }
        };
        if rank.is_some() {
            template_notes = vec![None; nmf.w.ncols()];
        }
        return Ok(Fitted {
            sums: ActivationSums::of(nmf.h.view()),
            w: nmf.w,
            h: Stored::Memory(nmf.h),
            frames,
            template_notes,
            spectrum,
            cost_history: nmf.cost_history,
            iterations: nmf.iterations,
            converged: nmf.converged,
            rank,
        });
    }

    // Templates from a sample of frames, unless there is nothing to fit.
    let sample = || blocks.sample(input, stft, frames);
    let mut rank = None;
    let (w, iterations, converged) = match (&params.notes, w0) {
        (Some(templates), Some(w0)) if templates.fixed && params.nmf.components() == 0 => {
            (w0, 0, true)
        }
        (Some(templates), Some(w0)) => {
            let model =
                fit_note_templates(sample()?, &mut || sample(), params, templates, w0, progress)?;
            (model.w, model.iterations, model.converged)
        }
        _ if params.nmf.components() == 0 && params.rank.is_none() => {
            (crate::sources::stack(&params.templates), 0, true)
        }
        _ => {
            let v = sample()?;
            let (free, report) = free_params(v.view(), params)?;
            rank = report;
            let model = nmf::fit_transposed(v, &free, progress)?;
            (model.w, model.iterations, model.converged)
        }
    };
    let k = w.ncols();
    if rank.is_some() {
        template_notes = vec![None; k];
    }
    let mut sink = Gather {
        h: Gathering::new(k, frames, spill)?,
        sums: ActivationSums::new(k),
        spectrum,
    };
    let cost = blocks.solve(input, stft, &params.nmf, &w, None, &mut sink)?;
    let h = sink.h.finish()?;
    Ok(Fitted {
        w,
        h,
        sums: sink.sums,
        frames,
        template_notes,
        spectrum: sink.spectrum,
        cost_history: vec![CostPoint {
            iteration: iterations,
            cost,
        }],
        iterations,
        converged,
        rank,
    })
}

/// The parameters of a fit of free components (and learned templates) to `v` (frames ×
/// bins): with a rank selection (`-k auto`), as many components as it chooses on `v`, and
/// its report.
fn free_params(
    v: ArrayView2<f32>,
    params: &InspectParams,
) -> Result<(NmfParams, Option<RankReport>)> {
    let free = params.nmf_params();
    match &params.rank {
        Some(selection) => {
            let report = nmf::select_rank(v.t(), &params.nmf, selection)?;
            Ok((report.fit_params(&free), Some(report)))
        }
        None => Ok((free, None)),
    }
}

/// What [`fit`] keeps of the blocks of a long recording.
struct Gather {
    h: Gathering,
    sums: ActivationSums,
    spectrum: ColumnMax,
}

impl BlockSink for Gather {
    fn data(&mut self, start: usize, v: ArrayView2<'_, f32>) -> Result<()> {
        self.spectrum.add(start, v);
        Ok(())
    }

    fn activations(&mut self, start: usize, h: ArrayView2<'_, f32>) -> Result<()> {
        self.sums.add(h);
        self.h.add(start, h)
    }
}

/// Fits activations to fixed note templates `w0` (plus any free components) on the
/// spectrogram `v` (frames × bins), then, unless the templates are fixed, adapts templates and
/// activations together on the same spectrogram made `again` (the first fit consumes `v`, so
/// that only one copy of it is held at a time).
fn fit_note_templates(
    v: Array2<f32>,
    again: &mut dyn FnMut() -> Result<Array2<f32>>,
    params: &InspectParams,
    templates: &NoteTemplates,
    w0: Array2<f32>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Nmf> {
    let adapt = if templates.fixed {
        0
    } else {
        templates.adapt_iter
    };
    // With restarts, the first fit reports restarts × its iterations.
    let max_iter = params.nmf.restarts() * params.nmf.max_iter() + adapt;
    let mut fixed = params.nmf.clone();
    fixed.initial = None;
    let fixed = fixed.with_fixed_templates(w0);
    let mut reached = 0;
    let first = nmf::fit_transposed(v, &fixed, &mut |p| {
        reached = p.iteration;
        progress(Progress { max_iter, ..p });
    })?;
    if adapt == 0 {
        return Ok(first);
    }
    let Nmf {
        w,
        h,
        cost_history: mut history,
        iterations: done,
        converged,
    } = first;
    let mut adapted = params.nmf.clone();
    adapted.components = w.ncols();
    adapted.fixed_w = None;
    // It starts from the best first fit (so it is fitted once, whatever `restarts`).
    let adapted = adapted.with_initial(w, h).with_max_iter(adapt);
    let second = nmf::fit_transposed(again()?, &adapted, &mut |p| {
        progress(Progress {
            iteration: reached + p.iteration,
            max_iter: reached + adapt,
            cost: p.cost,
        });
    })?;
    history.extend(second.cost_history.iter().skip(1).map(|c| CostPoint {
        iteration: done + c.iteration,
        cost: c.cost,
    }));
    Ok(Nmf {
        w: second.w,
        h: second.h,
        cost_history: history,
        iterations: done + second.iterations,
        converged,
    })
}
