//! Long recordings in bounded memory: the spectrogram of chosen ranges of frames from one pass
//! over a recording, the evenly spaced sample of frames templates are fitted on, and the
//! activations of every frame solved block by block with the templates fixed.

use std::ops::Range;

use ndarray::{Array2, ArrayView2, s};

use super::coarse::{CoarseFit, fit_activations};
use super::stream::Input;
use crate::error::Result;
use crate::nmf::NmfParams;
use crate::spectral::{Stft, channel_summed_magnitude_into};

/// Frames of spectrogram computed from one excerpt of a streamed recording.
const CHUNK_FRAMES: usize = 2048;

/// Stretches of the recording in the template sample.
const STRETCHES: usize = 32;

/// How a recording is cut into blocks: at most `max_frames` frames fitted at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocks {
    /// Most frames fitted at once (at least 256).
    pub(crate) max_frames: usize,
}

impl Blocks {
    /// Frames of spectrogram computed from one excerpt: fewer than an activation block has
    /// (tests reach several excerpts per block with small blocks).
    pub(crate) fn chunk_frames(self) -> usize {
        CHUNK_FRAMES.min(self.max_frames / 4)
    }

    /// The channel-summed magnitude spectrogram of each range of `ranges` (increasing), one
    /// after the other, rows `0..` of a `rows` × bins array, from one pass over `input`.
    ///
    /// # Errors
    /// Those of the decoder.
    pub(crate) fn spectrogram(
        self,
        input: Input<'_>,
        stft: &Stft,
        rows: usize,
        ranges: impl IntoIterator<Item = Range<usize>>,
    ) -> Result<Array2<f32>> {
        let mut v = Array2::<f32>::zeros((rows, stft.n_bins()));
        crate::hugepages::advise(v.as_slice_mut().expect("fresh arrays are contiguous"));
        let mut pass = input.pass()?;
        let mut row = 0;
        let step = self.chunk_frames();
        for range in ranges {
            for start in range.clone().step_by(step) {
                let chunk = start..(start + step).min(range.end);
                let n = chunk.len();
                let excerpt = pass.excerpt(stft, chunk.clone(), start)?;
                channel_summed_magnitude_into(
                    stft,
                    excerpt,
                    chunk,
                    v.slice_mut(s![row..row + n, ..]),
                );
                row += n;
            }
        }
        assert_eq!(row, rows, "the ranges fill the rows");
        Ok(v)
    }

    /// The spectrogram of the template sample of a recording of `frames` frames (more than
    /// `max_frames`): 32 evenly spaced stretches, `max_frames` frames in all (rounded down to
    /// whole stretches), from one pass over `input`.
    ///
    /// # Errors
    /// Those of the decoder.
    pub(crate) fn sample(
        self,
        input: Input<'_>,
        stft: &Stft,
        frames: usize,
    ) -> Result<Array2<f32>> {
        let ranges = self.sample_ranges(frames);
        let rows = ranges.iter().map(ExactSizeIterator::len).sum();
        self.spectrogram(input, stft, rows, ranges)
    }

    /// The frames of the template sample of a recording of `frames` frames (more than
    /// `max_frames`): 32 evenly spaced stretches, in order.
    pub(crate) fn sample_ranges(self, frames: usize) -> Vec<Range<usize>> {
        let stretch = self.max_frames / STRETCHES;
        (0..STRETCHES)
            .map(|i| (frames - stretch) * i / (STRETCHES - 1))
            .map(|start| start..start + stretch)
            .collect()
    }

    /// Solves the activations of every frame of `input`, block by block of `max_frames`, with
    /// the templates `w` fixed and the rest of the fit as `params` (begun on bands with
    /// `coarse`, as [`fit_activations`]), in one pass. Each block's
    /// spectrogram (its own frames, without the margins that the smoothness penalty and
    /// convolutive templates add) goes to
    /// `sink.data` before its fit, its activations (K × frames) to `sink.activations` after.
    /// Returns the summed final cost of the blocks.
    ///
    /// # Errors
    /// Those of the decoder, the fit and the sink.
    pub(crate) fn solve(
        self,
        input: Input<'_>,
        stft: &Stft,
        params: &NmfParams,
        w: &Array2<f32>,
        coarse: Option<&CoarseFit>,
        sink: &mut dyn BlockSink,
    ) -> Result<f64> {
        let max_frames = self.max_frames;
        // Convolutive templates (only ever learned ones: their lengths match `w`).
        let lengths = params.template_lengths();
        // The fit's own settings (loss, stopping, penalties, floor, memory, step exponent)
        // carried over whole, so that none is left behind: only what the blocks fit changes,
        // every column of `w` fixed and one start (with no free component, starts differ in
        // nothing).
        let block_params = NmfParams {
            components: 0,
            fixed_w: Some(w.clone()),
            fixed_frames: lengths.iter().any(|&len| len > 1).then(|| lengths.clone()),
            initial: None,
            restarts: 1,
            row_weights: None,
            ..params.clone()
        };
        // With the smoothness penalty, each block sees this many neighbouring frames on each
        // side; with convolutive templates of L frames, at least 2 (L − 1): the sounds struck
        // before a block and heard in it are modelled, and the first frames of the margin,
        // which must also explain the tails of earlier hits, reach no frame of the block.
        let smooth = if params.smoothness() > 0.0 {
            64.min(max_frames / 4)
        } else {
            0
        };
        let longest = lengths.into_iter().max().unwrap_or(1);
        let margin = smooth.max(2 * (longest - 1));
        let frames = stft.n_frames(input.len());
        let mut cost = 0.0;
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
                channel_summed_magnitude_into(stft, excerpt, chunk, v.slice_mut(s![rows, ..]));
            }
            sink.data(start, v.slice(s![start - lo..end - lo, ..]))?;
            let block = fit_activations(v, &block_params, coarse, &mut |_| {})?;
            sink.activations(start, block.h.slice(s![.., start - lo..end - lo]))?;
            cost += block.final_cost();
        }
        Ok(cost)
    }
}

/// Receives the blocks of [`Blocks::solve`], in frame order.
pub(crate) trait BlockSink {
    /// The magnitude spectrogram of frames `start..`, frames × bins.
    ///
    /// # Errors
    /// Whatever keeping it can fail with.
    fn data(&mut self, start: usize, v: ArrayView2<'_, f32>) -> Result<()>;

    /// The activations of frames `start..`, K × frames.
    ///
    /// # Errors
    /// Whatever keeping them can fail with.
    fn activations(&mut self, start: usize, h: ArrayView2<'_, f32>) -> Result<()>;
}
