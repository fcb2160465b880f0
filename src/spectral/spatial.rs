//! Spatial covariances and the multichannel Wiener filter.
//!
//! A source's spatial covariance `R(f)` is the C×C Hermitian matrix of how its sound is spread
//! over the channels at frequency `f` (`x xᴴ` averaged over frames and normalised by the mean
//! power per channel): a centred mono source gives a matrix of ones, a wide stereo source one
//! close to the identity. Learned from isolated recordings, these matrices let the
//! multichannel Wiener filter
//!
//! ```text
//! ŝ_j = v_j R_j (Σ_k v_k R_k)⁻¹ x
//! ```
//!
//! (Duong, Vincent & Gribonval 2010) put each time-frequency bin's energy where its spatial
//! signature says it belongs, where soft masks can only share it. `v_j` is the source's power
//! from the NMF model. The filters of a bin sum to the identity, so the stems still add up to
//! the mixture.

use ndarray::{Array3, ArrayView2, Axis};
use rayon::prelude::*;
use realfft::num_complex::{Complex32, Complex64};

use super::Stft;
use crate::audio::Audio;

/// Regularisation of the mixture covariance, relative to its trace.
pub(crate) const RIDGE: f64 = 1e-9;

/// Sums of `x xᴴ` and of the mean channel power per frequency bin, over frames.
#[derive(Debug, Clone)]
pub(crate) struct CovarianceSum {
    /// bins × C × C.
    outer: Array3<Complex64>,
    /// Per bin: summed mean power per channel.
    power: Vec<f64>,
}

impl CovarianceSum {
    pub(crate) fn new(bins: usize, channels: usize) -> CovarianceSum {
        CovarianceSum {
            outer: Array3::zeros((bins, channels, channels)),
            power: vec![0.0; bins],
        }
    }

    /// Adds frames in their order (`frame[[c, f]]` is channel `c`'s spectrum, channels ×
    /// bins); bins in parallel, each bin's sums frame by frame.
    pub(crate) fn add_frames(&mut self, frames: &[ArrayView2<Complex32>]) {
        let Some(channels) = frames.first().map(|f| f.nrows()) else {
            return;
        };
        self.outer
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(self.power.par_iter_mut())
            .enumerate()
            .with_min_len(64)
            .for_each(|(f, (mut m, p))| {
                for frame in frames {
                    let mut total = 0.0;
                    for a in 0..channels {
                        let xa = wide(frame[[a, f]]);
                        total += xa.norm_sqr();
                        for b in 0..channels {
                            m[[a, b]] += xa * wide(frame[[b, f]]).conj();
                        }
                    }
                    *p += total / channels as f64;
                }
            });
    }

    /// The normalised covariances, bins × C × C; a bin that never had energy gets the identity
    /// (no spatial preference).
    pub(crate) fn covariance(&self) -> Array3<Complex32> {
        let (bins, channels, _) = self.outer.dim();
        let mut r = Array3::<Complex32>::zeros((bins, channels, channels));
        for f in 0..bins {
            let p = self.power[f];
            for a in 0..channels {
                for b in 0..channels {
                    let v = if p > 0.0 {
                        self.outer[[f, a, b]] / p
                    } else if a == b {
                        Complex64::new(1.0, 0.0)
                    } else {
                        Complex64::new(0.0, 0.0)
                    };
                    r[[f, a, b]] = Complex32::new(v.re as f32, v.im as f32);
                }
            }
        }
        r
    }
}

/// The spatial covariance of recordings of one source, bins × C × C, all recordings having the
/// same channel count.
pub(crate) fn learn_covariance(stft: &Stft, examples: &[Audio]) -> Array3<Complex32> {
    /// Frames transformed at once (in parallel) before they are summed.
    const CHUNK: usize = 64;
    let channels = examples[0].num_channels();
    let bins = stft.n_bins();
    let mut sum = CovarianceSum::new(bins, channels);
    let mut spectra = Array3::<Complex32>::zeros((CHUNK, channels, bins));
    for audio in examples {
        let frames = stft.n_frames(audio.len());
        for start in (0..frames).step_by(CHUNK) {
            let n = CHUNK.min(frames - start);
            spectra
                .outer_iter_mut()
                .into_par_iter()
                .take(n)
                .enumerate()
                .for_each_init(
                    || stft.scratch(),
                    |scratch, (i, mut frame)| {
                        for (c, mut spectrum) in frame.rows_mut().into_iter().enumerate() {
                            let spectrum = spectrum.as_slice_mut().expect("rows are contiguous");
                            stft.frame(&audio.channels[c], start + i, scratch, spectrum);
                        }
                    },
                );
            let frames: Vec<_> = spectra.outer_iter().take(n).collect();
            sum.add_frames(&frames);
        }
    }
    sum.covariance()
}

