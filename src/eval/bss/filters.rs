//! The least-squares distortion filters: the Gram matrices solved by Cholesky, with diagonal
//! loading when they are not numerically positive definite.

use ndarray::Array2;

use super::Track;
use super::correlations::Correlations;
use super::linalg::Cholesky;

/// The diagonal loadings tried, relative to the mean diagonal of a Gram matrix, when it is not
/// numerically positive definite.
const LOADINGS: [f64; 5] = [1e-14, 1e-12, 1e-10, 1e-8, 1e-6];

/// A Gram matrix that stayed singular however much diagonal loading was added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Singular;

/// Least-squares filters `G⁻¹ D`, with `eps` added to the diagonal of `G` (as museval does) and
/// the loading (relative to the mean diagonal) that had to be added on top for `G` to be
/// numerically positive definite, if any.
///
/// A reference channel that is zero throughout has zero rows in `G` and `D`; its diagonal is
/// set to 1, so that its coefficients are 0 (the least-squares solution of least norm).
pub(crate) fn solve_filters(
    gram: impl Fn() -> Array2<f64>,
    d: &Array2<f64>,
    eps: f64,
) -> Result<(Array2<f64>, f64), Singular> {
    let mut mean_diagonal = None;
    for loading in std::iter::once(0.0).chain(LOADINGS) {
        let mut a = gram();
        let n = a.nrows();
        let mean_diagonal = *mean_diagonal.get_or_insert_with(|| a.diag().sum() / n as f64);
        for i in 0..n {
            let v = &mut a[[i, i]];
            *v = if *v == 0.0 {
                1.0
            } else {
                *v + eps + loading * mean_diagonal
            };
        }
        if let Ok(chol) = Cholesky::factor(a) {
            let mut c = d.clone();
            chol.solve_in_place(&mut c);
            if c.iter().all(|v| v.is_finite()) {
                return Ok((c, loading));
            }
        }
    }
    Err(Singular)
}

/// The least-squares filters of one evaluation, as coefficients.
pub(crate) struct Filters {
    /// Taps.
    pub l: usize,
    /// Number of sources `J`.
    pub sources: usize,
    /// Channels per source `I`.
    pub channels: usize,
    /// `all[e]`: the `(J·I·L) × I` filters of estimate `e` on every reference.
    pub all: Vec<Array2<f64>>,
    /// The (reference, estimate) pairs evaluated.
    pub pairs: Vec<(usize, usize)>,
    /// `own[k]`: the `(I·L) × I` filters of `pairs[k]` on its reference alone.
    pub own: Vec<Array2<f64>>,
}

/// Fits, over the whole track, the filters of every estimate on every reference and those of
/// each (reference, estimate) pair of `pairs` on its reference alone, with `eps` added to the
/// diagonals (museval adds the machine epsilon; mir_eval does not). Returns them with the
/// largest diagonal loading that had to be added (see [`solve_filters`]).
pub(crate) fn fit(
    track: &Track,
    l: usize,
    pairs: Vec<(usize, usize)>,
    eps: f64,
) -> Result<(Filters, f64), Singular> {
    let (sources, channels) = (track.refs.len(), track.refs[0].len());
    let n = track.refs[0][0].len();
    let corr = Correlations::compute(track, 0..n, l);
    let all_channels: Vec<usize> = (0..sources * channels).collect();
    let (all, mut loading) = solve_filters(
        || corr.gram(&all_channels),
        &corr.cross(&all_channels, &all_channels),
        eps,
    )?;
    let per_estimate: Vec<_> = (0..sources)
        .map(|e| {
            all.slice(ndarray::s![.., e * channels..(e + 1) * channels])
                .to_owned()
        })
        .collect();
    drop(all);
    let mut own = vec![None; pairs.len()];
    for j in 0..sources {
        let mine: Vec<usize> = (j * channels..(j + 1) * channels).collect();
        let with: Vec<(usize, usize)> = pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.0 == j)
            .map(|(k, p)| (k, p.1))
            .collect();
        let est_channels: Vec<usize> = with
            .iter()
            .flat_map(|&(_, e)| e * channels..(e + 1) * channels)
            .collect();
        let (c, load) = solve_filters(|| corr.gram(&mine), &corr.cross(&mine, &est_channels), eps)?;
        loading = loading.max(load);
        for (i, &(k, _)) in with.iter().enumerate() {
            own[k] = Some(
                c.slice(ndarray::s![.., i * channels..(i + 1) * channels])
                    .to_owned(),
            );
        }
    }
    drop(corr);
    let own: Vec<_> = own.into_iter().map(|c| c.expect("every pair")).collect();
    let filters = Filters {
        l,
        sources,
        channels,
        all: per_estimate,
        pairs,
        own,
    };
    Ok((filters, loading))
}
