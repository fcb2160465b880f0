//! Analysis: the factorisation of a recording's spectrogram and the naming of its sources.

use std::ops::Range;
use std::path::PathBuf;

use ndarray::{Array2, Array3, ArrayView2};
use realfft::num_complex::Complex32;

use super::balance::channel_energies;
use super::blocks::{BlockSink, Blocks};
use super::coarse::fit_activations;
use super::render::{Separation, Spatial};
use super::stream::{Gathering, Input, Spill};
use super::{
    BLIND_SPATIAL_MASK_POWER, DEFAULT_MASK_POWER, SPATIAL_MASK_POWER, SeparateParams, Separator,
};
use crate::audio::Audio;
use crate::error::{Error, Result};
use crate::nmf::{self, ActivationSums, KRange, Nmf, NmfParams, Progress, RankReport};
use crate::sources::{Source, group_components, named_sources, one_source_per_component, stack};
use crate::spectral::check_length;
use crate::spectral::spatial::CovarianceSum;

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
        audio.check_finite()?; // analyze_input checks the length, for every input
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
        check_length(input.len(), stft.n_fft())?;
        for t in &params.templates {
            t.check_compatible(&params.stft, input.sample_rate())?;
        }
        let frames = stft.n_frames(input.len());
        let mut rank = None;
        let (nmf, data_sum, sums, spill, sample) = if frames <= params.max_frames {
            let spectrogram =
                self.blocks()
                    .spectrogram(input, stft, frames, std::iter::once(0..frames))?;
            let sum = spectrogram.iter().map(|&a| f64::from(a)).sum();
            let nmf_params = self.with_rank(spectrogram.view(), &mut rank)?;
            let nmf = fit_activations(spectrogram, &nmf_params, self.coarse.as_ref(), progress)?;
            let sums = ActivationSums::of(nmf.h.view());
            (nmf, sum, sums, None, None)
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
            // Measured on the frames the templates were fitted on: the whole recording, or
            // a long one's sample.
            let whole = 0..frames;
            let (ranges, h) = match &sample {
                Some((ranges, h)) => (ranges.as_slice(), h.view()),
                None => (std::slice::from_ref(&whole), nmf.h.view()),
            };
            let balance = (input.num_channels() > 1)
                .then(|| channel_energies(self.blocks(), input, stft, ranges, nmf.w.view(), h))
                .transpose()?;
            group_components(
                nmf.w.view(),
                &energies,
                &sums.struck(),
                balance.as_ref().map(|b| b.view()),
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
            mask_power: params.mask_power.unwrap_or(match spatial {
                Some(_) if params.templates.is_empty() => BLIND_SPATIAL_MASK_POWER,
                Some(_) => SPATIAL_MASK_POWER,
                None => DEFAULT_MASK_POWER,
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

    /// How long recordings are cut into blocks.
    fn blocks(&self) -> Blocks {
        Blocks {
            max_frames: self.params.max_frames,
        }
    }
}

/// The multichannel Wiener filter's covariances, when every learned source brings one for
/// this channel count, or the sources are grouped blind (and the filter is not turned off):
/// learned sources use theirs, the free components' `other` and blind sources the identity (no
/// spatial preference, until the re-estimation on the mixture).
fn spatial_model(
    params: &SeparateParams,
    channels: usize,
    bins: usize,
    sources: &[Source],
) -> Option<Spatial> {
    if !params.spatial || channels < 2 {
        return None;
    }
    if params.templates.is_empty() {
        // Blind grouping: no covariance was learned, so the filter starts from none (the
        // identity) and learns each source's on the mixture. Not for one source per
        // component, whose many sources would make the filter slow.
        return params.groups.map(|_| Spatial {
            covariances: (sources.iter())
                .map(|_| CovarianceSum::new(bins, channels).covariance())
                .collect(),
            iterations: params.spatial_iterations,
        });
    }
    let mut covariances: Vec<Array3<Complex32>> = params
        .templates
        .iter()
        .map(|t| {
            // In standard layout, so that the filter reads each bin's matrices as one slice.
            (t.spatial.as_ref())
                .filter(|r| r.dim() == (bins, channels, channels))
                .map(|r| r.as_standard_layout().into_owned())
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
    ) -> Result<LongFit> {
        let (stft, params) = (&self.stft, &self.params);
        let mut nmf_params = self.nmf.clone();
        let frames = stft.n_frames(input.len());
        let (w, template_iterations, converged, sample) = if nmf_params.components() > 0 {
            let sample = self.blocks().sample(input, stft, frames)?;
            nmf_params = self.with_rank(sample.view(), rank)?;
            let model = nmf::fit_transposed(sample, &nmf_params, progress)?;
            let ranges = self.blocks().sample_ranges(frames);
            (
                model.w,
                model.iterations,
                model.converged,
                Some((ranges, model.h)),
            )
        } else {
            (stack(&params.templates), 0, true, None)
        };
        let k = w.ncols();
        let mut sink = Gathered {
            h: Gathering::new(k, frames, spill)?,
            sums: ActivationSums::new(k),
            data_sum: 0.0,
        };
        let cost = self.blocks().solve(
            input,
            stft,
            &nmf_params,
            &w,
            self.coarse.as_ref(),
            &mut sink,
        )?;
        let (h, spill) = sink.h.finish()?.split(k);
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
        Ok((nmf, sink.data_sum, sink.sums, spill, sample))
    }
}

/// What [`Separator::fit_long`] gives: the fit, the sum of the spectrogram, the activations'
/// sums, where they were spilled, and the sample the templates were fitted on (its frames
/// and activations) if they were.
type LongFit = (
    Nmf,
    f64,
    ActivationSums,
    Option<Spill>,
    Option<(Vec<Range<usize>>, Array2<f32>)>,
);

/// What [`Separator::fit_long`] keeps of the blocks: the activations, their sums, and the
/// sum of the spectrogram.
struct Gathered {
    h: Gathering,
    sums: ActivationSums,
    data_sum: f64,
}

impl BlockSink for Gathered {
    fn data(&mut self, _start: usize, v: ArrayView2<'_, f32>) -> Result<()> {
        self.data_sum += v.iter().map(|&a| f64::from(a)).sum::<f64>();
        Ok(())
    }

    fn activations(&mut self, start: usize, h: ArrayView2<'_, f32>) -> Result<()> {
        self.sums.add(h);
        self.h.add(start, h)
    }
}