/// The multichannel Wiener filter of one bin: the images `out[j * C + c]` of every source from
/// the mixture `x[c]`, source powers `v[j]` and spatial covariances `r[j]` (C×C, row-major).
/// The images add up to the mixture exactly; when every power is zero, the mixture is split
/// equally. Plain slices: this runs for every bin of every frame.
pub(crate) fn wiener_bin(
    x: &[Complex64],
    v: &[f64],
    r: &[&[Complex32]],
    work: &mut WienerWork,
    out: &mut [Complex64],
) {
    if x.len() == 2 {
        wiener_bin_stereo(x, v, r, work, out);
    } else {
        wiener_bin_any(x, v, r, work, out);
    }
}

/// [`wiener_bin`] of any number of channels.
fn wiener_bin_any(
    x: &[Complex64],
    v: &[f64],
    r: &[&[Complex32]],
    work: &mut WienerWork,
    out: &mut [Complex64],
) {
    let c = x.len();
    let j = v.len();
    let cx = &mut work.cx;
    cx.fill(Complex64::new(0.0, 0.0));
    for (s, rs) in r.iter().enumerate() {
        for a in 0..c {
            for b in 0..c {
                cx[a * c + b] += wide(rs[a * c + b]) * v[s];
            }
        }
    }
    let trace: f64 = (0..c).map(|a| cx[a * c + a].re).sum();
    if trace.is_nan() || trace <= 0.0 {
        for s in 0..j {
            for a in 0..c {
                out[s * c + a] = x[a] / j as f64;
            }
        }
        return;
    }
    let ridge = RIDGE * trace / c as f64;
    for a in 0..c {
        cx[a * c + a] += ridge;
    }
    // y = Cx⁻¹ x, then ŝ_j = v_j R_j y.
    solve(cx, c, x, &mut work.y, &mut work.lu);
    for (s, rs) in r.iter().enumerate() {
        for a in 0..c {
            let mut acc = Complex64::new(0.0, 0.0);
            for b in 0..c {
                acc += wide(rs[a * c + b]) * work.y[b];
            }
            out[s * c + a] = acc * v[s];
        }
    }
    // What the sources' spatial models cannot hold (a direction outside every covariance's
    // range, only kept by the ridge) is shared by power, so the images add up to the mixture.
    let total: f64 = v.iter().sum();
    for a in 0..c {
        let residual = x[a] - (0..j).map(|s| out[s * c + a]).sum::<Complex64>();
        for s in 0..j {
            out[s * c + a] += residual * (v[s] / total);
        }
    }
}

/// [`wiener_bin`] of two channels, the common case, its matrices held in registers: the same
/// arithmetic in the same order.
fn wiener_bin_stereo(
    x: &[Complex64],
    v: &[f64],
    r: &[&[Complex32]],
    work: &mut WienerWork,
    out: &mut [Complex64],
) {
    let mut cx = [Complex64::new(0.0, 0.0); 4];
    for (rs, &vs) in r.iter().zip(v) {
        for (sum, &rv) in cx.iter_mut().zip(&rs[..4]) {
            *sum += wide(rv) * vs;
        }
    }
    let j = v.len();
    let trace = cx[0].re + cx[3].re;
    if trace.is_nan() || trace <= 0.0 {
        for (o, &xa) in out.iter_mut().zip(x.iter().cycle()).take(2 * j) {
            *o = xa / j as f64;
        }
        return;
    }
    let ridge = RIDGE * trace / 2.0;
    cx[0] += ridge;
    cx[3] += ridge;
    let mut y = [Complex64::new(0.0, 0.0); 2];
    if !solve_2x2(&cx, x, &mut y) {
        solve(&cx, 2, x, &mut y, &mut work.lu);
    }
    let mut sum = [Complex64::new(0.0, 0.0); 2];
    for ((rs, &vs), o) in r.iter().zip(v).zip(out.chunks_exact_mut(2)) {
        o[0] = (wide(rs[0]) * y[0] + wide(rs[1]) * y[1]) * vs;
        o[1] = (wide(rs[2]) * y[0] + wide(rs[3]) * y[1]) * vs;
        sum[0] += o[0];
        sum[1] += o[1];
    }
    // As in [`wiener_bin`]: what no covariance holds is shared by power.
    let total: f64 = v.iter().sum();
    let residual = [x[0] - sum[0], x[1] - sum[1]];
    for (o, &vs) in out.chunks_exact_mut(2).zip(v) {
        o[0] += residual[0] * (vs / total);
        o[1] += residual[1] * (vs / total);
    }
}

