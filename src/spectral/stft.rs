//! Short-time Fourier transform and its inverse by weighted overlap-add.
//!
//! Frames are centred: frame `t` covers samples `t * hop - n_fft / 2 .. t * hop + n_fft / 2`,
//! with zeros outside the signal, so the first and last samples sit well inside a frame. The
//! inverse divides the overlap-added, windowed frames by the summed squared window, which
//! reconstructs any signal exactly (up to rounding) whenever every sample is covered by windows
//! with enough weight; [`StftParams::check`] refuses hops that would break that.

use std::ops::Range;
use std::sync::Arc;

use multiversion::multiversion;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::error::{Param, ParamError};

/// The analysis and synthesis window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    /// Periodic Hann window (the default).
    #[default]
    Hann,
    /// Periodic Hamming window.
    Hamming,
}

impl Window {
    /// The window's name, as used on the command line and in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Window::Hann => "hann",
            Window::Hamming => "hamming",
        }
    }

    /// The periodic window of length `n`.
    pub fn coefficients(self, n: usize) -> Vec<f32> {
        let (a0, a1) = match self {
            Window::Hann => (0.5, 0.5),
            Window::Hamming => (0.54, 0.46),
        };
        (0..n)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
                (a0 - a1 * phase.cos()) as f32
            })
            .collect()
    }
}

/// STFT settings: frame length, hop and window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StftParams {
    n_fft: usize,
    hop: Option<usize>,
    window: Window,
}

impl Default for StftParams {
    fn default() -> Self {
        StftParams::new(2048)
    }
}

impl StftParams {
    /// Smallest accepted frame length.
    pub const MIN_N_FFT: usize = 4;
    /// The longest frame accepted: 2^20 samples.
    pub const MAX_N_FFT: usize = 1 << 20;

    /// Frame length `n_fft` (default 2048), hop `n_fft / 4`, periodic Hann window.
    pub fn new(n_fft: usize) -> StftParams {
        StftParams {
            n_fft,
            hop: None,
            window: Window::Hann,
        }
    }

    /// Sets the hop in samples (default `n_fft / 4`).
    pub fn with_hop(mut self, hop: usize) -> StftParams {
        self.hop = Some(hop);
        self
    }

    /// Sets the window (default [`Window::Hann`]).
    pub fn with_window(mut self, window: Window) -> StftParams {
        self.window = window;
        self
    }

    /// The frame length.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// The hop: as set, or `n_fft / 4` (at least 1).
    pub fn hop(&self) -> usize {
        self.hop.unwrap_or((self.n_fft / 4).max(1))
    }

    /// The window.
    pub fn window(&self) -> Window {
        self.window
    }

    /// Checks the settings: `n_fft` from [`Self::MIN_N_FFT`] to [`Self::MAX_N_FFT`], a hop between 1 and
    /// `n_fft`, and one small enough for overlap-add to reconstruct every sample.
    ///
    /// # Errors
    /// The [`ParamError`] naming the first problem.
    pub fn check(&self) -> Result<(), ParamError> {
        let (n_fft, hop) = (self.n_fft, self.hop());
        if n_fft < Self::MIN_N_FFT {
            return Err(ParamError::FftTooSmall {
                min: Self::MIN_N_FFT,
                got: n_fft,
            });
        }
        // Before the window is made: a frame of this length is 24 s at 44.1 kHz, and longer
        // ones only cost memory and time before the input is found too short.
        if n_fft > Self::MAX_N_FFT {
            return Err(ParamError::OutOfRange {
                param: Param::NFft,
                expected: "at most 1048576",
                got: n_fft as f64,
            });
        }
        if hop == 0 || hop > n_fft {
            return Err(ParamError::HopOutOfRange { hop, n_fft });
        }
        let window = self.window.coefficients(n_fft);
        if !covers(&window, hop) {
            // The coverage only shrinks as the hop grows, so the largest good hop is found by
            // bisection between a good one (1) and this bad one.
            let (mut good, mut bad) = (1, hop);
            while bad - good > 1 {
                let mid = (good + bad) / 2;
                if covers(&window, mid) {
                    good = mid;
                } else {
                    bad = mid;
                }
            }
            return Err(ParamError::HopTooLarge {
                hop,
                n_fft,
                window: self.window.name(),
                max_hop: good,
            });
        }
        Ok(())
    }
}

