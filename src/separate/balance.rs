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
    let (k, channels, bins) = (w.ncols(), input.num_channels(), w.nrows());
    // W by rows (bins × K) for the model, and W² by columns (K × bins) for the masks' sums.
    let rows: Vec<f64> = w.iter().map(|&a| f64::from(a)).collect();
    let squares: Vec<f64> = w.t().iter().map(|&a| f64::from(a) * f64::from(a)).collect();
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
                    let (mut model, mut ratio) = (vec![0f64; bins], vec![0f64; bins]);
                    for t in task..(task + FRAMES_PER_TASK).min(chunk.end) {
                        let h: Vec<f64> = (h.column(first + t - chunk.start).iter())
                            .map(|&a| f64::from(a))
                            .collect();
                        for (m, row) in model.iter_mut().zip(rows.chunks_exact(k)) {
                            *m = row.iter().zip(&h).map(|(w, h)| w * h).sum();
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
                            // (m_c |X|)² = (w_c h_c)² |X|² / V²; no component sounds where V = 0.
                            for ((r, &m), x) in ratio.iter_mut().zip(&model).zip(&spectrum) {
                                *r = if m > 0.0 {
                                    f64::from(x.norm_sqr()) / (m * m)
                                } else {
                                    0.0
                                };
                            }
                            for (c, column) in squares.chunks_exact(bins).enumerate() {
                                let sum: f64 = column.iter().zip(&ratio).map(|(w, r)| w * r).sum();
                                part[[c, ch]] += h[c] * h[c] * sum;
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