/// `z` in double precision.
fn wide(z: Complex32) -> Complex64 {
    Complex64::new(f64::from(z.re), f64::from(z.im))
}

/// Scratch space for [`wiener_bin`].
pub(crate) struct WienerWork {
    cx: Vec<Complex64>,
    lu: Vec<Complex64>,
    y: Vec<Complex64>,
}

impl WienerWork {
    pub(crate) fn new(channels: usize) -> WienerWork {
        WienerWork {
            cx: vec![Complex64::new(0.0, 0.0); channels * channels],
            lu: vec![Complex64::new(0.0, 0.0); channels * channels],
            y: vec![Complex64::new(0.0, 0.0); channels],
        }
    }
}

/// Solves `a y = b` for a 2 × 2 complex matrix (row-major) by its inverse, the stereo case
/// of every bin of every frame; false (and `y` untouched) when its determinant is not a
/// usable divisor, for [`solve`] to handle.
fn solve_2x2(a: &[Complex64], b: &[Complex64], y: &mut [Complex64]) -> bool {
    let det = a[0] * a[3] - a[1] * a[2];
    let scale: f64 = a.iter().map(|v| v.norm_sqr()).sum();
    if !(det.norm_sqr() > 1e-24 * scale * scale && det.norm_sqr().is_finite()) {
        return false;
    }
    let inv = det.inv();
    y[0] = (a[3] * b[0] - a[1] * b[1]) * inv;
    y[1] = (a[0] * b[1] - a[2] * b[0]) * inv;
    true
}