/// Smallest summed squared window weight, relative to the window's peak, that the inverse
/// accepts for any sample: below it, rounding errors in a frame are amplified too much.
const MIN_COVERAGE: f32 = 0.01;

/// Whether every sample between two neighbouring frame centres gets squared-window weight of at
/// least [`MIN_COVERAGE`] from those two frames alone (other frames only add to it). Samples
/// after the last centre are within `n_fft / 4` of it by [`Stft::n_frames`], where a Hann or
/// Hamming window still has weight above one half.
fn covers(window: &[f32], hop: usize) -> bool {
    let n = window.len() as isize;
    let peak = window.iter().fold(0f32, |m, &w| m.max(w * w));
    let at = |i: isize| {
        if (0..n).contains(&i) {
            window[i as usize].powi(2)
        } else {
            0.0
        }
    };
    (0..=hop as isize).all(|a| at(n / 2 + a) + at(n / 2 + a - hop as isize) >= MIN_COVERAGE * peak)
}

/// A planned STFT: real FFTs planned once, the window, and frame geometry. Cheap to share
/// between threads; each thread brings its own [`StftScratch`].
#[derive(Clone)]
pub struct Stft {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("n_fft", &self.n_fft)
            .field("hop", &self.hop)
            .finish_non_exhaustive()
    }
}

/// Per-thread working buffers for [`Stft::frame`] and [`Stft::synthesize`].
pub struct StftScratch {
    time: Vec<f32>,
    spectrum: Vec<Complex32>,
    fft: Vec<Complex32>,
}

impl Stft {
    /// Plans the FFTs for checked parameters.
    ///
    /// # Errors
    /// Whatever [`StftParams::check`] finds.
    ///
    /// ```
    /// use demix::spectral::{Stft, StftParams};
    /// let stft = Stft::new(&StftParams::new(512).with_hop(128))?;
    /// let signal: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.1).sin()).collect();
    /// let spectrum = stft.forward(&signal); // (frames, bins)
    /// assert_eq!(spectrum.dim(), (stft.n_frames(signal.len()), 257));
    /// let back = stft.inverse(spectrum.view(), signal.len());
    /// let err = back.iter().zip(&signal).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    /// assert!(err < 1e-5);
    /// # Ok::<(), demix::ParamError>(())
    /// ```
    pub fn new(params: &StftParams) -> Result<Stft, ParamError> {
        params.check()?;
        let n_fft = params.n_fft();
        let mut planner = RealFftPlanner::<f32>::new();
        Ok(Stft {
            n_fft,
            hop: params.hop(),
            window: params.window().coefficients(n_fft),
            forward: planner.plan_fft_forward(n_fft),
            inverse: planner.plan_fft_inverse(n_fft),
        })
    }

    /// Frame length.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// Hop between frames.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Number of frequency bins, `n_fft / 2 + 1`.
    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// The analysis window.
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// Number of frames for a signal of `len` samples: centres at `0, hop, 2 hop, ...` up to
    /// `len` (as librosa with `center=True`), plus one more if the last samples would otherwise
    /// lie more than `n_fft / 4` past the last centre.
    pub fn n_frames(&self, len: usize) -> usize {
        let frames = 1 + len / self.hop;
        let last_centre = (frames - 1) * self.hop;
        if len > 0 && len - 1 > last_centre + self.n_fft / 4 {
            frames + 1
        } else {
            frames
        }
    }

    /// Fresh working buffers for this plan.
    pub fn scratch(&self) -> StftScratch {
        StftScratch {
            time: vec![0.0; self.n_fft],
            spectrum: self.forward.make_output_vec(),
            fft: vec![
                Complex32::default();
                self.forward
                    .get_scratch_len()
                    .max(self.inverse.get_scratch_len())
            ],
        }
    }

