//! The multichannel Wiener filter of one block of frames: each bin's source images from the
//! mixture, the soft masks and the spatial covariances, stereo bins eight at a time.

use ndarray::{Array3, Array4, ArrayViewMut3};
use rayon::prelude::*;
use realfft::num_complex::{Complex32, Complex64};

use crate::spectral::spatial::{WienerWork, wiener_bin};
use crate::spectral::stereo;

/// The spatial covariances of every source (each bins × C × C), and in stereo the same laid
/// out for [`stereo::wiener_lanes`]: made once for a pass over the recording.
pub(super) struct Covariances<'a> {
    per_bin: &'a [Array3<Complex32>],
    /// [`stereo::covariance_lanes`] of `per_bin` (empty unless in stereo).
    lanes: Vec<[stereo::Lanes; 4]>,
}

impl<'a> Covariances<'a> {
    /// `per_bin` for a recording of `channels` and spectra of `bins`.
    pub(super) fn new(per_bin: &'a [Array3<Complex32>], channels: usize, bins: usize) -> Self {
        Covariances {
            per_bin,
            lanes: stereo::covariance_lanes(per_bin, lanes_end(channels, bins)),
        }
    }
}

/// The bins filtered [`stereo::LANES`] at a time, `0..lanes_end`: none but in stereo.
fn lanes_end(channels: usize, bins: usize) -> usize {
    if channels == 2 {
        bins / stereo::LANES * stereo::LANES
    } else {
        0
    }
}

/// The multichannel Wiener filter of a block of frames: source powers from the soft masks and
/// the mixture's power, covariances `first`; with `refined`, the powers of that first estimate
/// and the covariances `refined` give the result. Stereo bins go [`stereo::LANES`] at a time
/// through [`stereo::wiener_lanes`], which gives the same results as [`wiener_bin`] and leaves
/// it the bins it cannot filter.
pub(super) struct BlockFilter<'a> {
    /// channels × frames × bins.
    spectra: &'a Array3<Complex32>,
    /// frames × sources × bins.
    masks: &'a Array3<f32>,
    first: &'a Covariances<'a>,
    refined: Option<&'a Covariances<'a>>,
    /// Bins filtered [`stereo::LANES`] at a time: `0..lanes_end`.
    lanes_end: usize,
}

/// Scratch space of [`BlockFilter::bin`].
struct BinWork<'a> {
    wiener: WienerWork,
    /// The covariances of one bin.
    r: Vec<&'a [Complex32]>,
    x: Vec<Complex64>,
    v: Vec<f64>,
    est: Vec<Complex64>,
    est2: Vec<Complex64>,
}

impl BinWork<'_> {
    fn new<'a>(channels: usize, sources: usize) -> BinWork<'a> {
        BinWork {
            wiener: WienerWork::new(channels),
            r: Vec::with_capacity(sources),
            x: vec![Complex64::default(); channels],
            v: vec![0.0; sources],
            est: vec![Complex64::default(); sources * channels],
            est2: vec![Complex64::default(); sources * channels],
        }
    }
}

/// Scratch space of [`BlockFilter::lanes`].
struct LaneWork {
    v: Vec<[f64; stereo::LANES]>,
    est: Vec<[stereo::Lanes; 2]>,
    est2: Vec<[stereo::Lanes; 2]>,
}

impl LaneWork {
    fn new(sources: usize) -> LaneWork {
        LaneWork {
            v: vec![[0.0; stereo::LANES]; sources],
            est: vec![[stereo::Lanes::ZERO; 2]; sources],
            est2: vec![[stereo::Lanes::ZERO; 2]; sources],
        }
    }
}

