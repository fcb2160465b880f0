//! The separation pipeline: audio → magnitude spectrogram → NMF → soft masks → inverse STFT,
//! one signal per source, written as WAV files.
//!
//! Several channels share one factorisation: the NMF runs on the sum of the channels'
//! magnitude spectrograms, and each source's masks are applied to the complex STFT of every
//! channel, so each stem keeps the stereo (or multichannel) image of the mixture.

use std::ffi::OsString;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3, ArrayViewMut2, Axis, s};
use rayon::prelude::*;
use realfft::num_complex::{Complex32, Complex64};

use crate::atomic;
use crate::audio::{self, Audio, ClipReport, OutputFormat, WavStreamWriter};
use crate::error::{Error, ParamError, Result};
use crate::group;
use crate::mask::soft_masks_in_place;
use crate::nmf::{self, Nmf, NmfParams, Progress};
use crate::spatial::{CovarianceSum, WienerWork, wiener_bin};
use crate::stft::{OverlapAdd, Stft, StftParams, StftScratch};
use crate::templates::{self, Templates};

/// Settings of a separation: STFT, NMF and mask.
#[derive(Debug, Clone, PartialEq)]
pub struct SeparateParams {
    /// The STFT front end (default: 2048-point Hann frames, hop 512).
    pub stft: StftParams,
    /// The factorisation (default: 4 components, KL, 200 iterations, NNDSVDA).
    pub nmf: NmfParams,
    /// Exponent p of the soft masks `S_s^p / Σ S_r^p` (default `None`:
    /// [`SPATIAL_MASK_POWER`] when the multichannel Wiener filter renders, since its source
    /// powers start from these masks, and [`DEFAULT_MASK_POWER`] when the masks render).
    pub mask_power: Option<f32>,
    /// Learned templates of named sources, held fixed (default none). With templates, the
    /// NMF's free components (`nmf.components()`, may be 0) are rendered together as `other`.
    pub templates: Vec<Templates>,
    /// Group the free components into this many sources by what they sound like (default
    /// none: one source per component).
    pub groups: Option<usize>,
    /// Render multichannel input with the multichannel Wiener filter when every learned
    /// source brings a spatial covariance for its channel count (default on).
    pub spatial: bool,
    /// Times the spatial covariances are re-estimated on the mixture (default 1).
    pub spatial_iterations: usize,
    /// Most spectrogram frames fitted at once (default 32768: 6.3 min at 44.1 kHz with hop 512).
    /// Longer recordings learn their templates on an evenly spaced sample of this many frames
    /// and solve the activations block by block, so memory does not grow with their length.
    pub max_frames: usize,
}

impl Default for SeparateParams {
    fn default() -> Self {
        SeparateParams {
            stft: StftParams::default(),
            nmf: NmfParams::default(),
            mask_power: None,
            templates: Vec::new(),
            groups: None,
            spatial: true,
            spatial_iterations: 1,
            max_frames: 32_768,
        }
    }
}

/// Most re-estimations of the spatial covariances (each is one pass over the recording).
const MAX_SPATIAL_ITERATIONS: usize = 20;

/// The default exponent of the soft masks when they render the stems: the usual Wiener mask.
pub const DEFAULT_MASK_POWER: f32 = 2.0;

/// The default exponent of the masks whose source powers start the multichannel Wiener
/// filter, chosen on the quality corpus's tuning split (`docs/quality.md`): softer masks
/// leave more of the separation to the spatial model.
pub const SPATIAL_MASK_POWER: f32 = 0.5;

/// Name of the source made of the free components next to learned templates.
pub const OTHER: &str = "other";

