//! Analysis: the factorisation of a recording's spectrogram and the naming of its sources.

use std::ops::Range;
use std::path::PathBuf;

use ndarray::{Array2, Array3, ArrayView2, s};
use realfft::num_complex::Complex32;

use super::render::{Separation, Spatial};
use super::stream::{Input, Spill};
use super::{DEFAULT_MASK_POWER, SPATIAL_MASK_POWER, SeparateParams, Separator};
use crate::audio::Audio;
use crate::error::{Error, Result};
use crate::nmf::{self, KRange, Nmf, NmfParams, Progress, RankReport};
use crate::sources::{Source, group_components, named_sources, one_source_per_component, stack};
use crate::spectral::spatial::CovarianceSum;
use crate::spectral::{add_channel_summed_magnitude, check_usable};

/// Frames of spectrogram computed from one excerpt of a streamed recording.
const CHUNK_FRAMES: usize = 2048;

impl Separator {
    /// Fits the factorisation of `audio` and names its sources, ready to render.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for NaN or infinite samples,
    /// [`Error::TooShort`] for audio shorter than one frame,
    /// [`Error::TemplateMismatch`] for templates learned at
    /// another sample rate, [`Error::Degenerate`] when every
    /// activation of the fit vanished.
    pub fn analyze(&self, audio: &Audio, progress: &mut dyn FnMut(Progress)) -> Result<Separation> {
        check_usable(audio, self.stft.n_fft())?;
        self.analyze_input(Input::Memory(audio), progress, None)
    }

    /// [`Self::analyze`] of a recording in memory or read in passes (whose samples were
    /// checked by its scan). With `spill`, the activations of a recording longer than
    /// `max_frames` go to that file instead of memory.
    pub(crate) fn analyze_input(
        &self,
        input: Input<'_>,
        progress: &mut dyn FnMut(Progress),
        spill: Option<PathBuf>,
    ) -> Result<Separation> {
        let (params, stft) = (&self.params, &self.stft);
        if input.len() < stft.n_fft() {
            return Err(Error::TooShort {
                frames: input.len(),
                n_fft: stft.n_fft(),
            });
        }
        for t in &params.templates {
            t.check_compatible(&params.stft, input.sample_rate())?;
        }
        let frames = stft.n_frames(input.len());
        let mut rank = None;
        let (nmf, data_sum, sums, spill) = if frames <= params.max_frames {
            let spectrogram = self.spectrogram(input, 0..frames, std::iter::once(0..frames))?;
            let sum = spectrogram.iter().map(|&a| f64::from(a)).sum();
            let nmf_params = self.with_rank(spectrogram.view(), &mut rank)?;
            let nmf = nmf::fit_transposed(spectrogram, &nmf_params, progress)?;
            let sums = ActivationSums::of(nmf.h.view());
            (nmf, sum, sums, None)
        } else {
            self.fit_long(input, &mut rank, progress, spill)?
        };
        // The model must explain more than a millionth of the spectrogram's level, else its
        // stems would be (nearly) silent and not add up to the input.
        let explained = sums.model_sum(nmf.w.view());
        if explained.is_nan() || explained < 1e-6 * data_sum {
            return Err(Error::Degenerate);
        }
        let energies = sums.energies(nmf.w.view());
        let sources = if !params.templates.is_empty() {
            named_sources(&params.templates, params.nmf.components())
        } else if let Some(groups) = params.groups {
            group_components(
                nmf.w.view(),
                &energies,
                groups,
                input.sample_rate(),
                stft.n_fft(),
            )
        } else {
            one_source_per_component(&energies)
        };
        let spatial = spatial_model(params, input.num_channels(), stft.n_bins(), &sources);
        Ok(Separation {
            nmf,
            sources,
            stft: stft.clone(),
            mask_power: params.mask_power.unwrap_or(if spatial.is_some() {
                SPATIAL_MASK_POWER
            } else {
                DEFAULT_MASK_POWER
            }),
            spatial,
            spill,
            rank,
        })
    }

    /// The fit's parameters: with `-k auto` (a rank selection and no templates), those of the
    /// separator with the number of components chosen on `spectrogram` (frames × bins), at
    /// least the number of sources to group into; the report is left in `rank`.
    fn with_rank(
        &self,
        spectrogram: ArrayView2<f32>,
        rank: &mut Option<RankReport>,
    ) -> Result<NmfParams> {
        let params = &self.params;
        let Some(selection) = params.rank.as_ref().filter(|_| params.templates.is_empty()) else {
            return Ok(self.nmf.clone());
        };
        let range = selection.range();
        let low = range
            .low()
            .max(params.groups.unwrap_or(1))
            .min(range.high());
        let selection = selection
            .clone()
            .with_range(KRange::new(low, range.high())?);
        let report = nmf::select_rank(spectrogram.t(), &self.nmf, &selection)?;
        let fitted = report.fit_params(&self.nmf);
        *rank = Some(report);
        Ok(fitted)
    }

