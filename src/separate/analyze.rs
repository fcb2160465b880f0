//! Analysis: the factorisation of a recording's spectrogram and the naming of its sources.

use ndarray::{Array2, Array3, ArrayView2, Axis, s};
use realfft::num_complex::Complex32;

use super::render::{Separation, Spatial};
use super::{DEFAULT_MASK_POWER, SPATIAL_MASK_POWER, SeparateParams, Separator};
use crate::audio::Audio;
use crate::error::{Error, Result};
use crate::nmf::{self, KRange, Nmf, NmfParams, Progress, RankReport};
use crate::sources::{Source, group_components, named_sources, one_source_per_component, stack};
use crate::spectral::spatial::CovarianceSum;
use crate::spectral::{channel_summed_magnitude, channel_summed_magnitude_of, check_usable};

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
        let (params, stft) = (&self.params, &self.stft);
        check_usable(audio, stft.n_fft())?;
        for t in &params.templates {
            t.check_compatible(&params.stft, audio.sample_rate)?;
        }
        let mut rank = None;
        let (nmf, data_sum) = if stft.n_frames(audio.len()) <= params.max_frames {
            let spectrogram = channel_summed_magnitude(stft, audio);
            let sum = spectrogram.iter().map(|&a| f64::from(a)).sum();
            let nmf_params = self.with_rank(spectrogram.view(), &mut rank)?;
            (
                nmf::fit_with_progress(spectrogram.t(), &nmf_params, progress)?,
                sum,
            )
        } else {
            self.fit_long(audio, &mut rank, progress)?
        };
        // The model must explain more than a millionth of the spectrogram's level, else its
        // stems would be (nearly) silent and not add up to the input.
        let explained = nmf.model_sum();
        if explained.is_nan() || explained < 1e-6 * data_sum {
            return Err(Error::Degenerate);
        }
        let sources = if !params.templates.is_empty() {
            named_sources(&params.templates, params.nmf.components())
        } else if let Some(groups) = params.groups {
            group_components(&nmf, groups, audio.sample_rate, stft.n_fft())
        } else {
            one_source_per_component(&nmf)
        };
        let spatial = spatial_model(params, audio.num_channels(), stft.n_bins(), &sources);
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
        let mut fitted = self.nmf.clone();
        fitted.components = report.chosen;
        *rank = Some(report);
        Ok(fitted)
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
    /// templates fixed. Memory stays at a few spectrograms of `max_frames` frames plus H.
    /// Returns the fit and the sum of the spectrogram.
    fn fit_long(
        &self,
        audio: &Audio,
        rank: &mut Option<RankReport>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(Nmf, f64)> {
        const STRETCHES: usize = 32;
        let (stft, params) = (&self.stft, &self.params);
        let mut nmf_params = self.nmf.clone();
        let frames = stft.n_frames(audio.len());
        let max_frames = params.max_frames;
        let (w, template_iterations, converged) = if nmf_params.components() > 0 {
            let stretch = max_frames / STRETCHES;
            let parts: Vec<Array2<f32>> = (0..STRETCHES)
                .map(|i| {
                    let start = (frames - stretch) * i / (STRETCHES - 1);
                    channel_summed_magnitude_of(stft, audio, start..start + stretch)
                })
                .collect();
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            let sample = ndarray::concatenate(Axis(0), &views).expect("equal bins");
            drop(parts);
            nmf_params = self.with_rank(sample.view(), rank)?;
            let model = nmf::fit_with_progress(sample.t(), &nmf_params, progress)?;
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
        let mut h = Array2::<f32>::zeros((w.ncols(), frames));
        let (mut cost, mut data_sum) = (0.0, 0.0);
        for start in (0..frames).step_by(max_frames) {
            let end = (start + max_frames).min(frames);
            let (lo, hi) = (start.saturating_sub(margin), (end + margin).min(frames));
            let v = channel_summed_magnitude_of(stft, audio, lo..hi);
            let own = v.slice(s![start - lo..end - lo, ..]);
            data_sum += own.iter().map(|&a| f64::from(a)).sum::<f64>();
            let block = nmf::fit(v.t(), &block_params)?;
            h.slice_mut(s![.., start..end])
                .assign(&block.h.slice(s![.., start - lo..end - lo]));
            cost += block.final_cost();
        }
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
        Ok((nmf, data_sum))
    }
}
