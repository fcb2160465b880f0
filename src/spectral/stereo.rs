//! The stereo multichannel Wiener filter of [`super::spatial::wiener_bin`], eight bins at once:
//! the same arithmetic in the same order, lane by lane (so the same results to the bit), laid
//! out so that the compiler can hold each step's eight values in one vector.

use ndarray::Array3;
use realfft::num_complex::Complex32;
#[cfg(test)]
use realfft::num_complex::Complex64;

use super::spatial::RIDGE;

/// Bins filtered at once.
pub(crate) const LANES: usize = 8;

/// One real value per lane.
type Real = [f64; LANES];

/// One complex value per lane, real and imaginary parts apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lanes {
    /// The real parts.
    pub(crate) re: Real,
    /// The imaginary parts.
    pub(crate) im: Real,
}

impl Lanes {
    /// Zero in every lane.
    pub(crate) const ZERO: Lanes = Lanes {
        re: [0.0; LANES],
        im: [0.0; LANES],
    };

    /// `value(l)` in lane `l`, widened.
    #[inline(always)]
    pub(crate) fn from_fn(value: impl Fn(usize) -> Complex32) -> Lanes {
        let z: [Complex32; LANES] = std::array::from_fn(value);
        Lanes {
            re: z.map(|z| f64::from(z.re)),
            im: z.map(|z| f64::from(z.im)),
        }
    }

    /// Lane `l`.
    #[cfg(test)]
    fn get(&self, l: usize) -> Complex64 {
        Complex64::new(self.re[l], self.im[l])
    }

    /// `|z|²` per lane.
    #[inline(always)]
    pub(crate) fn norm_sqr(&self) -> Real {
        std::array::from_fn(|l| self.re[l] * self.re[l] + self.im[l] * self.im[l])
    }

    #[inline(always)]
    fn mul(self, o: Lanes) -> Lanes {
        Lanes {
            re: std::array::from_fn(|l| self.re[l] * o.re[l] - self.im[l] * o.im[l]),
            im: std::array::from_fn(|l| self.re[l] * o.im[l] + self.im[l] * o.re[l]),
        }
    }

    #[inline(always)]
    fn scale(self, s: Real) -> Lanes {
        Lanes {
            re: std::array::from_fn(|l| self.re[l] * s[l]),
            im: std::array::from_fn(|l| self.im[l] * s[l]),
        }
    }

    #[inline(always)]
    fn add(self, o: Lanes) -> Lanes {
        Lanes {
            re: std::array::from_fn(|l| self.re[l] + o.re[l]),
            im: std::array::from_fn(|l| self.im[l] + o.im[l]),
        }
    }

    #[inline(always)]
    fn sub(self, o: Lanes) -> Lanes {
        Lanes {
            re: std::array::from_fn(|l| self.re[l] - o.re[l]),
            im: std::array::from_fn(|l| self.im[l] - o.im[l]),
        }
    }
}

/// The 2 × 2 covariances of every source (each bins × 2 × 2) in bins `0..end` as
/// [`wiener_lanes`] reads them: per [`LANES`] bins, one item per source.
pub(crate) fn covariance_lanes(r: &[Array3<Complex32>], end: usize) -> Vec<[Lanes; 4]> {
    if end == 0 {
        // Nothing to lay out (and the covariances of another channel count are never read).
        return Vec::new();
    }
    let slices: Vec<&[Complex32]> = r
        .iter()
        .map(|r| {
            assert_eq!(r.dim().1, 2);
            r.as_slice().expect("covariances in standard layout")
        })
        .collect();
    (0..end / LANES)
        .flat_map(|chunk| {
            slices.iter().map(move |r| {
                let bins = &r[chunk * LANES * 4..(chunk + 1) * LANES * 4];
                std::array::from_fn(|e| Lanes::from_fn(|l| bins[4 * l + e]))
            })
        })
        .collect()
}