impl<'a> BlockFilter<'a> {
    /// The filter of the block whose mixture is `spectra` (channels × frames × bins) and soft
    /// masks `masks` (frames × sources × bins).
    pub(super) fn new(
        spectra: &'a Array3<Complex32>,
        masks: &'a Array3<f32>,
        first: &'a Covariances<'a>,
        refined: Option<&'a Covariances<'a>>,
    ) -> BlockFilter<'a> {
        let (channels, _, bins) = spectra.dim();
        BlockFilter {
            spectra,
            masks,
            first,
            refined,
            lanes_end: lanes_end(channels, bins),
        }
    }

    /// The images of the first `block` frames into `images` (frames × sources × channels ×
    /// bins), frames in parallel.
    pub(super) fn filter(&self, block: usize, images: &mut Array4<Complex32>) {
        let (channels, _, bins) = self.spectra.dim();
        let n_sources = self.masks.dim().1;
        images
            .outer_iter_mut()
            .into_par_iter()
            .take(block)
            .enumerate()
            .for_each_init(
                || (BinWork::new(channels, n_sources), LaneWork::new(n_sources)),
                |(work, lanes), (t, mut image)| {
                    for f0 in (0..self.lanes_end).step_by(stereo::LANES) {
                        let skipped = self.lanes(t, f0, lanes, &mut image);
                        for (l, _) in skipped.iter().enumerate().filter(|(_, s)| **s) {
                            self.bin(t, f0 + l, work, &mut image);
                        }
                    }
                    for f in self.lanes_end..bins {
                        self.bin(t, f, work, &mut image);
                    }
                },
            );
    }

    /// Frame `t`'s bin `f` into `image` (sources × channels × bins).
    fn bin(
        &self,
        t: usize,
        f: usize,
        work: &mut BinWork<'a>,
        image: &mut ArrayViewMut3<Complex32>,
    ) {
        let BinWork {
            wiener,
            r,
            x,
            v,
            est,
            est2,
        } = work;
        let channels = x.len();
        for (c, xc) in x.iter_mut().enumerate() {
            let s = self.spectra[[c, t, f]];
            *xc = Complex64::new(f64::from(s.re), f64::from(s.im));
        }
        let power = x.iter().map(|a| a.norm_sqr()).sum::<f64>() / channels as f64;
        for (j, vj) in v.iter_mut().enumerate() {
            *vj = f64::from(self.masks[[t, j, f]]).powi(2) * power;
        }
        r.clear();
        r.extend(self.first.per_bin.iter().map(|r| bin_of(r, f)));
        wiener_bin(x, v, r, wiener, est);
        let result = if let Some(refined) = self.refined {
            for (j, vj) in v.iter_mut().enumerate() {
                *vj = est[j * channels..(j + 1) * channels]
                    .iter()
                    .map(|a| a.norm_sqr())
                    .sum::<f64>()
                    / channels as f64;
            }
            r.clear();
            r.extend(refined.per_bin.iter().map(|r| bin_of(r, f)));
            wiener_bin(x, v, r, wiener, est2);
            &*est2
        } else {
            &*est
        };
        for (j, est) in result.chunks_exact(channels).enumerate() {
            for (c, a) in est.iter().enumerate() {
                image[[j, c, f]] = Complex32::new(a.re as f32, a.im as f32);
            }
        }
    }

    /// Frame `t`'s stereo bins `f0..f0 + LANES` into `image` as [`Self::bin`] would, but for
    /// the bins it returns, which are left to it.
    fn lanes(
        &self,
        t: usize,
        f0: usize,
        work: &mut LaneWork,
        image: &mut ArrayViewMut3<Complex32>,
    ) -> [bool; stereo::LANES] {
        const L: usize = stereo::LANES;
        let (_, frames, bins) = self.spectra.dim();
        let spectra = self.spectra.as_slice().expect("standard layout");
        let x = [0, 1].map(|c| {
            let row = &spectra[(c * frames + t) * bins + f0..][..L];
            stereo::Lanes::from_fn(|l| row[l])
        });
        let (n0, n1) = (x[0].norm_sqr(), x[1].norm_sqr());
        let power: [f64; L] = std::array::from_fn(|l| (n0[l] + n1[l]) / 2.0);
        let sources = work.v.len();
        let masks = self.masks.as_slice().expect("standard layout");
        for (j, v) in work.v.iter_mut().enumerate() {
            let m = &masks[(t * sources + j) * bins + f0..][..L];
            *v = std::array::from_fn(|l| f64::from(m[l]).powi(2) * power[l]);
        }
        let here = f0 / L * sources..(f0 / L + 1) * sources;
        let first = &self.first.lanes[here.clone()];
        let mut skipped = stereo::wiener_lanes(&x, &work.v, first, &mut work.est);
        let result = if let Some(refined) = self.refined {
            for (v, est) in work.v.iter_mut().zip(&work.est) {
                let (n0, n1) = (est[0].norm_sqr(), est[1].norm_sqr());
                *v = std::array::from_fn(|l| (n0[l] + n1[l]) / 2.0);
            }
            let again = stereo::wiener_lanes(&x, &work.v, &refined.lanes[here], &mut work.est2);
            skipped = std::array::from_fn(|l| skipped[l] || again[l]);
            &work.est2
        } else {
            &work.est
        };
        let image = image.as_slice_mut().expect("standard layout");
        for (j, est) in result.iter().enumerate() {
            for (c, a) in est.iter().enumerate() {
                let out = &mut image[(2 * j + c) * bins + f0..][..L];
                for (l, out) in out.iter_mut().enumerate().filter(|&(l, _)| !skipped[l]) {
                    *out = Complex32::new(a.re[l] as f32, a.im[l] as f32);
                }
            }
        }
        skipped
    }
}

/// The C×C covariance of bin `f` of `r` (bins × C × C, standard layout), row-major.
fn bin_of(r: &Array3<Complex32>, f: usize) -> &[Complex32] {
    let (_, c, _) = r.dim();
    let all = r.as_slice().expect("covariances in standard layout");
    &all[f * c * c..(f + 1) * c * c]
}
