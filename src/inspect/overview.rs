//! An inspection reduced to what its charts draw, in memory that does not grow with the
//! recording: the spectrogram and the activations reduced to the pixel columns of their
//! charts, gathered block by block.

use ndarray::{Array2, ArrayView2, Axis};

use super::{Component, Inspection, charts};
use crate::formats::midi::NoteEvent;

/// Per pixel column of a chart, the largest value of every row of the data over the frames
/// the column covers, gathered from blocks of frames in any number of calls.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnMax {
    /// For each column, the frames `a..b` it covers (at least one).
    spans: Vec<(usize, usize)>,
    /// columns × rows of the data.
    values: Array2<f32>,
}

impl ColumnMax {
    /// `columns` pixel columns over `frames` frames of `width` values each, all 0 so far.
    pub(crate) fn new(columns: usize, frames: usize, width: usize) -> ColumnMax {
        ColumnMax {
            spans: column_frames(columns, frames),
            values: Array2::zeros((columns, width)),
        }
    }

    /// Adds frames `start..start + block.nrows()` (frames × width).
    pub(crate) fn add(&mut self, start: usize, block: ArrayView2<'_, f32>) {
        let end = start + block.nrows();
        let first = self.spans.partition_point(|&(_, b)| b <= start);
        for (&(a, b), mut column) in self.spans[first..]
            .iter()
            .zip(self.values.outer_iter_mut().skip(first))
        {
            if a >= end {
                break;
            }
            for t in a.max(start)..b.min(end) {
                column.zip_mut_with(&block.row(t - start), |m, &v| *m = m.max(v));
            }
        }
    }

    /// columns × width.
    pub(crate) fn values(&self) -> &Array2<f32> {
        &self.values
    }
}

/// For each of `cols` pixel columns, the frames `a..b` it covers (at least one).
pub(crate) fn column_frames(cols: usize, frames: usize) -> Vec<(usize, usize)> {
    (0..cols)
        .map(|c| {
            let a = c * frames / cols;
            let b = ((c + 1) * frames / cols).max(a + 1).min(frames);
            (a.min(frames - 1), b)
        })
        .collect()
}

/// An inspection reduced to what its charts draw: the templates, the components and their
/// notes, and the spectrogram and activations reduced to the pixel columns of their charts.
/// Made by [`Inspection::overview`], and by [`inspect_file`](super::inspect_file) without
/// holding the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    pub(crate) sample_rate: u32,
    pub(crate) n_fft: usize,
    pub(crate) hop: usize,
    pub(crate) frames: usize,
    pub(crate) notes_mode: bool,
    pub(crate) components: Vec<Component>,
    /// Templates, bins × K, in the order of `components`.
    pub(crate) w: Array2<f32>,
    /// The note events with their components.
    pub(crate) transcription: Vec<(usize, NoteEvent)>,
    /// The largest magnitude of every bin in every pixel column of the spectrogram chart,
    /// columns × bins.
    pub(crate) spectrum: Array2<f32>,
    /// The largest activation of every component in every pixel column of the activations
    /// chart, columns × K.
    pub(crate) activations: Array2<f32>,
}

impl Overview {
    /// Hz between frequency bins.
    pub fn bin_hz(&self) -> f64 {
        f64::from(self.sample_rate) / self.n_fft as f64
    }

    /// Seconds between frames.
    pub fn frame_s(&self) -> f64 {
        self.hop as f64 / f64::from(self.sample_rate)
    }

    /// The input's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Frames of the analysis.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Every component, in the order of the templates.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// Whether the components are note templates.
    pub fn has_note_templates(&self) -> bool {
        self.notes_mode
    }
}

impl Inspection {
    /// The inspection reduced to what its charts draw.
    pub fn overview(&self) -> Overview {
        let frames = self.nmf.h.ncols();
        let mut spectrum = ColumnMax::new(
            charts::spectrogram_columns(self.sample_rate, self.stft.n_fft()),
            frames,
            self.stft.n_bins(),
        );
        spectrum.add(0, self.spectrogram.view());
        let mut activations = ColumnMax::new(
            charts::activation_columns(&self.components, self.notes_mode),
            frames,
            self.components.len(),
        );
        activations.add(0, self.nmf.h.t());
        Overview {
            sample_rate: self.sample_rate,
            n_fft: self.stft.n_fft(),
            hop: self.stft.hop(),
            frames,
            notes_mode: self.notes_mode,
            components: self.components.clone(),
            w: self.nmf.w.clone(),
            transcription: self.transcription(),
            spectrum: spectrum.values,
            activations: activations.values,
        }
    }
}

/// The activations' pixel columns gathered in the order of the fit, put in the order of the
/// components: `order[i]` is the fit's index of component `i`.
pub(crate) fn reorder(activations: &ColumnMax, order: &[usize]) -> Array2<f32> {
    activations.values.select(Axis(1), order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    /// The largest value of each row over each column's frames, from the whole at once.
    fn whole(data: &Array2<f32>, columns: usize) -> Array2<f32> {
        let spans = column_frames(columns, data.nrows());
        Array2::from_shape_fn((columns, data.ncols()), |(c, j)| {
            let (a, b) = spans[c];
            data.slice(s![a..b, j]).iter().copied().fold(0.0, f32::max)
        })
    }

    #[test]
    fn columns_gathered_block_by_block_are_those_of_the_whole() {
        for (frames, columns) in [(1000, 97), (50, 97), (97, 97), (3, 1), (1, 5)] {
            let data = Array2::from_shape_fn((frames, 4), |(t, j)| ((t * 31 + j * 7) % 23) as f32);
            for block in [1, 7, 64, 1000] {
                let mut gathered = ColumnMax::new(columns, frames, 4);
                for start in (0..frames).step_by(block) {
                    let end = (start + block).min(frames);
                    gathered.add(start, data.slice(s![start..end, ..]));
                }
                assert_eq!(
                    gathered.values(),
                    &whole(&data, columns),
                    "{frames} frames, {columns} columns, blocks of {block}"
                );
            }
        }
    }
}
