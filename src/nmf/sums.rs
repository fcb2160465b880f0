//! What [`Nmf::model_sum`](super::Nmf::model_sum) and
//! [`Nmf::component_energies`](super::Nmf::component_energies) compute from H, and the largest
//! activation and how struck each component is, gathered block by block when H is not kept.

use ndarray::ArrayView2;

/// Per component, the sums of its activations, of their squares and of their rises, in frame
/// order, and its largest activation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActivationSums {
    l1: Vec<f64>,
    squares: Vec<f64>,
    peaks: Vec<f32>,
    /// Sums of each component's rises from frame to frame (falls count 0).
    rises: Vec<f64>,
    /// The last frame added, where the next block's first rise starts.
    last: Vec<f32>,
    frames: usize,
}

impl ActivationSums {
    /// No frames yet, for `k` components.
    pub(crate) fn new(k: usize) -> ActivationSums {
        ActivationSums {
            l1: vec![0.0; k],
            squares: vec![0.0; k],
            peaks: vec![0.0; k],
            rises: vec![0.0; k],
            last: Vec::new(),
            frames: 0,
        }
    }

    /// The sums of all of `h` (K × frames).
    pub(crate) fn of(h: ArrayView2<f32>) -> ActivationSums {
        let mut sums = ActivationSums::new(h.nrows());
        sums.add(h);
        sums
    }

    /// Adds the activations of the next frames, K × frames.
    pub(crate) fn add(&mut self, h: ArrayView2<f32>) {
        for (c, row) in h.rows().into_iter().enumerate() {
            for &a in row {
                self.l1[c] += f64::from(a);
                self.squares[c] += f64::from(a).powi(2);
                self.peaks[c] = self.peaks[c].max(a);
            }
            // Each frame after the one before it, the first after the last block's last.
            let previous = self
                .last
                .get(c)
                .copied()
                .into_iter()
                .chain(row.iter().copied());
            let next = row.iter().skip(usize::from(self.last.is_empty()));
            for (a, &b) in previous.zip(next) {
                // One at a time, as the other sums: blocks of any size add up alike.
                self.rises[c] += f64::from((b - a).max(0.0));
            }
        }
        if h.ncols() > 0 {
            self.last = h.column(h.ncols() - 1).to_vec();
            self.frames += h.ncols();
        }
    }

    /// [`Nmf::model_sum`](super::Nmf::model_sum) of templates `w` (bins × K) with these
    /// activations.
    pub(crate) fn model_sum(&self, w: ArrayView2<f32>) -> f64 {
        let l1 = |c: usize| w.column(c).iter().map(|&a| f64::from(a)).sum::<f64>();
        (0..w.ncols()).map(|c| l1(c) * self.l1[c]).sum()
    }

    /// [`Nmf::component_energies`](super::Nmf::component_energies) of templates `w` (bins × K)
    /// with these activations.
    pub(crate) fn energies(&self, w: ArrayView2<f32>) -> Vec<f64> {
        let squares = |c: usize| {
            w.column(c)
                .iter()
                .map(|&a| f64::from(a).powi(2))
                .sum::<f64>()
        };
        (0..w.ncols())
            .map(|c| squares(c) * self.squares[c])
            .collect()
    }

    /// Each component's largest activation (0 for none above 0), as `fold(0.0, f32::max)`
    /// over its row.
    pub(crate) fn peaks(&self) -> &[f32] {
        &self.peaks
    }

    /// How struck each component sounds: the log of its mean rise from one frame to the next
    /// over its mean level. Struck notes rise at once and fade (high), held ones swell and
    /// stay (low). Components that never sound get the lowest value, ln 10⁻¹².
    pub(crate) fn struck(&self) -> Vec<f64> {
        let (frames, steps) = (self.frames.max(1) as f64, self.frames.max(2) as f64 - 1.0);
        let lowest = 1e-12f64.ln();
        (self.rises.iter().zip(&self.l1))
            .map(|(&rise, &l1)| match l1 > 0.0 {
                true => ((rise / steps).max(1e-12) / (l1 / frames)).ln().max(lowest),
                false => lowest,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nmf::Nmf;
    use ndarray::{Array2, s};

    #[test]
    fn sums_gathered_block_by_block_are_those_of_the_whole() {
        let w = Array2::from_shape_fn((7, 3), |(i, j)| ((i * 5 + j * 3) % 11) as f32 / 7.0);
        let h = Array2::from_shape_fn((3, 50), |(i, j)| ((i * 13 + j * 7) % 17) as f32 / 3.1);
        let mut sums = ActivationSums::new(3);
        for start in (0..50).step_by(16) {
            sums.add(h.slice(s![.., start..(start + 16).min(50)]));
        }
        let nmf = Nmf {
            w: w.clone(),
            h: h.clone(),
            cost_history: Vec::new(),
            iterations: 0,
            converged: true,
        };
        assert_eq!(sums.model_sum(w.view()), nmf.model_sum());
        assert_eq!(sums.energies(w.view()), nmf.component_energies());
        let peaks: Vec<f32> = h
            .rows()
            .into_iter()
            .map(|r| r.iter().copied().fold(0.0, f32::max))
            .collect();
        assert_eq!(sums.peaks(), peaks.as_slice());
        let struck: Vec<f64> = (h.rows().into_iter())
            .map(|r| {
                let rise: f64 = r
                    .windows(2)
                    .into_iter()
                    .map(|p| f64::from((p[1] - p[0]).max(0.0)))
                    .sum();
                let mean = r.iter().map(|&a| f64::from(a)).sum::<f64>() / 50.0;
                (rise / 49.0 / mean).ln()
            })
            .collect();
        for (a, b) in sums.struck().iter().zip(&struck) {
            assert!((a - b).abs() < 1e-12, "{a} against {b}");
        }
        assert_eq!(ActivationSums::of(h.view()), sums);
    }
}