/// [`super::spatial::wiener_bin`] of two channels in [`LANES`] bins: the images `out[j]` (both
/// channels) of every source from the mixture `x`, source powers `v[j]` and spatial
/// covariances `r[j]` (row-major 2 × 2). Returns the lanes it left alone: those whose powers
/// are all zero or whose covariance sum is too near singular, which `wiener_bin` handles.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn wiener_lanes(
    x: &[Lanes; 2],
    v: &[Real],
    r: &[[Lanes; 4]],
    out: &mut [[Lanes; 2]],
) -> [bool; LANES] {
    assert!(r.len() == v.len() && out.len() == v.len());
    // (Written out entry by entry, not as loops over the four entries, which the compiler
    // would vectorise across entries with gathers instead of across the lanes.)
    let mut cx = [Lanes::ZERO; 4];
    for (rs, &vs) in r.iter().zip(v) {
        cx[0] = cx[0].add(rs[0].scale(vs));
        cx[1] = cx[1].add(rs[1].scale(vs));
        cx[2] = cx[2].add(rs[2].scale(vs));
        cx[3] = cx[3].add(rs[3].scale(vs));
    }
    let trace: Real = std::array::from_fn(|l| cx[0].re[l] + cx[3].re[l]);
    let ridge: Real = std::array::from_fn(|l| RIDGE * trace[l] / 2.0);
    cx[0].re = std::array::from_fn(|l| cx[0].re[l] + ridge[l]);
    cx[3].re = std::array::from_fn(|l| cx[3].re[l] + ridge[l]);
    // The determinant and its inverse; `solve_2x2`'s test of a usable divisor.
    let det = cx[0].mul(cx[3]).sub(cx[1].mul(cx[2]));
    let norms = [
        cx[0].norm_sqr(),
        cx[1].norm_sqr(),
        cx[2].norm_sqr(),
        cx[3].norm_sqr(),
    ];
    let scale: Real =
        std::array::from_fn(|l| norms[0][l] + norms[1][l] + norms[2][l] + norms[3][l]);
    let det_norm = det.norm_sqr();
    let skip: [bool; LANES] = std::array::from_fn(|l| {
        trace[l].is_nan()
            || trace[l] <= 0.0
            || !(det_norm[l] > 1e-24 * scale[l] * scale[l] && det_norm[l].is_finite())
    });
    let inv = Lanes {
        re: std::array::from_fn(|l| det.re[l] / det_norm[l]),
        im: std::array::from_fn(|l| -det.im[l] / det_norm[l]),
    };
    let y = [
        cx[3].mul(x[0]).sub(cx[1].mul(x[1])).mul(inv),
        cx[0].mul(x[1]).sub(cx[2].mul(x[0])).mul(inv),
    ];
    let mut sum = [Lanes::ZERO; 2];
    for ((rs, &vs), o) in r.iter().zip(v).zip(out.iter_mut()) {
        o[0] = rs[0].mul(y[0]).add(rs[1].mul(y[1])).scale(vs);
        o[1] = rs[2].mul(y[0]).add(rs[3].mul(y[1])).scale(vs);
        sum[0] = sum[0].add(o[0]);
        sum[1] = sum[1].add(o[1]);
    }
    // What no covariance holds is shared by power.
    let mut total = [0.0; LANES];
    for vs in v {
        total = std::array::from_fn(|l| total[l] + vs[l]);
    }
    let residual = [x[0].sub(sum[0]), x[1].sub(sum[1])];
    for (o, vs) in out.iter_mut().zip(v) {
        add_share(o, &residual, vs, &total);
    }
    skip
}

