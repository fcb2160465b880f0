//! The spectral stages: the STFT and its inverse ([`Stft`]), the magnitude spectrogram a
//! separation factorises, the soft masks, and the multichannel Wiener filter.
//!
//! Nothing here knows of NMF: these stages turn audio into spectra and spectra back into audio.

use std::ops::Range;

use ndarray::{Array2, Axis};
use rayon::prelude::*;
use realfft::num_complex::Complex32;

use crate::audio::Audio;
use crate::error::{Error, Result};

mod bands;
mod mask;
pub(crate) mod spatial;
pub(crate) mod stereo;
mod stft;

pub use bands::Bands;
pub use mask::soft_masks_in_place;
pub use stft::{OverlapAdd, Stft, StftParams, StftScratch, Window};

/// Refuses audio that cannot be analysed with frames of `n_fft`: NaN or infinite samples, or
/// fewer samples than one frame.
///
/// # Errors
/// [`Error::NonFinite`], [`Error::TooShort`].
pub(crate) fn check_usable(audio: &Audio, n_fft: usize) -> Result<()> {
    audio.check_finite()?;
    check_length(audio.len(), n_fft)
}

/// Refuses a recording of `len` samples per channel, fewer than one frame of `n_fft`.
///
/// # Errors
/// [`Error::TooShort`].
pub(crate) fn check_length(len: usize, n_fft: usize) -> Result<()> {
    if len < n_fft {
        return Err(Error::TooShort { frames: len, n_fft });
    }
    Ok(())
}

/// Sums the magnitude spectrograms of all channels, shape `(frames, bins)`: what a
/// separation factorises.
pub fn channel_summed_magnitude(stft: &Stft, audio: &Audio) -> Array2<f32> {
    channel_summed_magnitude_of(stft, audio, 0..stft.n_frames(audio.len()))
}

/// [`channel_summed_magnitude`] of the frames `frames` only, shape `(frames.len(), bins)`.
pub fn channel_summed_magnitude_of(
    stft: &Stft,
    audio: &Audio,
    frames: Range<usize>,
) -> Array2<f32> {
    let mut v = Array2::<f32>::zeros((frames.len(), stft.n_bins()));
    crate::hugepages::advise(v.as_slice_mut().expect("fresh arrays are contiguous"));
    channel_summed_magnitude_into(stft, Excerpt::whole(audio), frames, v.view_mut());
    v
}

/// Some of the samples of every channel of a recording: those from `offset` on.
#[derive(Debug, Clone, Copy)]
pub struct Excerpt<'a> {
    /// The samples of each channel from `offset` on, all of one length.
    pub channels: &'a [Vec<f32>],
    /// The index of their first sample in the recording.
    pub offset: usize,
    /// Samples per channel of the whole recording.
    pub len: usize,
}

impl<'a> Excerpt<'a> {
    /// All of `audio`.
    pub fn whole(audio: &'a Audio) -> Excerpt<'a> {
        Excerpt {
            channels: &audio.channels,
            offset: 0,
            len: audio.len(),
        }
    }
}

/// Writes the channel-summed magnitudes of frames `frames` of `excerpt` (which must hold their
/// samples, [`Stft::samples_of`]) into `out` (`frames.len()` × bins), whatever it held (an
/// excerpt without channels leaves it as it was). The first channel's pass writes without
/// reading, so a fresh buffer's pages are faulted in once.
pub fn channel_summed_magnitude_into(
    stft: &Stft,
    excerpt: Excerpt<'_>,
    frames: Range<usize>,
    mut out: ndarray::ArrayViewMut2<'_, f32>,
) {
    let bins = stft.n_bins();
    assert_eq!(out.dim(), (frames.len(), bins), "one row per frame");
    for (index, channel) in excerpt.channels.iter().enumerate() {
        out.axis_chunks_iter_mut(Axis(0), FRAMES_PER_TASK)
            .into_par_iter()
            .enumerate()
            .for_each_init(
                || (stft.scratch(), vec![Complex32::default(); bins]),
                |(scratch, spectrum), (chunk, mut rows)| {
                    for (i, mut row) in rows.rows_mut().into_iter().enumerate() {
                        let t = frames.start + chunk * FRAMES_PER_TASK + i;
                        stft.frame_in(channel, excerpt.offset, excerpt.len, t, scratch, spectrum);
                        let spectrum = ndarray::aview1(spectrum);
                        if index == 0 {
                            row.zip_mut_with(&spectrum, |m, &c| *m = magnitude(c));
                        } else {
                            row.zip_mut_with(&spectrum, |m, &c| *m += magnitude(c));
                        }
                    }
                },
            );
    }
}

/// `|c|`, as the C library's `hypotf` gives it on glibc (the square root of the sum of the
/// squares in double precision, rounded once to single; exact squares, so no overflow), in a
/// form the compiler vectorises.
#[inline(always)]
pub(crate) fn magnitude(c: Complex32) -> f32 {
    let (re, im) = (f64::from(c.re), f64::from(c.im));
    (re * re + im * im).sqrt() as f32
}

/// Frames per parallel task in the spectrogram and render loops.
pub(crate) const FRAMES_PER_TASK: usize = 32;