    /// Frames of spectrogram computed from one excerpt of a streamed recording: fewer than
    /// an activation block has (tests reach several excerpts per block with small blocks).
    fn chunk_frames(&self) -> usize {
        CHUNK_FRAMES.min(self.params.max_frames / 4)
    }

    /// The channel-summed magnitude spectrogram of each range of `ranges` (increasing), one
    /// after the other, rows `0..` of a `rows` × bins array, from one pass over `input`.
    fn spectrogram(
        &self,
        input: Input<'_>,
        rows: Range<usize>,
        ranges: impl IntoIterator<Item = Range<usize>>,
    ) -> Result<Array2<f32>> {
        let stft = &self.stft;
        let mut v = Array2::<f32>::zeros((rows.len(), stft.n_bins()));
        crate::hugepages::advise(v.as_slice_mut().expect("fresh arrays are contiguous"));
        let mut pass = input.pass()?;
        let mut row = 0;
        let step = self.chunk_frames();
        for range in ranges {
            for start in range.clone().step_by(step) {
                let chunk = start..(start + step).min(range.end);
                let n = chunk.len();
                let excerpt = pass.excerpt(stft, chunk.clone(), start)?;
                add_channel_summed_magnitude(
                    stft,
                    excerpt,
                    chunk,
                    v.slice_mut(s![row..row + n, ..]),
                );
                row += n;
            }
        }
        assert_eq!(row, rows.len(), "the ranges fill the rows");
        Ok(v)
    }
}

/// Per component, the sums of its activations and of their squares, in frame order: what
/// [`Nmf::model_sum`] and [`Nmf::component_energies`] compute from H, gathered block by block
/// when H is not kept.
struct ActivationSums {
    l1: Vec<f64>,
    squares: Vec<f64>,
}

impl ActivationSums {
    fn new(k: usize) -> ActivationSums {
        ActivationSums {
            l1: vec![0.0; k],
            squares: vec![0.0; k],
        }
    }

    fn of(h: ArrayView2<f32>) -> ActivationSums {
        let mut sums = ActivationSums::new(h.nrows());
        sums.add(h);
        sums
    }

    /// Adds the activations of the next frames, K × frames.
    fn add(&mut self, h: ArrayView2<f32>) {
        for (c, row) in h.rows().into_iter().enumerate() {
            for &a in row {
                self.l1[c] += f64::from(a);
                self.squares[c] += f64::from(a).powi(2);
            }
        }
    }

    /// [`Nmf::model_sum`].
    fn model_sum(&self, w: ArrayView2<f32>) -> f64 {
        let l1 = |c: usize| w.column(c).iter().map(|&a| f64::from(a)).sum::<f64>();
        (0..w.ncols()).map(|c| l1(c) * self.l1[c]).sum()
    }

    /// [`Nmf::component_energies`].
    fn energies(&self, w: ArrayView2<f32>) -> Vec<f64> {
        let squares = |c: usize| {
            w.column(c)
                .iter()
                .map(|&a| f64::from(a).powi(2))
                .sum::<f64>()
        };
        (0..w.ncols())
            .map(|c| squares(c) * self.squares[c])
            .collect()
    }
}

/// The multichannel Wiener filter's covariances, when every learned source brings one for
/// this channel count (and the filter is not turned off): learned sources use theirs, the
/// free components' `other` the identity (no spatial preference).
fn spatial_model(
    params: &SeparateParams,
    channels: usize,
    bins: usize,
    sources: &[Source],
) -> Option<Spatial> {
    if !params.spatial || channels < 2 || params.templates.is_empty() {
        return None;
    }
    let mut covariances: Vec<Array3<Complex32>> = params
        .templates
        .iter()
        .map(|t| {
            t.spatial
                .clone()
                .filter(|r| r.dim() == (bins, channels, channels))
        })
        .collect::<Option<_>>()?;
    if sources.len() > covariances.len() {
        // No energy at all: the identity, no spatial preference.
        covariances.push(CovarianceSum::new(bins, channels).covariance());
    }
    Some(Spatial {
        covariances,
        iterations: params.spatial_iterations,
    })
}

