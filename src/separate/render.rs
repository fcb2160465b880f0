//! Rendering: soft masks (or the multichannel Wiener filter) applied to the mixture's STFT
//! block by block, and the inverse STFT of every source into its sink.

use ndarray::{Array2, Array3, ArrayView2, Axis, s};
use rayon::prelude::*;
use realfft::num_complex::Complex32;

use super::stream::{Activations, Input, Spill};
use super::wiener;
use crate::audio::{Audio, StemWriter, WavStreamWriter};
use crate::error::Result;
use crate::nmf::{Nmf, RankReport, gemm};
use crate::sources::Source;
use crate::spectral::spatial::CovarianceSum;
use crate::spectral::{
    Excerpt, FRAMES_PER_TASK, OverlapAdd, Stft, StftScratch, soft_masks_in_place,
};

/// A fitted separation of one recording, ready to render.
#[derive(Debug)]
pub struct Separation {
    /// The factorisation of the channel-summed magnitude spectrogram.
    pub nmf: Nmf,
    /// The sources to render, loudest first.
    pub sources: Vec<Source>,
    pub(super) stft: Stft,
    pub(super) mask_power: f32,
    pub(super) spatial: Option<Spatial>,
    /// The activations, when they were written to a file rather than kept in `nmf.h`.
    pub(super) spill: Option<Spill>,
    /// The rank selection that chose the number of components (`-k auto`), if one ran.
    pub rank: Option<RankReport>,
}

/// The multichannel Wiener filter's settings: one spatial covariance per source.
#[derive(Debug, Clone)]
pub(super) struct Spatial {
    /// Per source, bins × C × C.
    pub(super) covariances: Vec<Array3<Complex32>>,
    /// Re-estimations of the covariances and powers on the mixture.
    pub(super) iterations: usize,
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

impl StemSink for StemWriter {
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

/// The spectra, masks and (with the spatial model) source images of one block of frames.
struct BlockBuffers {
    /// channels × frames × bins.
    spectra: Array3<Complex32>,
    /// frames × sources × bins.
    masks: Array3<f32>,
    /// frames × sources × channels × bins (spatial model only).
    images: ndarray::Array4<Complex32>,
    /// Per source, its templates transposed (its components × bins).
    wt: Vec<Array2<f32>>,
}

impl BlockBuffers {
    fn new(separation: &Separation, channels: usize) -> BlockBuffers {
        let bins = separation.stft.n_bins();
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
            wt: separation
                .sources
                .iter()
                .map(|source| separation.nmf.w.t().select(Axis(0), &source.components))
                .collect(),
        }
    }