/// `o += residual · v / total`, per lane. A function of its own: inlined, the loop over the
/// sources around it was vectorised across the sources, with gathers and scatters.
#[inline(never)]
fn add_share(o: &mut [Lanes; 2], residual: &[Lanes; 2], v: &Real, total: &Real) {
    let share: Real = std::array::from_fn(|l| v[l] / total[l]);
    o[0] = o[0].add(residual[0].scale(share));
    o[1] = o[1].add(residual[1].scale(share));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectral::spatial::{WienerWork, wiener_bin};

    /// A deterministic value in [-1, 1) from `i`.
    fn value(i: usize) -> f32 {
        let x = (i as u64)
            .wrapping_mul(6_364_136_223_846_793_005)
            .rotate_left(23);
        (x % 20_000) as f32 / 10_000.0 - 1.0
    }

    #[test]
    fn every_lane_is_the_single_bin_filter_to_the_bit_or_is_left_to_it() {
        let mut work = WienerWork::new(2);
        let mut skipped = 0;
        for case in 0..200 {
            let sources = 1 + case % 4;
            let at = |k: usize| case * 1000 + k;
            let x = [0, 1].map(|c| {
                Lanes::from_fn(|l| {
                    Complex32::new(value(at(4 * l + 2 * c)), value(at(4 * l + 2 * c + 1)))
                })
            });
            // Powers of every size, some zero (all of them in some lanes).
            let v: Vec<Real> = (0..sources)
                .map(|j| {
                    std::array::from_fn(|l| {
                        let p = f64::from(value(at(100 + 8 * j + l))).powi(2) * 1e3;
                        if (l + case) % 5 == 0 || (case % 7 == 0 && l == 3) {
                            0.0
                        } else {
                            p
                        }
                    })
                })
                .collect();
            // Hermitian covariances, some singular (rank one) and some of zeros.
            let r: Vec<[Lanes; 4]> = (0..sources)
                .map(|j| {
                    let a = |l: usize| value(at(300 + 16 * j + l));
                    let b = |l: usize| value(at(500 + 16 * j + l));
                    let rank_one = (j + case) % 3 == 0;
                    let zero = case % 11 == 0 && j == 0;
                    let entry = |e: usize, l: usize| -> Complex32 {
                        if zero {
                            return Complex32::new(0.0, 0.0);
                        }
                        let (p, q) = (Complex32::new(a(l), 0.3), Complex32::new(b(l), -0.2));
                        let m = match e {
                            0 => p * p.conj(),
                            1 => p * q.conj(),
                            2 => q * p.conj(),
                            _ => q * q.conj(),
                        };
                        if rank_one || e == 1 || e == 2 {
                            m
                        } else {
                            m + 0.5
                        }
                    };
                    std::array::from_fn(|e| Lanes::from_fn(|l| entry(e, l)))
                })
                .collect();
            let mut out = vec![[Lanes::ZERO; 2]; sources];
            let skip = wiener_lanes(&x, &v, &r, &mut out);
            for l in 0..LANES {
                if skip[l] {
                    skipped += 1;
                    continue;
                }
                let xl = [x[0].get(l), x[1].get(l)];
                let vl: Vec<f64> = v.iter().map(|v| v[l]).collect();
                let rl: Vec<Vec<Complex32>> = r
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|e| Complex32::new(e.re[l] as f32, e.im[l] as f32))
                            .collect()
                    })
                    .collect();
                let rs: Vec<&[Complex32]> = rl.iter().map(Vec::as_slice).collect();
                let mut want = vec![Complex64::default(); 2 * sources];
                wiener_bin(&xl, &vl, &rs, &mut work, &mut want);
                for j in 0..sources {
                    for c in 0..2 {
                        let got = out[j][c].get(l);
                        let w = want[2 * j + c];
                        assert!(
                            got.re.to_bits() == w.re.to_bits()
                                && got.im.to_bits() == w.im.to_bits(),
                            "case {case} lane {l} source {j} channel {c}: {got} against {w}"
                        );
                    }
                }
            }
        }
        // The cases left to the single-bin filter are there, and a minority.
        assert!(
            (1..800).contains(&skipped),
            "{skipped} of 1600 lanes left alone"
        );
    }
}
