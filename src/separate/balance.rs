//! How the components of a blind fit are spread over the channels: the energy each one's soft
//! mask takes from each channel of the recording. Two instruments of one timbre panned apart
//! differ there, and nowhere else.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use realfft::num_complex::Complex32;

use super::blocks::Blocks;
use super::stream::Input;
use crate::error::Result;
use crate::spectral::{FRAMES_PER_TASK, Stft};

/// The energy `Σ (m_c |X_ch|)²` that the soft mask `m_c = w_c h_c / (W H)` of each component
/// `c` takes from each channel `ch` of `input`, over the frames of `ranges` (increasing),
/// whose activations are the columns of `h` one range after the other; K × channels.
/// Deterministic whatever the number of threads.
///
/// # Errors
/// Those of the decoder.
pub(crate) fn channel_energies(
    blocks: Blocks,
    input: Input<'_>,
    stft: &Stft,
    ranges: &[Range<usize>],
    w: ArrayView2<f32>,
    h: ArrayView2<f32>,
) -> Result<Array2<f64>> {
    let (k, channels) = (w.ncols(), input.num_channels());
    let mut energies = Array2::<f64>::zeros((k, channels));
    let mut pass = input.pass()?;
    let mut column = 0;
    for range in ranges {
        for start in range.clone().step_by(blocks.chunk_frames()) {
            let chunk = start..(start + blocks.chunk_frames()).min(range.end);
            let excerpt = pass.excerpt(stft, chunk.clone(), start)?;
            let first = column;
            // Fixed tasks, summed in order: the same sums on any number of threads.
            let parts: Vec<Array2<f64>> = chunk
                .clone()
                .step_by(FRAMES_PER_TASK)
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|task| {
                    let mut part = Array2::<f64>::zeros((k, channels));
                    let mut scratch = stft.scratch();
                    let mut spectrum = vec![Complex32::default(); stft.n_bins()];
                    let mut model = vec![0f64; stft.n_bins()];
                    for t in task..(task + FRAMES_PER_TASK).min(chunk.end) {
                        let h = h.column(first + t - chunk.start);
                        for (f, m) in model.iter_mut().enumerate() {
                            *m = (0..k).map(|c| f64::from(w[[f, c]] * h[c])).sum();
                        }
                        for (ch, samples) in excerpt.channels.iter().enumerate() {
                            stft.frame_in(
                                samples,
                                excerpt.offset,
                                excerpt.len,
                                t,
                                &mut scratch,
                                &mut spectrum,
                            );
                            for (f, (&m, x)) in model.iter().zip(&spectrum).enumerate() {
                                if m > 0.0 {
                                    let ratio = f64::from(x.norm_sqr()) / (m * m);
                                    for c in 0..k {
                                        let part_c = f64::from(w[[f, c]] * h[c]);
                                        part[[c, ch]] += part_c * part_c * ratio;
                                    }
                                }
                            }
                        }
                    }
                    part
                })
                .collect();
            for part in parts {
                energies += &part;
            }
            column += chunk.len();
        }
    }
    assert_eq!(column, h.ncols(), "the ranges cover the activations");
    Ok(energies)
}