    /// The spectrum of frame `t` of `signal` into `out` (length [`Self::n_bins`]).
    ///
    /// # Panics
    /// If `out` has the wrong length.
    pub fn frame(
        &self,
        signal: &[f32],
        t: usize,
        scratch: &mut StftScratch,
        out: &mut [Complex32],
    ) {
        self.frame_in(signal, 0, signal.len(), t, scratch, out);
    }

    /// The spectrum of frame `t` of a signal of `len` samples of which `samples` holds those
    /// from `offset` on (enough of them for the frame: see [`Self::samples_of`]): the same
    /// values as [`Self::frame`] of the whole signal.
    ///
    /// # Panics
    /// If `out` has the wrong length, or `samples` lacks a sample the frame needs.
    pub fn frame_in(
        &self,
        samples: &[f32],
        offset: usize,
        len: usize,
        t: usize,
        scratch: &mut StftScratch,
        out: &mut [Complex32],
    ) {
        let half = self.n_fft / 2;
        let start = (t * self.hop) as isize - half as isize;
        match usize::try_from(start) {
            // The usual case: the frame lies inside the signal.
            Ok(start) if start >= offset && start + self.n_fft <= offset + samples.len() => {
                let start = start - offset;
                multiply(
                    &mut scratch.time,
                    &self.window,
                    &samples[start..start + self.n_fft],
                );
            }
            _ => {
                for (i, (dst, &w)) in scratch.time.iter_mut().zip(&self.window).enumerate() {
                    let j = start + i as isize;
                    *dst = if j >= 0 && (j as usize) < len {
                        w * samples[j as usize - offset]
                    } else {
                        0.0
                    };
                }
            }
        }
        self.forward
            .process_with_scratch(&mut scratch.time, out, &mut scratch.fft)
            .expect("buffer sizes come from the plan");
    }

    /// The samples that frames `frames` of a signal of `len` samples use.
    pub fn samples_of(&self, frames: std::ops::Range<usize>, len: usize) -> std::ops::Range<usize> {
        if frames.is_empty() {
            return 0..0;
        }
        let (half, last) = (self.n_fft / 2, (frames.end - 1) * self.hop);
        let start = (frames.start * self.hop).saturating_sub(half).min(len);
        start..(last + self.n_fft - half).clamp(start, len)
    }

    /// The complex STFT of `signal`, shape `(frames, bins)`. Frames are computed in parallel.
    pub fn forward(&self, signal: &[f32]) -> Array2<Complex32> {
        let (frames, bins) = (self.n_frames(signal.len()), self.n_bins());
        let mut data = Vec::with_capacity(frames * bins);
        crate::hugepages::advise(data.spare_capacity_mut());
        data.par_extend(rayon::iter::repeat_n(Complex32::default(), frames * bins));
        data.par_chunks_mut(bins * FRAMES_PER_TASK)
            .enumerate()
            .for_each_init(
                || self.scratch(),
                |scratch, (chunk, rows)| {
                    for (i, row) in rows.chunks_mut(bins).enumerate() {
                        self.frame(signal, chunk * FRAMES_PER_TASK + i, scratch, row);
                    }
                },
            );
        Array2::from_shape_vec((frames, bins), data).expect("frames x bins values")
    }

    /// Magnitudes of the STFT of `signal`, shape `(frames, bins)`.
    pub fn magnitude(&self, signal: &[f32]) -> Array2<f32> {
        self.forward(signal).mapv(super::magnitude)
    }

    /// The windowed time frame of one spectrum, ready for [`OverlapAdd::push`]: the inverse
    /// FFT, scaled by `1 / n_fft`. The imaginary parts of the DC and Nyquist bins are ignored.
    ///
    /// # Panics
    /// If `spectrum` does not have [`Self::n_bins`] values or `out` [`Self::n_fft`].
    pub fn synthesize(&self, spectrum: &[Complex32], scratch: &mut StftScratch, out: &mut [f32]) {
        self.synthesize_with(scratch, out, |dst| dst.copy_from_slice(spectrum));
    }