/// Solves `a y = b` for a small complex matrix (row-major, n × n) by Gaussian elimination with
/// partial pivoting.
fn solve(a: &[Complex64], n: usize, b: &[Complex64], y: &mut [Complex64], lu: &mut [Complex64]) {
    lu.copy_from_slice(a);
    y.copy_from_slice(b);
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&p, &q| {
                lu[p * n + col]
                    .norm_sqr()
                    .total_cmp(&lu[q * n + col].norm_sqr())
            })
            .expect("n >= 1");
        if pivot != col {
            for k in 0..n {
                lu.swap(col * n + k, pivot * n + k);
            }
            y.swap(col, pivot);
        }
        let d = lu[col * n + col];
        if d.norm_sqr() == 0.0 {
            continue;
        }
        for row in col + 1..n {
            let factor = lu[row * n + col] / d;
            for k in col..n {
                let v = lu[col * n + k];
                lu[row * n + k] -= factor * v;
            }
            let v = y[col];
            y[row] -= factor * v;
        }
    }
    for row in (0..n).rev() {
        let mut acc = y[row];
        for k in row + 1..n {
            acc -= lu[row * n + k] * y[k];
        }
        let d = lu[row * n + row];
        y[row] = if d.norm_sqr() > 0.0 {
            acc / d
        } else {
            Complex64::new(0.0, 0.0)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    fn c(re: f64, im: f64) -> Complex64 {
        Complex64::new(re, im)
    }

    #[test]
    fn the_filters_of_a_bin_add_up_to_the_mixture() {
        let x = [c(0.3, -0.2), c(-0.1, 0.5)];
        let mono = array![
            [Complex32::new(1.0, 0.0), Complex32::new(1.0, 0.0)],
            [Complex32::new(1.0, 0.0), Complex32::new(1.0, 0.0)]
        ];
        let wide = array![
            [Complex32::new(1.2, 0.0), Complex32::new(0.1, 0.2)],
            [Complex32::new(0.1, -0.2), Complex32::new(0.8, 0.0)]
        ];
        let mut out = Array2::<Complex64>::zeros((2, 2));
        let mut work = WienerWork::new(2);
        wiener_bin(
            &x,
            &[0.7, 0.4],
            &[mono.as_slice().unwrap(), wide.as_slice().unwrap()],
            &mut work,
            out.as_slice_mut().unwrap(),
        );
        for a in 0..2 {
            let sum = out[[0, a]] + out[[1, a]];
            assert!((sum - x[a]).norm() < 1e-7, "{sum} vs {}", x[a]);
        }
    }

    #[test]
    fn a_side_signal_goes_to_the_wide_source_not_the_centred_one() {
        // Pure side (L = -R) cannot come from a centred mono source.
        let x = [c(0.5, 0.0), c(-0.5, 0.0)];
        let mono = Array2::from_elem((2, 2), Complex32::new(1.0, 0.0));
        let wide = Array2::from_diag(&ndarray::arr1(&[
            Complex32::new(1.0, 0.0),
            Complex32::new(1.0, 0.0),
        ]));
        let mut out = Array2::<Complex64>::zeros((2, 2));
        let mut work = WienerWork::new(2);
        wiener_bin(
            &x,
            &[1.0, 1.0],
            &[mono.as_slice().unwrap(), wide.as_slice().unwrap()],
            &mut work,
            out.as_slice_mut().unwrap(),
        );
        assert!(out[[0, 0]].norm() < 1e-6 && out[[0, 1]].norm() < 1e-6);
        assert!((out[[1, 0]] - x[0]).norm() < 1e-6);
    }

    #[test]
    fn the_stereo_filter_agrees_with_the_one_of_any_channel_count() {
        let x = [c(0.3, -0.2), c(-0.1, 0.5)];
        let mono = [Complex32::new(1.0, 0.0); 4];
        let wide = [
            Complex32::new(1.2, 0.0),
            Complex32::new(0.1, 0.2),
            Complex32::new(0.1, -0.2),
            Complex32::new(0.8, 0.0),
        ];
        // Both sources, one silent, and none (the mixture split equally).
        for v in [[0.7, 0.4], [0.0, 0.4], [0.0, 0.0]] {
            let (mut stereo, mut any) = ([c(0.0, 0.0); 4], [c(0.0, 0.0); 4]);
            let mut work = WienerWork::new(2);
            wiener_bin(&x, &v, &[&mono, &wide], &mut work, &mut stereo);
            wiener_bin_any(&x, &v, &[&mono, &wide], &mut work, &mut any);
            for (a, b) in stereo.iter().zip(&any) {
                assert!((a - b).norm() < 1e-12, "{v:?}: {a} against {b}");
            }
        }
    }

    #[test]
    fn the_stereo_inverse_agrees_with_elimination_and_declines_singular_matrices() {
        let a = [c(2.0, 0.0), c(0.3, 0.4), c(0.3, -0.4), c(1.0, 0.0)];
        let b = [c(1.0, -1.0), c(0.5, 2.0)];
        let (mut y, mut y2, mut lu) = (
            vec![c(0.0, 0.0); 2],
            vec![c(0.0, 0.0); 2],
            vec![c(0.0, 0.0); 4],
        );
        assert!(solve_2x2(&a, &b, &mut y));
        solve(&a, 2, &b, &mut y2, &mut lu);
        for k in 0..2 {
            assert!((y[k] - y2[k]).norm() < 1e-12);
        }
        // A centred mono covariance alone is singular: left to elimination.
        let ones = [c(1.0, 0.0); 4];
        assert!(!solve_2x2(&ones, &b, &mut y));
    }

    #[test]
    fn gaussian_elimination_solves_a_complex_system() {
        let a = [
            c(2.0, 1.0),
            c(0.5, 0.0),
            c(0.0, 0.0),
            c(0.1, -0.3),
            c(1.0, 0.0),
            c(0.2, 0.2),
            c(0.0, 0.0),
            c(0.3, 0.1),
            c(3.0, 0.0),
        ];
        let y_true = [c(1.0, -1.0), c(0.5, 2.0), c(-0.3, 0.0)];
        let b: Vec<Complex64> = (0..3)
            .map(|i| (0..3).map(|k| a[i * 3 + k] * y_true[k]).sum())
            .collect();
        let (mut y, mut lu) = (vec![c(0.0, 0.0); 3], vec![c(0.0, 0.0); 9]);
        solve(&a, 3, &b, &mut y, &mut lu);
        for k in 0..3 {
            assert!((y[k] - y_true[k]).norm() < 1e-12);
        }
    }
}