    /// The spectra and soft masks of frames `start..start + block`, from the samples in
    /// `excerpt` and the activations `h` (K × block) of these frames.
    fn fill(
        &mut self,
        separation: &Separation,
        excerpt: Excerpt<'_>,
        h: ArrayView2<f32>,
        start: usize,
        block: usize,
    ) {
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
                    stft.frame_in(
                        &excerpt.channels[channel],
                        excerpt.offset,
                        excerpt.len,
                        start + t,
                        scratch,
                        row,
                    );
                },
            );
        source_models(&separation.sources, &self.wt, h, &mut self.masks);
        self.masks
            .outer_iter_mut()
            .into_par_iter()
            .take(block)
            .for_each(|mut m| {
                soft_masks_in_place(
                    m.as_slice_mut().expect("contiguous"),
                    n_sources,
                    separation.mask_power,
                );
            });
    }

    /// The multichannel Wiener filter of the filled block into `images`: see
    /// [`wiener::BlockFilter`].
    fn wiener(
        &mut self,
        block: usize,
        first: &wiener::Covariances<'_>,
        refined: Option<&wiener::Covariances<'_>>,
    ) {
        let filter = wiener::BlockFilter::new(&self.spectra, &self.masks, first, refined);
        filter.filter(block, &mut self.images);
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
    /// `nmf` must come from a spectrogram made with `stft` (see [`crate::spectral::channel_summed_magnitude`]),
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
            spill: None,
            rank: None,
        }
    }

    /// This separation with its activations read from `spill` as it renders (its `nmf.h`
    /// then empty).
    pub(crate) fn with_spill(mut self, spill: Spill) -> Separation {
        self.spill = Some(spill);
        self
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
        self.render_input(Input::Memory(audio), sinks)
    }

    /// [`Self::render`] of a recording in memory or read in passes.
    pub(crate) fn render_input<S: StemSink>(
        &self,
        input: Input<'_>,
        sinks: &mut [S],
    ) -> Result<()> {
        let stft = &self.stft;
        let (channels, len) = (input.num_channels(), input.len());
        let frames = stft.n_frames(len);
        let n_sources = self.sources.len();
        assert_eq!(sinks.len(), n_sources, "one sink per source");
        assert_eq!(frames, self.frames(), "the audio that was analysed");

        let mut blocks = BlockBuffers::new(self, channels);
        // The Wiener filter's covariances, re-estimated on the mixture as many times as asked.
        let refined = match &self.spatial {
            Some(sp) => {
                let mut covariances = sp.covariances.clone();
                for _ in 0..sp.iterations {
                    covariances = self.reestimate_covariances(&mut blocks, input, &covariances)?;
                }
                Some(covariances)
            }
            None => None,
        };
        let mut states: Vec<SourceRender> = (0..n_sources)
            .map(|_| SourceRender {
                ola: (0..channels).map(|_| stft.overlap_add(len)).collect(),
                out: vec![Vec::new(); channels],
                scratch: stft.scratch(),
                frame: vec![0.0; stft.n_fft()],
            })
            .collect();
        let bins = stft.n_bins();
        let wiener = match (&self.spatial, &refined) {
            (Some(sp), Some(refined)) => Some((
                wiener::Covariances::new(&sp.covariances, channels, bins),
                wiener::Covariances::new(refined, channels, bins),
            )),
            _ => None,
        };
        self.for_each_block(&mut blocks, input, |blocks, block| {
            if let Some((first, refined)) = &wiener {
                blocks.wiener(block, first, Some(refined));
            }
            let blocks = &*blocks;
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
                })
        })
    }

    /// One expectation-maximisation step of the spatial model over the whole recording: the
    /// covariances of the sources' Wiener estimates under `covariances`.
    fn reestimate_covariances(
        &self,
        blocks: &mut BlockBuffers,
        input: Input<'_>,
        covariances: &[Array3<Complex32>],
    ) -> Result<Vec<Array3<Complex32>>> {
        let (bins, channels) = (self.stft.n_bins(), input.num_channels());
        let mut sums: Vec<CovarianceSum> = (0..self.sources.len())
            .map(|_| CovarianceSum::new(bins, channels))
            .collect();
        let first = wiener::Covariances::new(covariances, channels, bins);
        self.for_each_block(blocks, input, |blocks, block| {
            blocks.wiener(block, &first, None);
            // In frame order, whatever the threads did.
            for (s, sum) in sums.iter_mut().enumerate() {
                let frames: Vec<_> = (0..block)
                    .map(|t| blocks.images.slice(ndarray::s![t, s, .., ..]))
                    .collect();
                sum.add_frames(&frames);
            }
            Ok(())
        })?;
        Ok(sums.iter().map(CovarianceSum::covariance).collect())
    }

    /// One pass over the recording: fills `blocks` with each block of frames (the mixture's
    /// spectra and the sources' models from the activations) and hands it to `f` with its
    /// length.
    fn for_each_block(
        &self,
        blocks: &mut BlockBuffers,
        input: Input<'_>,
        mut f: impl FnMut(&mut BlockBuffers, usize) -> Result<()>,
    ) -> Result<()> {
        let frames = self.frames();
        let mut pass = input.pass()?;
        let mut activations = self.activations()?;
        for start in (0..frames).step_by(FRAMES_PER_TASK) {
            let block = FRAMES_PER_TASK.min(frames - start);
            let excerpt = pass.excerpt(&self.stft, start..start + block, start)?;
            blocks.fill(
                self,
                excerpt,
                activations.block(start, block)?,
                start,
                block,
            );
            f(blocks, block)?;
        }
        Ok(())
    }

    /// Frames of the recording analysed.
    fn frames(&self) -> usize {
        self.spill.as_ref().map_or(self.nmf.h.ncols(), |s| s.frames)
    }

    /// The activations, from the first frame.
    fn activations(&self) -> Result<Activations<'_>> {
        Ok(match &self.spill {
            Some(spill) => Activations::Spilled(spill.reader()?),
            None => Activations::Memory(self.nmf.h.view()),
        })
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

/// Bins per task of [`source_models`].
const MODEL_BINS: usize = 128;

/// The model magnitudes of every source over a block into `masks` (frames × sources × bins,
/// the block's frames first): per source, its activations in `h` (K × frames) times its
/// templates `wt`, one product per source and strip of bins.
fn source_models(
    sources: &[Source],
    wt: &[Array2<f32>],
    h: ArrayView2<f32>,
    masks: &mut Array3<f32>,
) {
    let frames = h.ncols();
    let hs: Vec<Array2<f32>> = sources
        .iter()
        .map(|source| h.select(Axis(0), &source.components))
        .collect();
    masks
        .slice_mut(s![..frames, .., ..])
        .axis_chunks_iter_mut(Axis(2), MODEL_BINS)
        .into_par_iter()
        .enumerate()
        .for_each(|(strip, mut out)| {
            let bins = strip * MODEL_BINS..strip * MODEL_BINS + out.dim().2;
            for (source, (h, wt)) in hs.iter().zip(wt).enumerate() {
                let wt = wt.slice(s![.., bins.clone()]);
                let mut out = out.index_axis_mut(Axis(1), source);
                gemm(1.0, &h.t(), &wt, 0.0, &mut out);
            }
        });
}