    /// [`Self::synthesize`] of the spectrum that `fill` writes (into a buffer of
    /// [`Self::n_bins`] values), saving a copy.
    pub(crate) fn synthesize_with(
        &self,
        scratch: &mut StftScratch,
        out: &mut [f32],
        fill: impl FnOnce(&mut [Complex32]),
    ) {
        fill(&mut scratch.spectrum);
        scratch.spectrum[0].im = 0.0;
        if self.n_fft.is_multiple_of(2) {
            scratch.spectrum[self.n_fft / 2].im = 0.0;
        }
        self.inverse
            .process_with_scratch(&mut scratch.spectrum, out, &mut scratch.fft)
            .expect("buffer sizes come from the plan");
    }

    /// A streaming overlap-add for a signal of `len` samples; see [`OverlapAdd`].
    pub fn overlap_add(&self, len: usize) -> OverlapAdd {
        let scale = 1.0 / self.n_fft as f32;
        let mut ola = OverlapAdd {
            n_fft: self.n_fft,
            hop: self.hop,
            len,
            total_frames: self.n_frames(len),
            synthesis: self.window.iter().map(|w| w * scale).collect(),
            window_sq: self.window.iter().map(|w| w * w).collect(),
            interior: Vec::new(),
            acc: Vec::new(),
            base: 0,
            frames: 0,
        };
        let interior = ola.interior_range();
        if interior.len() >= self.hop {
            ola.interior = (0..self.hop)
                .map(|j| ola.norm_at(interior.start + j))
                .collect();
        }
        ola
    }

    /// The inverse STFT of `spectrum` (shape `(frames, bins)`) as a signal of `len` samples.
    ///
    /// # Panics
    /// If the spectrum does not have [`Self::n_frames`]`(len)` frames of [`Self::n_bins`].
    pub fn inverse(&self, spectrum: ArrayView2<Complex32>, len: usize) -> Vec<f32> {
        assert_eq!(spectrum.dim(), (self.n_frames(len), self.n_bins()));
        let mut ola = self.overlap_add(len);
        let mut out = Vec::with_capacity(len);
        crate::hugepages::advise(out.spare_capacity_mut());
        let mut frames = vec![0f32; self.n_fft * FRAMES_PER_TASK];
        let rows: Vec<_> = spectrum.rows().into_iter().collect();
        for block in rows.chunks(FRAMES_PER_TASK) {
            frames
                .par_chunks_mut(self.n_fft)
                .zip(block.par_iter())
                .for_each_init(
                    || (self.scratch(), Vec::new()),
                    |(scratch, row_buf), (frame, row)| {
                        let row = match row.as_slice() {
                            Some(row) => row,
                            None => {
                                row_buf.clear();
                                row_buf.extend(row.iter());
                                row_buf.as_slice()
                            }
                        };
                        self.synthesize(row, scratch, frame);
                    },
                );
            for frame in frames.chunks(self.n_fft).take(block.len()) {
                ola.push(frame);
            }
            ola.drain(&mut out);
        }
        out
    }
}

/// Frames handled by one parallel task.
const FRAMES_PER_TASK: usize = 64;

/// Streaming weighted overlap-add: push the time frames of a signal in order (each from
/// [`Stft::synthesize`]), drain finished samples whenever convenient. Memory stays at about
/// one frame plus what has not been drained.
pub struct OverlapAdd {
    n_fft: usize,
    hop: usize,
    len: usize,
    total_frames: usize,
    synthesis: Vec<f32>,
    window_sq: Vec<f32>,
    /// The summed squared window at the interior positions (see [`Self::interior_range`]),
    /// which repeats with the hop: entry `j` is that of positions `start + j + m · hop`. Empty
    /// when the signal has too few interior positions.
    interior: Vec<f32>,
    /// Windowed frame sums for padded positions `base..base + acc.len()`.
    acc: Vec<f32>,
    base: usize,
    frames: usize,
}

