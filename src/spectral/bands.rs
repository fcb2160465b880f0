//! Frequency bands: neighbouring bins summed into one, each band at most a given fraction of
//! an octave wide (a bin alone where it is wider than that, at the bottom of the spectrum).

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// Bins grouped into bands: band `j` sums bins `edges[j]..edges[j + 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bands {
    edges: Vec<usize>,
}

impl Bands {
    /// Bands over `bins` bins (bin `b` at `b` times the bin spacing), each from a bin `low`
    /// to at most `low · 2^(1/per_octave)`, and never narrower than one bin.
    ///
    /// ```
    /// use demix::spectral::Bands;
    /// // 1/48 octave is 1.45 % of the frequency: two bins make a band from bin 138 on.
    /// let bands = Bands::per_octave(1025, 48);
    /// assert_eq!(bands.len(), 294);
    /// assert_eq!(bands.edges()[136..140], [136, 137, 138, 140]);
    /// assert_eq!(bands.edges().last(), Some(&1025));
    /// ```
    pub fn per_octave(bins: usize, per_octave: u32) -> Bands {
        let relative = 2f64.powf(1.0 / f64::from(per_octave.max(1))) - 1.0;
        let mut edges = vec![0];
        let mut low = 0;
        while low < bins {
            let width = ((low as f64 * relative).floor() as usize).max(1);
            low = (low + width).min(bins);
            edges.push(low);
        }
        Bands { edges }
    }

    /// The number of bands.
    pub fn len(&self) -> usize {
        self.edges.len() - 1
    }

    /// Whether there is no band (no bins).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first bin of every band, then the number of bins.
    pub fn edges(&self) -> &[usize] {
        &self.edges
    }

    /// `x` (bins × columns) with its rows summed into bands.
    pub fn pool_rows(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((self.len(), x.ncols()));
        for (j, mut band) in out.axis_iter_mut(Axis(0)).enumerate() {
            for bin in self.edges[j]..self.edges[j + 1] {
                band += &x.row(bin);
            }
        }
        out
    }

    /// `x` (rows × bins) with the bins of every row summed into bands, the rows in parallel.
    pub fn pool_columns(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((x.nrows(), self.len()));
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(Axis(0)))
            .for_each(|(mut pooled, row)| {
                for (j, y) in pooled.iter_mut().enumerate() {
                    *y = (self.edges[j]..self.edges[j + 1]).map(|b| row[b]).sum();
                }
            });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn bands_cover_every_bin_once_and_stay_within_their_width() {
        for (bins, n) in [(1, 48), (2, 12), (513, 24), (1025, 48), (4097, 96)] {
            let bands = Bands::per_octave(bins, n);
            let e = bands.edges();
            assert_eq!((e[0], *e.last().unwrap()), (0, bins));
            assert!(e.windows(2).all(|w| w[1] > w[0]));
            let ratio = 2f64.powf(1.0 / f64::from(n));
            // Wider than one bin only where the band's top stays within 1/n octave of its bottom.
            for w in e.windows(2).filter(|w| w[1] - w[0] > 1) {
                assert!(
                    w[1] as f64 <= w[0] as f64 * ratio + 1e-9,
                    "{w:?} with {n} per octave"
                );
            }
        }
    }

    #[test]
    fn pooling_sums_the_bins_of_each_band() {
        let bands = Bands {
            edges: vec![0, 1, 3, 4],
        };
        let x = array![[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]];
        assert_eq!(
            bands.pool_rows(x.view()),
            array![[1.0, 10.0], [5.0, 50.0], [4.0, 40.0]]
        );
        assert_eq!(
            bands.pool_columns(x.t()),
            array![[1.0, 5.0, 4.0], [10.0, 50.0, 40.0]]
        );
    }
}