impl SeparateParams {
    /// Checks every part.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check(&self) -> Result<(), ParamError> {
        self.stft.check()?;
        self.nmf_params().check()?;
        if self.max_frames < 256 {
            return Err(ParamError::OutOfRange {
                name: "max frames",
                expected: "at least 256",
                got: self.max_frames as f64,
            });
        }
        if let Some(p) = self.mask_power
            && !(p.is_finite() && p > 0.0)
        {
            return Err(ParamError::OutOfRange {
                name: "mask power",
                expected: "a finite number above 0",
                got: f64::from(p),
            });
        }
        if self.spatial_iterations > MAX_SPATIAL_ITERATIONS {
            return Err(ParamError::OutOfRange {
                name: "spatial iterations",
                expected: "at most 20",
                got: self.spatial_iterations as f64,
            });
        }
        if let Some(groups) = self.groups {
            if !self.templates.is_empty() {
                return Err(ParamError::Conflict(
                    "grouping into sources cannot be combined with learned templates",
                ));
            }
            if groups == 0 || groups > self.nmf.components() {
                return Err(ParamError::OutOfRange {
                    name: "sources",
                    expected: "between 1 and the number of components",
                    got: groups as f64,
                });
            }
        }
        for t in &self.templates {
            t.check_stft(&self.stft)?;
        }
        let mut names: Vec<&str> = self.templates.iter().map(|t| t.name.as_str()).collect();
        if !self.templates.is_empty() && self.nmf.components() > 0 {
            names.push(OTHER);
        }
        for (i, name) in names.iter().enumerate() {
            check_source_name(name)?;
            if names[..i].contains(name) {
                return Err(ParamError::SourceName {
                    name: name.to_string(),
                    reason: "is used for two sources",
                });
            }
        }
        Ok(())
    }

    /// The NMF parameters with the learned templates, if any, as fixed templates.
    fn nmf_params(&self) -> NmfParams {
        if self.templates.is_empty() {
            self.nmf.clone()
        } else {
            self.nmf
                .clone()
                .with_fixed_templates(templates::stack(&self.templates))
        }
    }
}

/// Refuses names that cannot be used as a file name on every platform.
pub(crate) fn check_source_name(name: &str) -> Result<(), ParamError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.starts_with('.') {
        Some("starts with a dot")
    } else if name.chars().any(|c| {
        matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()
    }) {
        Some("contains a character that is not allowed in file names")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ParamError::SourceName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// One output source: a name and the NMF components whose models it sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// File name without extension, e.g. `source1`.
    pub name: String,
    /// Indices of the components (columns of W) that make up this source.
    pub components: Vec<usize>,
}

/// A fitted separation of one recording, ready to render.
#[derive(Debug)]
pub struct Separation {
    /// The factorisation of the channel-summed magnitude spectrogram.
    pub nmf: Nmf,
    /// The sources to render, loudest first.
    pub sources: Vec<Source>,
    stft: Stft,
    mask_power: f32,
    spatial: Option<Spatial>,
}

/// The multichannel Wiener filter's settings: one spatial covariance per source.
#[derive(Debug, Clone)]
struct Spatial {
    /// Per source, bins × C × C.
    covariances: Vec<Array3<Complex32>>,
    /// Re-estimations of the covariances and powers on the mixture.
    iterations: usize,
}

/// Receives the rendered samples of one source, block by block (planar, one slice per channel).
pub trait StemSink: Send {
    /// Takes the next block.
    ///
    /// # Errors
    /// Whatever storing the block can fail with.
    fn write_block(&mut self, block: &[&[f32]]) -> Result<()>;
}

impl StemSink for WavStreamWriter {
    fn write_block(&mut self, block: &[&[f32]]) -> Result<()> {
        self.write(block)
    }
}

impl StemSink for Vec<Vec<f32>> {
    fn write_block(&mut self, block: &[&[f32]]) -> Result<()> {
        self.resize(block.len(), Vec::new());
        for (dst, src) in self.iter_mut().zip(block) {
            dst.extend_from_slice(src);
        }
        Ok(())
    }
}

/// Refuses audio that cannot be analysed with frames of `n_fft`: NaN or infinite samples, or
/// fewer samples than one frame.
///
/// # Errors
/// [`Error::NonFinite`], [`Error::TooShort`].
pub(crate) fn check_usable(audio: &Audio, n_fft: usize) -> Result<()> {
    audio.check_finite()?;
    if audio.len() < n_fft {
        return Err(Error::TooShort {
            frames: audio.len(),
            n_fft,
        });
    }
    Ok(())
}