impl Separator {
    /// Fits a recording too long to hold its whole spectrogram (more than `max_frames` frames):
    /// the templates on an evenly spaced sample of `max_frames` frames (32 stretches of the
    /// recording), then the activations of every frame, block by block of `max_frames`, with the
    /// templates fixed. Memory stays at a few spectrograms of `max_frames` frames plus H, or
    /// without H when it goes to `spill`. Returns the fit (its H empty when spilled), the sum
    /// of the spectrogram and of the activations, and the spill.
    fn fit_long(
        &self,
        input: Input<'_>,
        rank: &mut Option<RankReport>,
        progress: &mut dyn FnMut(Progress),
        spill: Option<PathBuf>,
    ) -> Result<(Nmf, f64, ActivationSums, Option<Spill>)> {
        const STRETCHES: usize = 32;
        let (stft, params) = (&self.stft, &self.params);
        let mut nmf_params = self.nmf.clone();
        let frames = stft.n_frames(input.len());
        let max_frames = params.max_frames;
        let (w, template_iterations, converged) = if nmf_params.components() > 0 {
            let stretch = max_frames / STRETCHES;
            let starts = (0..STRETCHES).map(|i| (frames - stretch) * i / (STRETCHES - 1));
            let sample = self.spectrogram(
                input,
                0..STRETCHES * stretch,
                starts.map(|start| start..start + stretch),
            )?;
            nmf_params = self.with_rank(sample.view(), rank)?;
            let model = nmf::fit_transposed(sample, &nmf_params, progress)?;
            (model.w, model.iterations, model.converged)
        } else {
            (stack(&params.templates), 0, true)
        };
        let block_params = NmfParams::new(0)
            .with_loss(nmf_params.loss())
            .with_max_iter(nmf_params.max_iter())
            .with_tol(nmf_params.tol())
            .with_sparsity(nmf_params.sparsity())
            .with_smoothness(nmf_params.smoothness())
            .with_floor(nmf_params.floor())
            .with_max_memory(nmf_params.max_memory())
            .with_fixed_templates(w.clone());
        // With the smoothness penalty, each block sees this many neighbouring frames on each side.
        let margin = if nmf_params.smoothness() > 0.0 {
            64.min(max_frames / 4)
        } else {
            0
        };
        let k = w.ncols();
        let mut spill = spill.map(|path| Spill::create(path, k)).transpose()?;
        let mut h = Array2::<f32>::zeros((k, if spill.is_some() { 0 } else { frames }));
        let mut sums = ActivationSums::new(k);
        let (mut cost, mut data_sum) = (0.0, 0.0);
        // One pass: the blocks' ranges, margins included, start in increasing order.
        let mut pass = input.pass()?;
        for start in (0..frames).step_by(max_frames) {
            let end = (start + max_frames).min(frames);
            let (lo, hi) = (start.saturating_sub(margin), (end + margin).min(frames));
            let mut v = Array2::<f32>::zeros((hi - lo, stft.n_bins()));
            crate::hugepages::advise(v.as_slice_mut().expect("fresh arrays are contiguous"));
            let step = self.chunk_frames();
            for chunk in (lo..hi).step_by(step) {
                let chunk = chunk..(chunk + step).min(hi);
                let rows = chunk.start - lo..chunk.end - lo;
                // The next block starts `margin` frames before this one ends.
                let keep = end.saturating_sub(margin);
                let excerpt = pass.excerpt(stft, chunk.clone(), keep)?;
                add_channel_summed_magnitude(stft, excerpt, chunk, v.slice_mut(s![rows, ..]));
            }
            let own = v.slice(s![start - lo..end - lo, ..]);
            data_sum += own.iter().map(|&a| f64::from(a)).sum::<f64>();
            let block = nmf::fit_transposed(v, &block_params, &mut |_| {})?;
            let block_h = block.h.slice(s![.., start - lo..end - lo]);
            sums.add(block_h);
            match &mut spill {
                Some((spill, writer)) => writer.append(spill, block_h)?,
                None => h.slice_mut(s![.., start..end]).assign(&block_h),
            }
            cost += block.final_cost();
        }
        let spill = match spill {
            Some((spill, writer)) => {
                writer.finish()?;
                Some(spill)
            }
            None => None,
        };
        let nmf = Nmf {
            w,
            h,
            cost_history: vec![nmf::CostPoint {
                iteration: template_iterations,
                cost,
            }],
            iterations: template_iterations,
            converged,
        };
        Ok((nmf, data_sum, sums, spill))
    }
}
