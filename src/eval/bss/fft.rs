//! Real FFT plans of one length and spectra with their real and imaginary parts apart, with
//! the products the correlations and convolutions accumulate.

use std::sync::Arc;

use multiversion::multiversion;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// FFT length of the correlation and convolution blocks when the signal is long enough.
pub(super) const BLOCK_FFT: usize = 8192;

/// The smallest power of two at least `n`, and at least 2.
pub(super) fn pow2_at_least(n: usize) -> usize {
    n.max(2).next_power_of_two()
}

/// Real FFT plans of one length, shared by threads.
#[derive(Clone)]
pub(super) struct Plans {
    pub(super) len: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
}

impl Plans {
    pub(super) fn new(len: usize) -> Plans {
        let mut planner = RealFftPlanner::<f64>::new();
        Plans {
            len,
            forward: planner.plan_fft_forward(len),
            inverse: planner.plan_fft_inverse(len),
        }
    }

    pub(super) fn bins(&self) -> usize {
        self.len / 2 + 1
    }

    pub(super) fn scratch(&self) -> Vec<Complex<f64>> {
        let a = self.forward.get_scratch_len();
        let b = self.inverse.get_scratch_len();
        vec![Complex::default(); a.max(b)]
    }

    pub(super) fn forward(
        &self,
        input: &mut [f64],
        output: &mut [Complex<f64>],
        scratch: &mut [Complex<f64>],
    ) {
        self.forward
            .process_with_scratch(input, output, scratch)
            .expect("buffers of the planned length");
    }

    /// The inverse transform, unnormalised (`inverse(forward(x)) = len · x`).
    pub(super) fn inverse(
        &self,
        input: &mut [Complex<f64>],
        output: &mut [f64],
        scratch: &mut [Complex<f64>],
    ) {
        // The spectra of real signals have real DC and Nyquist bins; rounding may leave a
        // trace of an imaginary part, which the transform would refuse.
        input[0].im = 0.0;
        if self.len.is_multiple_of(2) {
            input[self.len / 2].im = 0.0;
        }
        self.inverse
            .process_with_scratch(input, output, scratch)
            .expect("buffers of the planned length");
    }
}

/// `s += x · conj(y)`, bin by bin, real and imaginary parts apart.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
pub(super) fn add_conjugate_product(
    (sr, si): (&mut [f64], &mut [f64]),
    (xr, xi): (&[f64], &[f64]),
    (yr, yi): (&[f64], &[f64]),
) {
    let x = xr.iter().zip(xi);
    let y = yr.iter().zip(yi);
    for (((sr, si), (xr, xi)), (yr, yi)) in sr.iter_mut().zip(si.iter_mut()).zip(x).zip(y) {
        *sr += xr * yr + xi * yi;
        *si += xi * yr - xr * yi;
    }
}

/// `s += a · b`, bin by bin, real and imaginary parts apart.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq", "x86_64+avx2+fma", "aarch64+neon"))]
fn add_product(
    (sr, si): (&mut [f64], &mut [f64]),
    (ar, ai): (&[f64], &[f64]),
    (br, bi): (&[f64], &[f64]),
) {
    let x = ar.iter().zip(ai);
    let y = br.iter().zip(bi);
    for (((sr, si), (ar, ai)), (br, bi)) in sr.iter_mut().zip(si.iter_mut()).zip(x).zip(y) {
        *sr += ar * br - ai * bi;
        *si += ar * bi + ai * br;
    }
}

/// A spectrum with its real and imaginary parts apart (so that products vectorize).
#[derive(Debug, Clone)]
pub(super) struct Spectrum {
    re: Vec<f64>,
    im: Vec<f64>,
}

impl Spectrum {
    pub(super) fn zeros(bins: usize) -> Spectrum {
        Spectrum {
            re: vec![0.0; bins],
            im: vec![0.0; bins],
        }
    }

    pub(super) fn set(&mut self, z: &[Complex<f64>]) {
        for ((r, i), z) in self.re.iter_mut().zip(self.im.iter_mut()).zip(z) {
            *r = z.re;
            *i = z.im;
        }
    }

    pub(super) fn clear(&mut self) {
        self.re.iter_mut().for_each(|v| *v = 0.0);
        self.im.iter_mut().for_each(|v| *v = 0.0);
    }

    /// `self += a · b`, bin by bin.
    pub(super) fn multiply_add(&mut self, a: &Spectrum, b: &Spectrum) {
        add_product((&mut self.re, &mut self.im), (&a.re, &a.im), (&b.re, &b.im));
    }

    pub(super) fn to_complex(&self, z: &mut [Complex<f64>]) {
        for ((z, &r), &i) in z.iter_mut().zip(&self.re).zip(&self.im) {
            *z = Complex::new(r, i);
        }
    }
}