/// Fits the factorisation of `audio` and names one source per component, loudest first.
///
/// # Errors
/// [`Error::Param`] for invalid parameters, [`Error::NonFinite`] for NaN or infinite samples,
/// [`Error::TooShort`] for audio shorter than one frame.
pub fn analyze(
    audio: &Audio,
    params: &SeparateParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Separation> {
    params.check()?;
    let stft = Stft::new(&params.stft)?;
    check_usable(audio, stft.n_fft())?;
    for t in &params.templates {
        t.check_compatible(&params.stft, audio.sample_rate)?;
    }
    let nmf = if stft.n_frames(audio.len()) <= params.max_frames {
        let spectrogram = channel_summed_magnitude(&stft, audio);
        nmf::fit_with_progress(spectrogram.t(), &params.nmf_params(), progress)?
    } else {
        fit_long(&stft, audio, params, progress)?
    };
    let sources = if !params.templates.is_empty() {
        named_sources(&params.templates, params.nmf.components())
    } else if let Some(groups) = params.groups {
        group::group_components(&nmf, groups, audio.sample_rate, stft.n_fft())
    } else {
        one_source_per_component(&nmf)
    };
    let spatial = spatial_model(params, audio.num_channels(), stft.n_bins(), &sources);
    Ok(Separation {
        nmf,
        sources,
        stft,
        mask_power: params.mask_power.unwrap_or(if spatial.is_some() {
            SPATIAL_MASK_POWER
        } else {
            DEFAULT_MASK_POWER
        }),
        spatial,
    })
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

/// Separates `audio` in memory: one [`Audio`] per source, loudest first, each with the
/// input's length, sample rate and channels. The sources add up to the input.
///
/// # Errors
/// As [`analyze`].
///
/// ```
/// use demix::audio::Audio;
/// use demix::nmf::NmfParams;
/// use demix::separate::{separate, SeparateParams};
/// // A low tone for the first second, then a high one, at 8 kHz.
/// let signal: Vec<f32> = (0..16000)
///     .map(|i| {
///         let t = i as f32 / 8000.0;
///         let f = if i < 8000 { 220.0 } else { 880.0 };
///         0.5 * (2.0 * std::f32::consts::PI * f * t).sin()
///     })
///     .collect();
/// let mix = Audio::new(8000, vec![signal.clone()])?;
/// let params = SeparateParams { nmf: NmfParams::new(2), ..Default::default() };
/// let stems = separate(&mix, &params)?;
/// assert_eq!(stems.len(), 2);
/// let sum: Vec<f32> = (0..16000).map(|i| stems[0].channels[0][i] + stems[1].channels[0][i]).collect();
/// assert!(sum.iter().zip(&signal).all(|(a, b)| (a - b).abs() < 1e-4));
/// # Ok::<(), demix::Error>(())
/// ```
pub fn separate(audio: &Audio, params: &SeparateParams) -> Result<Vec<Audio>> {
    analyze(audio, params, &mut |_| {})?.render_to_memory(audio)
}

/// Sums the magnitude spectrograms of all channels, shape `(frames, bins)`: what
/// [`analyze`] factorises.
pub fn channel_summed_magnitude(stft: &Stft, audio: &Audio) -> Array2<f32> {
    channel_summed_magnitude_of(stft, audio, 0..stft.n_frames(audio.len()))
}

/// [`channel_summed_magnitude`] of the frames `frames` only, shape `(frames.len(), bins)`.
pub fn channel_summed_magnitude_of(
    stft: &Stft,
    audio: &Audio,
    frames: Range<usize>,
) -> Array2<f32> {
    let bins = stft.n_bins();
    let mut v = Array2::<f32>::zeros((frames.len(), bins));
    crate::hugepages::advise(v.as_slice_mut().expect("fresh arrays are contiguous"));
    for channel in &audio.channels {
        v.axis_chunks_iter_mut(Axis(0), FRAMES_PER_TASK)
            .into_par_iter()
            .enumerate()
            .for_each_init(
                || (stft.scratch(), vec![Complex32::default(); bins]),
                |(scratch, spectrum), (chunk, mut rows)| {
                    for (i, mut row) in rows.rows_mut().into_iter().enumerate() {
                        let t = frames.start + chunk * FRAMES_PER_TASK + i;
                        stft.frame(channel, t, scratch, spectrum);
                        row.zip_mut_with(&ndarray::aview1(spectrum), |m, c| *m += c.norm());
                    }
                },
            );
    }
    v
}

/// Fits a recording too long to hold its whole spectrogram (more than `max_frames` frames):
/// the templates on an evenly spaced sample of `max_frames` frames (32 stretches of the
/// recording), then the activations of every frame, block by block of `max_frames`, with the
/// templates fixed. Memory stays at a few spectrograms of `max_frames` frames plus H.
fn fit_long(
    stft: &Stft,
    audio: &Audio,
    params: &SeparateParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Nmf> {
    const STRETCHES: usize = 32;
    let frames = stft.n_frames(audio.len());
    let max_frames = params.max_frames;
    let nmf_params = params.nmf_params();
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
        let model = nmf::fit_with_progress(sample.t(), &nmf_params, progress)?;
        (model.w, model.iterations, model.converged)
    } else {
        (templates::stack(&params.templates), 0, true)
    };
    let block_params = NmfParams::new(0)
        .with_loss(nmf_params.loss())
        .with_max_iter(nmf_params.max_iter())
        .with_tol(nmf_params.tol())
        .with_sparsity(nmf_params.sparsity())
        .with_smoothness(nmf_params.smoothness())
        .with_floor(nmf_params.floor())
        .with_fixed_templates(w.clone());
    // With the smoothness penalty, each block sees this many neighbouring frames on each side.
    let margin = if nmf_params.smoothness() > 0.0 {
        64.min(max_frames / 4)
    } else {
        0
    };
    let mut h = Array2::<f32>::zeros((w.ncols(), frames));
    let mut cost = 0.0;
    for start in (0..frames).step_by(max_frames) {
        let end = (start + max_frames).min(frames);
        let (lo, hi) = (start.saturating_sub(margin), (end + margin).min(frames));
        let v = channel_summed_magnitude_of(stft, audio, lo..hi);
        let block = nmf::fit(v.t(), &block_params)?;
        h.slice_mut(s![.., start..end])
            .assign(&block.h.slice(s![.., start - lo..end - lo]));
        cost += block.final_cost();
    }
    Ok(Nmf {
        w,
        h,
        cost_history: vec![nmf::CostPoint {
            iteration: template_iterations,
            cost,
        }],
        iterations: template_iterations,
        converged,
    })
}

/// Frames per parallel task in the spectrogram and render loops.
const FRAMES_PER_TASK: usize = 32;

/// One source per template set, in order, then `other` for the free components.
fn named_sources(templates: &[Templates], free: usize) -> Vec<Source> {
    let mut next = 0;
    let mut sources: Vec<Source> = templates
        .iter()
        .map(|t| {
            let components = (next..next + t.len()).collect();
            next += t.len();
            Source {
                name: t.name.clone(),
                components,
            }
        })
        .collect();
    if free > 0 {
        sources.push(Source {
            name: OTHER.to_string(),
            components: (next..next + free).collect(),
        });
    }
    sources
}

fn one_source_per_component(nmf: &Nmf) -> Vec<Source> {
    let singles = (0..nmf.w.ncols()).map(|c| vec![c]).collect();
    sources_loudest_first(singles, &nmf.component_energies())
}

/// Sources of the given groups of components, loudest first (by the summed `energy` of their
/// components; ties by component numbers), named `source1`, `source2`, ...
pub(crate) fn sources_loudest_first(mut members: Vec<Vec<usize>>, energy: &[f64]) -> Vec<Source> {
    let total = |m: &Vec<usize>| m.iter().map(|&c| energy[c]).sum::<f64>();
    members.sort_by(|a, b| total(b).total_cmp(&total(a)).then(a.cmp(b)));
    let width = members.len().to_string().len();
    members
        .into_iter()
        .enumerate()
        .map(|(i, components)| Source {
            name: format!("source{:0width$}", i + 1),
            components,
        })
        .collect()
}

/// The spectra, masks and (with the spatial model) source images of one block of frames.
struct BlockBuffers {
    /// channels × frames × bins.
    spectra: Array3<Complex32>,
    /// frames × sources × bins.
    masks: Array3<f32>,
    /// frames × sources × channels × bins (spatial model only).
    images: ndarray::Array4<Complex32>,
    /// Templates transposed, K × bins.
    wt: Array2<f32>,
}

impl BlockBuffers {
    fn new(separation: &Separation, audio: &Audio) -> BlockBuffers {
        let (bins, channels) = (separation.stft.n_bins(), audio.num_channels());
        let n_sources = separation.sources.len();
        let image_shape = if separation.spatial.is_some() {
            (FRAMES_PER_TASK, n_sources, channels, bins)
        } else {
            (0, 0, 0, 0)
        };
        BlockBuffers {
            spectra: Array3::zeros((channels, FRAMES_PER_TASK, bins)),
            masks: Array3::zeros((FRAMES_PER_TASK, n_sources, bins)),
            images: ndarray::Array4::zeros(image_shape),
            wt: separation.nmf.w.t().as_standard_layout().into_owned(),
        }
    }

    /// The spectra and soft masks of frames `start..start + block`.
    fn fill(&mut self, separation: &Separation, audio: &Audio, start: usize, block: usize) {
        let stft = &separation.stft;
        let bins = stft.n_bins();
        let n_sources = separation.sources.len();
        self.spectra
            .as_slice_mut()
            .expect("contiguous")
            .par_chunks_mut(bins)
            .enumerate()
            .filter(|(i, _)| i % FRAMES_PER_TASK < block)
            .for_each_init(
                || stft.scratch(),
                |scratch, (i, row)| {
                    let (channel, t) = (i / FRAMES_PER_TASK, i % FRAMES_PER_TASK);
                    stft.frame(&audio.channels[channel], start + t, scratch, row);
                },
            );
        let wt = &self.wt;
        self.masks
            .outer_iter_mut()
            .into_par_iter()
            .take(block)
            .enumerate()
            .for_each(|(t, mut m)| {
                separation.source_models(wt, start + t, &mut m);
                soft_masks_in_place(
                    m.as_slice_mut().expect("contiguous"),
                    n_sources,
                    separation.mask_power,
                );
            });
    }

    /// The multichannel Wiener filter of the filled block into `images`: source powers from
    /// the soft masks and the mixture's power, covariances `first`; with `refined`, the
    /// powers of that first estimate and the covariances `refined` give the result.
    fn wiener(
        &mut self,
        block: usize,
        first: &[Array3<Complex32>],
        refined: Option<&[Array3<Complex32>]>,
    ) {
        let (spectra, masks) = (&self.spectra, &self.masks);
        let (channels, _, bins) = spectra.dim();
        let n_sources = masks.dim().1;
        self.images
            .outer_iter_mut()
            .into_par_iter()
            .take(block)
            .enumerate()
            .for_each_init(
                || {
                    (
                        WienerWork::new(channels),
                        vec![Complex64::default(); channels],
                        vec![0f64; n_sources],
                        Array2::<Complex64>::zeros((n_sources, channels)),
                        Array2::<Complex64>::zeros((n_sources, channels)),
                        // The covariances of one bin, reused from bin to bin.
                        Vec::with_capacity(n_sources),
                    )
                },
                |(work, x, v, est, est2, r), (t, mut image)| {
                    for f in 0..bins {
                        for (c, xc) in x.iter_mut().enumerate() {
                            let s = spectra[[c, t, f]];
                            *xc = Complex64::new(f64::from(s.re), f64::from(s.im));
                        }
                        let power = x.iter().map(|a| a.norm_sqr()).sum::<f64>() / channels as f64;
                        for (j, vj) in v.iter_mut().enumerate() {
                            *vj = f64::from(masks[[t, j, f]]).powi(2) * power;
                        }
                        r.clear();
                        r.extend(first.iter().map(|r| r.slice(ndarray::s![f, .., ..])));
                        wiener_bin(x, v, r, work, &mut est.view_mut());
                        let result = if let Some(refined) = refined {
                            for (j, vj) in v.iter_mut().enumerate() {
                                *vj = est.row(j).iter().map(|a| a.norm_sqr()).sum::<f64>()
                                    / channels as f64;
                            }
                            r.clear();
                            r.extend(refined.iter().map(|r| r.slice(ndarray::s![f, .., ..])));
                            wiener_bin(x, v, r, work, &mut est2.view_mut());
                            &*est2
                        } else {
                            &*est
                        };
                        for j in 0..n_sources {
                            for c in 0..channels {
                                let a = result[[j, c]];
                                image[[j, c, f]] = Complex32::new(a.re as f32, a.im as f32);
                            }
                        }
                    }
                },
            );
    }

    /// Source `s`'s spectrum in `channel` at frame `t` of the block.
    fn source_spectrum(
        &self,
        spatial: bool,
        t: usize,
        s: usize,
        channel: usize,
        out: &mut [Complex32],
    ) {
        if spatial {
            out.copy_from_slice(
                self.images
                    .slice(ndarray::s![t, s, channel, ..])
                    .to_slice()
                    .expect("contiguous"),
            );
        } else {
            let x = self.spectra.slice(ndarray::s![channel, t, ..]);
            let m = self.masks.slice(ndarray::s![t, s, ..]);
            apply_mask(
                out,
                x.to_slice().expect("contiguous"),
                m.to_slice().expect("contiguous"),
            );
        }
    }
}

/// `out = x · m`, bin by bin.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn apply_mask(out: &mut [Complex32], x: &[Complex32], m: &[f32]) {
    let n = out.len();
    for ((y, &x), &m) in out.iter_mut().zip(&x[..n]).zip(&m[..n]) {
        *y = Complex32::new(x.re * m, x.im * m);
    }
}

/// Per-source rendering state: an overlap-add and an output buffer per channel.
struct SourceRender {
    ola: Vec<OverlapAdd>,
    out: Vec<Vec<f32>>,
    scratch: StftScratch,
    frame: Vec<f32>,
}

impl Separation {
    /// A separation of a factorisation made elsewhere (for example with fixed templates):
    /// `nmf` must come from a spectrogram made with `stft` (see [`channel_summed_magnitude`]),
    /// and each source lists components of `nmf`. Masks are `S_s^p / Σ S_r^p` with
    /// `p = mask_power`.
    ///
    /// # Panics
    /// If a source names a component that `nmf` does not have.
    pub fn new(nmf: Nmf, sources: Vec<Source>, stft: Stft, mask_power: f32) -> Separation {
        let k = nmf.w.ncols();
        assert!(
            sources.iter().flat_map(|s| &s.components).all(|&c| c < k),
            "sources name components 0..{k}"
        );
        Separation {
            nmf,
            sources,
            stft,
            mask_power,
            spatial: None,
        }
    }

    /// Whether the sources are rendered by the multichannel Wiener filter (learned spatial
    /// covariances) rather than by soft masks.
    pub fn is_spatial(&self) -> bool {
        self.spatial.is_some()
    }

    /// Number of sources.
    pub fn n_sources(&self) -> usize {
        self.sources.len()
    }

    /// The STFT the separation was computed with.
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// Renders every source of `audio` (the recording this separation was fitted to) into its
    /// sink, in blocks of frames, all sources at once. Memory does not grow with the length.
    ///
    /// # Errors
    /// The first error a sink returns.
    ///
    /// # Panics
    /// If there is not one sink per source, or `audio` has a different length from the one
    /// analysed.
    pub fn render<S: StemSink>(&self, audio: &Audio, sinks: &mut [S]) -> Result<()> {
        let stft = &self.stft;
        let (channels, len) = (audio.num_channels(), audio.len());
        let frames = stft.n_frames(len);
        let n_sources = self.sources.len();
        assert_eq!(sinks.len(), n_sources, "one sink per source");
        assert_eq!(frames, self.nmf.h.ncols(), "the audio that was analysed");

        let mut blocks = BlockBuffers::new(self, audio);
        // The Wiener filter's covariances, re-estimated on the mixture as many times as asked.
        let refined = self.spatial.as_ref().map(|sp| {
            let mut covariances = sp.covariances.clone();
            for _ in 0..sp.iterations {
                covariances = self.reestimate_covariances(&mut blocks, audio, &covariances);
            }
            covariances
        });

        let mut states: Vec<SourceRender> = (0..n_sources)
            .map(|_| SourceRender {
                ola: (0..channels).map(|_| stft.overlap_add(len)).collect(),
                out: vec![Vec::new(); channels],
                scratch: stft.scratch(),
                frame: vec![0.0; stft.n_fft()],
            })
            .collect();
        for start in (0..frames).step_by(FRAMES_PER_TASK) {
            let block = FRAMES_PER_TASK.min(frames - start);
            blocks.fill(self, audio, start, block);
            if let (Some(sp), Some(refined)) = (&self.spatial, &refined) {
                blocks.wiener(block, &sp.covariances, Some(refined));
            }
            let blocks = &blocks;
            states
                .par_iter_mut()
                .zip(sinks.par_iter_mut())
                .enumerate()
                .try_for_each(|(s, (state, sink))| {
                    for (channel, ola) in state.ola.iter_mut().enumerate() {
                        for t in 0..block {
                            stft.synthesize_with(&mut state.scratch, &mut state.frame, |dst| {
                                blocks.source_spectrum(refined.is_some(), t, s, channel, dst);
                            });
                            ola.push(&state.frame);
                        }
                        state.out[channel].clear();
                        ola.drain(&mut state.out[channel]);
                    }
                    let planes: Vec<&[f32]> = state.out.iter().map(Vec::as_slice).collect();
                    if planes[0].is_empty() {
                        Ok(())
                    } else {
                        sink.write_block(&planes)
                    }
                })?;
        }
        Ok(())
    }

    /// One expectation-maximisation step of the spatial model over the whole recording: the
    /// covariances of the sources' Wiener estimates under `covariances`.
    fn reestimate_covariances(
        &self,
        blocks: &mut BlockBuffers,
        audio: &Audio,
        covariances: &[Array3<Complex32>],
    ) -> Vec<Array3<Complex32>> {
        let (frames, bins, channels) =
            (self.nmf.h.ncols(), self.stft.n_bins(), audio.num_channels());
        let mut sums: Vec<CovarianceSum> = (0..self.sources.len())
            .map(|_| CovarianceSum::new(bins, channels))
            .collect();
        for start in (0..frames).step_by(FRAMES_PER_TASK) {
            let block = FRAMES_PER_TASK.min(frames - start);
            blocks.fill(self, audio, start, block);
            blocks.wiener(block, covariances, None);
            // In frame order, whatever the threads did.
            for t in 0..block {
                for (s, sum) in sums.iter_mut().enumerate() {
                    sum.add(blocks.images.slice(ndarray::s![t, s, .., ..]));
                }
            }
        }
        sums.iter().map(CovarianceSum::covariance).collect()
    }

    /// Model magnitudes of every source at frame `t` into `out` (sources × bins).
    fn source_models(&self, wt: &Array2<f32>, t: usize, out: &mut ArrayViewMut2<f32>) {
        out.fill(0.0);
        for (source, mut row) in self.sources.iter().zip(out.rows_mut()) {
            for &c in &source.components {
                let a = self.nmf.h[[c, t]];
                row.scaled_add(a, &wt.row(c));
            }
        }
    }

    /// Renders every source into memory.
    ///
    /// # Errors
    /// Never in practice; the signature matches [`Self::render`].
    pub fn render_to_memory(&self, audio: &Audio) -> Result<Vec<Audio>> {
        let mut sinks: Vec<Vec<Vec<f32>>> =
            vec![vec![Vec::new(); audio.num_channels()]; self.n_sources()];
        self.render(audio, &mut sinks)?;
        sinks
            .into_iter()
            .map(|channels| Audio::new(audio.sample_rate, channels))
            .collect()
    }
}

/// How stems are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputOptions {
    /// Sample format of the WAV files (default 16-bit).
    pub format: OutputFormat,
    /// Replace an existing track folder (default no).
    pub force: bool,
}