impl OverlapAdd {
    /// Adds the next frame (`n_fft` samples, unwindowed, as [`Stft::synthesize`] gives them).
    ///
    /// # Panics
    /// If more frames are pushed than the signal has, or the frame has the wrong length.
    pub fn push(&mut self, frame: &[f32]) {
        assert!(
            self.frames < self.total_frames,
            "more frames than the signal has"
        );
        assert_eq!(frame.len(), self.n_fft);
        let start = self.frames * self.hop - self.base;
        if self.acc.len() < start + self.n_fft {
            self.acc.resize(start + self.n_fft, 0.0);
        }
        add_product(
            &mut self.acc[start..start + self.n_fft],
            &self.synthesis,
            frame,
        );
        self.frames += 1;
    }

    /// Padded positions covered by every frame that could cover them (none is missing at
    /// either end of the signal): their summed squared window repeats with the hop.
    fn interior_range(&self) -> Range<usize> {
        (self.n_fft - 1)..(self.total_frames * self.hop).max(self.n_fft - 1)
    }

    /// The squared window summed over the frames that cover padded position `p`, in frame
    /// order: exactly what adding each frame's squared window as it comes would give.
    fn norm_at(&self, p: usize) -> f32 {
        let first = (p + 1).saturating_sub(self.n_fft).div_ceil(self.hop);
        let last = (p / self.hop).min(self.total_frames - 1);
        (first..=last).fold(0.0, |sum, t| sum + self.window_sq[p - t * self.hop])
    }

    /// Appends to `out` every output sample that no later frame can change.
    pub fn drain(&mut self, out: &mut Vec<f32>) {
        let ready_end = if self.frames == self.total_frames {
            self.base + self.acc.len()
        } else {
            self.frames * self.hop
        };
        let ready = ready_end.saturating_sub(self.base).min(self.acc.len());
        // Output sample i is padded position i + n_fft / 2.
        let offset = self.n_fft / 2;
        let start = self.base.max(offset);
        let end = (self.base + ready).min(offset + self.len);
        if start < end {
            out.reserve(end - start);
            let interior = if self.interior.is_empty() {
                0..0
            } else {
                self.interior_range()
            };
            let mut p = start;
            while p < end {
                if interior.contains(&p) {
                    // A run of interior positions up to the next period of the table.
                    let j = (p - interior.start) % self.hop;
                    let n = (self.hop - j).min(end - p).min(interior.end - p);
                    let acc = &self.acc[p - self.base..p - self.base + n];
                    divide_into(out, acc, &self.interior[j..j + n]);
                    p += n;
                } else {
                    let norm = self.norm_at(p);
                    let acc = &self.acc[p - self.base..p - self.base + 1];
                    divide_into(out, acc, &[norm]);
                    p += 1;
                }
            }
        }
        self.acc.drain(..ready);
        self.base += ready;
    }

    /// Whether every frame has been pushed.
    pub fn is_complete(&self) -> bool {
        self.frames == self.total_frames
    }
}

/// `out = a · b`, element by element.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn multiply(out: &mut [f32], a: &[f32], b: &[f32]) {
    let n = out.len();
    for ((o, &a), &b) in out.iter_mut().zip(&a[..n]).zip(&b[..n]) {
        *o = a * b;
    }
}

/// `acc += a · b`, element by element.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn add_product(acc: &mut [f32], a: &[f32], b: &[f32]) {
    let n = acc.len();
    for ((s, &a), &b) in acc.iter_mut().zip(&a[..n]).zip(&b[..n]) {
        *s += a * b;
    }
}

/// Appends `acc / norm` to `out`, element by element, with 0 where the norm is too small to
/// divide by.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn divide_into(out: &mut Vec<f32>, acc: &[f32], norm: &[f32]) {
    out.extend(acc.iter().zip(norm).map(
        |(&a, &n)| {
            if n > f32::MIN_POSITIVE { a / n } else { 0.0 }
        },
    ));
}
