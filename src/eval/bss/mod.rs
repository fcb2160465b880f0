//! The BSS Eval numerics of museval's `metrics.py` and mir_eval's `separation.py`, reorganised
//! to do each piece of work once.
//!
//! Each estimate `ŝ` is split into `s_true + e_spat + e_interf + e_artif`, where `P_j`, the
//! least-squares projection of `ŝ` on the delays `0..L` of its own reference `s_j` (all its
//! channels), is `s_true + e_spat`, and `P_all`, the projection on the delays of every
//! reference, adds `e_interf`; `e_artif = ŝ - P_all`. The projections are linear filters
//! `C = G⁻¹ D` of the references, where `G` holds the inner products of delayed reference
//! channels and `D` those of delayed reference channels with the estimate's channels.
//!
//! Where the Python implementations compute full-length FFTs per pair and per call, here:
//! - every correlation `ρ_xy(k) = Σ_n x[n + k] y[n]` for `|k| < L` comes from one pass over the
//!   signals in blocks, accumulating the cross-spectra of all pairs and inverting each once;
//! - `G` is factored once (Cholesky) for all estimates;
//! - the energies of the decomposition in each window are summed block by block from
//!   overlap-save convolutions of the windowed references with the filters' spectra, in the
//!   time domain, as the reference implementations sum them.

mod correlations;
mod fft;
mod filters;
mod linalg;
mod projection;

use std::ops::Range;

pub(crate) use filters::fit;
pub(crate) use projection::{Energies, Projector};

/// Planar signals of one track: `refs[j][c]` and `ests[j][c]`, all of one length.
pub(crate) struct Track<'a> {
    /// Reference sources, then channels.
    pub refs: Vec<Vec<&'a [f32]>>,
    /// Estimated sources, then channels.
    pub ests: Vec<Vec<&'a [f32]>>,
}

impl Track<'_> {
    fn ref_channels(&self) -> Vec<&[f32]> {
        self.refs.iter().flatten().copied().collect()
    }

    fn est_channels(&self) -> Vec<&[f32]> {
        self.ests.iter().flatten().copied().collect()
    }
}

/// Copies `x[start..start + buf.len()]` into `buf`, with zeros wherever the index is outside
/// `valid` (the stretch being analysed) or negative.
fn fill(buf: &mut [f64], x: &[f32], start: isize, valid: &Range<usize>) {
    for (m, v) in buf.iter_mut().enumerate() {
        let n = start + m as isize;
        *v = if n >= valid.start as isize && n < valid.end as isize {
            f64::from(x[n as usize])
        } else {
            0.0
        };
    }
}

/// Whether any source of `sources` is silent in `window` by museval's rule: the sum of its
/// channels is zero at every sample.
pub(crate) fn any_silent(sources: &[Vec<&[f32]>], window: &Range<usize>) -> bool {
    sources.iter().any(|channels| {
        window
            .clone()
            .all(|n| channels.iter().map(|x| f64::from(x[n])).sum::<f64>() == 0.0)
    })
}

#[cfg(test)]
/// Pseudo-random noise in `[-0.5, 0.5)`, the same for the same seed.
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32
        })
        .collect()
}