/// What [`separate_file`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackReport {
    /// The folder holding the stems.
    pub track_dir: PathBuf,
    /// Each stem written, in source order.
    pub stems: Vec<StemReport>,
    /// Iterations the NMF ran.
    pub iterations: usize,
    /// The final NMF cost.
    pub final_cost: f64,
    /// Whether the NMF stopped on the tolerance.
    pub converged: bool,
    /// The input's duration in seconds.
    pub duration_secs: f64,
}

/// One written stem.
#[derive(Debug, Clone, PartialEq)]
pub struct StemReport {
    /// Source name.
    pub name: String,
    /// The WAV file.
    pub path: PathBuf,
    /// Samples limited to full scale in integer output.
    pub clip: ClipReport,
}

/// Separates the audio file `input` into `out_dir/<input file stem>/<source>.wav`.
///
/// The stems are written into a temporary folder next to the track folder, which is renamed
/// into place when every file is complete: a failure leaves no partial output. An existing
/// track folder is replaced only with `output.force`, and never when the input lies inside it.
///
/// # Errors
/// Any error of [`audio::read_audio`] or [`analyze`]; [`Error::OutputExists`],
/// [`Error::OutputIsInput`] and [`Error::Write`] for the output.
///
/// ```
/// use demix::nmf::NmfParams;
/// use demix::separate::{separate_file, OutputOptions, SeparateParams};
/// let out = tempfile::tempdir()?;
/// let params = SeparateParams { nmf: NmfParams::new(2), ..Default::default() };
/// let report = separate_file("samples/mix.flac".as_ref(), out.path(), &params,
///                            &OutputOptions::default(), &mut |_| {})?;
/// assert_eq!(report.track_dir, out.path().join("mix"));
/// assert!(report.stems.iter().all(|stem| stem.path.is_file()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn separate_file(
    input: &Path,
    out_dir: &Path,
    params: &SeparateParams,
    output: &OutputOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrackReport> {
    params.check()?;
    let stem: OsString = input
        .file_stem()
        .map_or_else(|| "track".into(), |s| s.to_os_string());
    let track_dir = out_dir.join(&stem);
    check_destination(input, &track_dir, output.force)?;

    let audio = audio::read_audio(input)?;

    // The output folders are made before the long computation, so that an unwritable
    // destination fails at once; they are removed again if anything fails.
    let staging = atomic::Staging::new(out_dir, &stem)?;
    let separation = analyze(&audio, params, progress)?;
    let clips = write_stems(&separation, &audio, &staging.tmp_dir, output.format)?;
    check_destination(input, &track_dir, output.force)?;
    move_into_place(&staging.tmp_dir, &track_dir, &stem)?;
    staging.finish();
    Ok(TrackReport {
        stems: separation
            .sources
            .iter()
            .zip(clips)
            .map(|(source, clip)| StemReport {
                name: source.name.clone(),
                path: track_dir.join(format!("{}.wav", source.name)),
                clip,
            })
            .collect(),
        track_dir,
        iterations: separation.nmf.iterations,
        final_cost: separation.nmf.final_cost(),
        converged: separation.nmf.converged,
        duration_secs: audio.duration_secs(),
    })
}

