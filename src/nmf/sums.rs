//! What [`Nmf::model_sum`](super::Nmf::model_sum) and
//! [`Nmf::component_energies`](super::Nmf::component_energies) compute from H, and the largest
//! activation of each component, gathered block by block when H is not kept.

use ndarray::ArrayView2;

/// Per component, the sums of its activations and of their squares, in frame order, and its
/// largest activation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActivationSums {
    l1: Vec<f64>,
    squares: Vec<f64>,
    peaks: Vec<f32>,
}

impl ActivationSums {
    /// No frames yet, for `k` components.
    pub(crate) fn new(k: usize) -> ActivationSums {
        ActivationSums {
            l1: vec![0.0; k],
            squares: vec![0.0; k],
            peaks: vec![0.0; k],
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
        assert_eq!(ActivationSums::of(h.view()), sums);
    }
}