/// Refuses a track folder that exists (without `force`) or that holds the input.
pub(crate) fn check_destination(input: &Path, track_dir: &Path, force: bool) -> Result<()> {
    if !track_dir.exists() {
        return Ok(());
    }
    let inside = match (input.canonicalize(), track_dir.canonicalize()) {
        (Ok(i), Ok(t)) => i.starts_with(t),
        _ => false,
    };
    if inside {
        return Err(Error::OutputIsInput(track_dir.to_path_buf()));
    }
    if !force {
        return Err(Error::OutputExists(track_dir.to_path_buf()));
    }
    Ok(())
}

/// Writes one WAV file per source of `separation` into `dir` (`<source name>.wav`), rendered
/// block by block; returns what each had to clip.
pub(crate) fn write_stems(
    separation: &Separation,
    audio: &Audio,
    dir: &Path,
    format: OutputFormat,
) -> Result<Vec<ClipReport>> {
    let mut writers = separation
        .sources
        .iter()
        .map(|s| {
            WavStreamWriter::create(
                dir.join(format!("{}.wav", s.name)),
                audio.num_channels(),
                audio.sample_rate,
                format,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    separation.render(audio, &mut writers)?;
    writers.into_iter().map(WavStreamWriter::finish).collect()
}

/// Renames the finished temporary folder to `track_dir`, replacing an existing one.
pub(crate) fn move_into_place(tmp_dir: &Path, track_dir: &Path, stem: &OsString) -> Result<()> {
    if !track_dir.exists() {
        return fs::rename(tmp_dir, track_dir).map_err(|e| Error::write(track_dir, e));
    }
    let old = track_dir.with_file_name(atomic::hidden_name(stem, "old"));
    fs::rename(track_dir, &old).map_err(|e| Error::write(track_dir, e))?;
    if let Err(e) = fs::rename(tmp_dir, track_dir) {
        let _ = fs::rename(&old, track_dir);
        return Err(Error::write(track_dir, e));
    }
    // What is replaced may be a file (or a link) that happens to have the track folder's name.
    let removed = match fs::symlink_metadata(&old) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&old),
        _ => fs::remove_file(&old),
    };
    removed.map_err(|e| Error::write(&old, e))
}
