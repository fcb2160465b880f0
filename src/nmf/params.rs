//! NMF parameters: what to fit and how, checked once before fitting.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};

use super::divergence::{Divergence, is_valid_entry};
use super::loss::Loss;
use super::penalty::Penalties;
use crate::error::{Param, ParamError};

/// How the free factors are initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Init {
    /// NNDSVD with zeros filled by the mean of V (Boutsidis & Gallopoulos 2008), from a seeded
    /// randomized SVD. The default: it starts near the dominant structure, where seeded random
    /// starts often end in poor local minima.
    #[default]
    Nndsvda,
    /// Seeded absolute normal values scaled by `sqrt(mean(V) / k)`, as scikit-learn does.
    Random,
}

/// The longest convolutive template, in frames ([`NmfParams::with_frames`]).
pub const MAX_TEMPLATE_FRAMES: usize = 64;

/// The most seeded starts a fit takes (`--restarts`): far more than ever pays, and a typo of
/// a few more digits is refused instead of running for days.
pub const MAX_RESTARTS: usize = 100;

/// Everything [`fit`](super::fit) needs besides the data. Build with [`NmfParams::new`] and the
/// `with_*` setters; every setter states its default.
#[derive(Debug, Clone, PartialEq)]
pub struct NmfParams {
    pub(crate) components: usize,
    pub(crate) loss: Loss,
    pub(crate) max_iter: usize,
    pub(crate) tol: f64,
    pub(crate) init: Init,
    pub(crate) seed: u64,
    pub(crate) normalize: bool,
    pub(crate) cost_every: usize,
    pub(crate) fixed_w: Option<Array2<f32>>,
    pub(crate) frames: usize,
    pub(crate) fixed_frames: Option<Vec<usize>>,
    pub(crate) initial: Option<(Array2<f32>, Array2<f32>)>,
    pub(crate) sparsity: f32,
    pub(crate) smoothness: f32,
    pub(crate) restarts: usize,
    pub(crate) floor: f32,
    pub(crate) max_memory: Option<u64>,
    /// A weight per bin of the cost (see [`Self::with_row_weights`]).
    pub(crate) row_weights: Option<Vec<f32>>,
    /// The exponent of the multiplicative steps (see [`Self::with_step_exponent`]).
    pub(crate) step_exponent: Option<f32>,
    /// A handicap per component (see [`Self::with_handicaps`]).
    pub(crate) handicaps: Option<Vec<f32>>,
}

impl Default for NmfParams {
    fn default() -> Self {
        NmfParams::new(4)
    }
}

impl NmfParams {
    /// `components` free components, KL loss, 200 iterations, tolerance 1e-4, NNDSVDA
    /// initialisation, seed 0, W normalised, cost checked every 10 iterations, V floored at
    /// 1e-6 of its largest value.
    pub fn new(components: usize) -> NmfParams {
        NmfParams {
            components,
            loss: Loss::default(),
            max_iter: 200,
            tol: 1e-4,
            init: Init::default(),
            seed: 0,
            normalize: true,
            cost_every: 10,
            fixed_w: None,
            frames: 1,
            fixed_frames: None,
            initial: None,
            sparsity: 0.0,
            smoothness: 0.0,
            restarts: 1,
            floor: NmfParams::DEFAULT_FLOOR,
            max_memory: None,
            row_weights: None,
            step_exponent: None,
            handicaps: None,
        }
    }

    /// The default of [`Self::with_floor`].
    pub const DEFAULT_FLOOR: f32 = 1e-6;

    /// Raise every value of V below this fraction of its largest value to it before fitting
    /// (default 1e-6; 0 keeps only the tiny floor that avoids division by zero). The
    /// Itakura-Saito divergence weighs every bin by its own level, so without a floor it
    /// spends components on near-silent bins (dither, the tails of a fade) that nobody hears.
    pub fn with_floor(mut self, floor: f32) -> Self {
        self.floor = floor;
        self
    }

    /// Handicap each component's activations, one value `c_k ≥ 0` per component, fixed
    /// templates first (default none): every multiplicative step of component `k`'s
    /// activations is divided by `(1 + c_k)^γ`, γ the fit's step exponent, so that a handicapped
    /// component takes over only where it explains the data better by more than that factor.
    /// With the Kullback-Leibler loss this is the L1 penalty `c_k |w_k|₁ Σ_t h_kt`; with the
    /// others, a penalty weighed by each frame's own level, and the cost reported leaves it out.
    pub fn with_handicaps(mut self, handicaps: Vec<f32>) -> Self {
        self.handicaps = Some(handicaps);
        self
    }

    /// Refuse a fit whose working memory ([`super::memory_estimate`]) would exceed this many
    /// bytes, before allocating anything (default `None`: the memory the system has
    /// available, where it says so, as Linux does).
    pub fn with_max_memory(mut self, bytes: Option<u64>) -> Self {
        self.max_memory = bytes;
        self
    }

    /// The divergence to minimise (default [`Loss::KullbackLeibler`]).
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Most iterations to run (default 200).
    pub fn with_max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Stop when the cost falls by less than this fraction between two checks (default 1e-4;
    /// 0 runs every iteration).
    pub fn with_tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Initialisation of the free factors (default [`Init::Nndsvda`]).
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Seed of every random choice (default 0).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Scale each free column of W to sum 1 after each update, moving the scale into H, which
    /// leaves W·H unchanged (default on).
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// Compute the cost every this many iterations (default 10); the tolerance is checked at
    /// those iterations. The cost of the final factors is always computed.
    pub fn with_cost_every(mut self, every: usize) -> Self {
        self.cost_every = every;
        self
    }

    /// Weigh bin `f` of the cost by `weights[f]` (positive, one per bin): the fit of bands
    /// that stand for `weights[f]` bins each. Only with every template fixed (the W update
    /// is not weighted).
    pub(crate) fn with_row_weights(mut self, weights: Vec<f32>) -> Self {
        self.row_weights = Some(weights);
        self
    }

    /// The exponent γ of the steps `(num / den)^γ`, in (0, 2] (default `None`: [`Loss::gamma`],
    /// under which the cost never rises; 1/2 for Itakura-Saito, as in scikit-learn). Longer
    /// steps (1 for Itakura-Saito, the heuristic) are not proven to lower the cost; with every
    /// template fixed, a check that finds it higher sends the fit back to the activations of
    /// the last cost, with [`Loss::gamma`]'s steps on. Penalised updates keep their own steps.
    pub fn with_step_exponent(mut self, gamma: Option<f32>) -> Self {
        self.step_exponent = gamma;
        self
    }

    /// Templates (shape `(F, Kf)`) held fixed during the fit; they come first in W, followed
    /// by the free components (default none). With zero free components only H is fitted.
    pub fn with_fixed_templates(mut self, w: Array2<f32>) -> Self {
        self.fixed_w = Some(w);
        self
    }

    /// The number of free components (set by [`Self::new`]).
    pub fn with_components(mut self, components: usize) -> Self {
        self.components = components;
        self
    }

    /// Make each free component a convolutive template of this many frames (NMFD, Smaragdis
    /// 2004; default 1, at most [`MAX_TEMPLATE_FRAMES`]): a sound whose spectrum changes over
    /// its first frames, as a drum hit's does, is then one template with one activation
    /// instead of several that must be activated in turn. Such a template takes `frames`
    /// consecutive columns of W (its frames in order) and H holds a row for each, the
    /// template's activation delayed by 0, 1, … frames: `W H` is the model as usual.
    pub fn with_frames(mut self, frames: usize) -> Self {
        self.frames = frames;
        self
    }

    /// The length in frames of each fixed template, in order (see [`Self::with_frames`]);
    /// they add up to the columns of the fixed W (default: every column a template of one
    /// frame).
    pub fn with_fixed_frames(mut self, frames: Vec<usize>) -> Self {
        self.fixed_frames = Some(frames);
        self
    }

    /// Start from these factors, W `(F, K)` and H `(K, T)` with K all components, instead of
    /// the initialisation (default none).
    pub fn with_initial(mut self, w: Array2<f32>, h: Array2<f32>) -> Self {
        self.initial = Some((w, h));
        self
    }

    /// Weight λs of an L1 penalty on the activations, `λs Σ_k |w_k|₁ |h_k|₁`, on the data
    /// scaled to mean 1 (default 0: off). Larger values leave fewer components active at once.
    pub fn with_sparsity(mut self, sparsity: f32) -> Self {
        self.sparsity = sparsity;
        self
    }

    /// Weight λt of a temporal-continuity penalty, `λt Σ_k |w_k|₁² Σ_t (h_kt − h_k,t−1)²`, on
    /// the data scaled to mean 1 (default 0: off). Larger values give smoother activations.
    pub fn with_smoothness(mut self, smoothness: f32) -> Self {
        self.smoothness = smoothness;
        self
    }

    /// Fit this many times, from the configured initialisation and then from random ones with
    /// the following seeds, and keep the fit with the lowest final cost (default 1, at most
    /// [`MAX_RESTARTS`]). With [`Self::with_initial`] there is one fit: its start is given.
    pub fn with_restarts(mut self, restarts: usize) -> Self {
        self.restarts = restarts;
        self
    }

    /// Number of free components.
    pub fn components(&self) -> usize {
        self.components
    }

    /// The length in frames of each free component.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Number of columns of W in all: those of the fixed templates and of the free
    /// components (a component of several frames takes one column per frame).
    pub fn total_components(&self) -> usize {
        self.free_columns()
            .saturating_add(self.fixed_w.as_ref().map_or(0, |w| w.ncols()))
    }

    /// Whether any template is convolutive ([`Self::shift_groups`] is not empty).
    pub(crate) fn has_convolutive(&self) -> bool {
        (self.frames > 1 && self.components > 0)
            || self.fixed_frames.iter().flatten().any(|&len| len > 1)
    }

    /// Columns of W of the free components.
    pub(crate) fn free_columns(&self) -> usize {
        self.components.saturating_mul(self.frames)
    }

    /// The length in frames of every template, fixed ones first (their columns add up to
    /// [`Self::total_components`]).
    pub(crate) fn template_lengths(&self) -> Vec<usize> {
        let fixed = self.fixed_w.as_ref().map_or(0, |w| w.ncols());
        let mut lengths = self.fixed_frames.clone().unwrap_or_else(|| vec![1; fixed]);
        lengths.extend(std::iter::repeat_n(self.frames, self.components));
        lengths
    }

    /// The columns of W that make one convolutive template each (of two frames or more).
    pub(crate) fn shift_groups(&self) -> Vec<Range<usize>> {
        template_columns(&self.template_lengths())
            .filter(|columns| columns.len() >= 2)
            .collect()
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// Most iterations.
    pub fn max_iter(&self) -> usize {
        self.max_iter
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The tolerance.
    pub fn tol(&self) -> f64 {
        self.tol
    }

    /// The initialisation.
    pub fn init(&self) -> Init {
        self.init
    }

    /// The sparsity weight.
    pub fn sparsity(&self) -> f32 {
        self.sparsity
    }

    /// The smoothness weight.
    pub fn smoothness(&self) -> f32 {
        self.smoothness
    }

    /// The floor, as a fraction of the largest value of V.
    pub fn floor(&self) -> f32 {
        self.floor
    }

    /// The exponent of the multiplicative steps (see [`Self::with_step_exponent`]).
    pub fn step_exponent(&self) -> f32 {
        self.step_exponent.unwrap_or_else(|| self.loss.gamma())
    }

    /// The memory limit of a fit in bytes (`None`: what the system has available).
    pub fn max_memory(&self) -> Option<u64> {
        self.max_memory
    }

    /// Fits to keep the best of (one when initial factors are given: that fit is deterministic).
    pub fn restarts(&self) -> usize {
        self.restarts
    }

    /// Checks every parameter that does not depend on the data.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check(&self) -> Result<(), ParamError> {
        self.divergence().map(|_| ())
    }

    /// [`Self::check`], returning the divergence of the loss.
    pub(crate) fn divergence(&self) -> Result<Divergence, ParamError> {
        self.check_frames()?;
        if self.total_components() == 0 {
            return Err(ParamError::NoComponents(0));
        }
        let divergence = self.loss.check()?;
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(ParamError::OutOfRange {
                param: Param::Tol,
                expected: "a finite number of at least 0",
                got: self.tol,
            });
        }
        let gamma = self.step_exponent();
        if !(gamma > 0.0 && gamma <= 2.0) {
            return Err(ParamError::OutOfRange {
                param: Param::StepExponent,
                expected: "above 0 and at most 2",
                got: f64::from(gamma),
            });
        }
        if !(self.floor.is_finite() && (0.0..1.0).contains(&self.floor)) {
            return Err(ParamError::OutOfRange {
                param: Param::Floor,
                expected: "at least 0 and below 1",
                got: f64::from(self.floor),
            });
        }
        for (name, value) in [
            (Param::Sparsity, self.sparsity),
            (Param::Smoothness, self.smoothness),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ParamError::OutOfRange {
                    param: name,
                    expected: "a finite number of at least 0",
                    got: f64::from(value),
                });
            }
        }
        if !(1..=MAX_RESTARTS).contains(&self.restarts) {
            return Err(ParamError::OutOfRange {
                param: Param::Restarts,
                expected: "between 1 and 100",
                got: self.restarts as f64,
            });
        }
        if self.cost_every == 0 {
            return Err(ParamError::OutOfRange {
                param: Param::CostEvery,
                expected: "at least 1",
                got: 0.0,
            });
        }
        if let Some(w) = &self.fixed_w {
            check_non_negative("fixed templates", w.view())?;
        }
        if let Some(handicaps) = &self.handicaps
            && handicaps.len() != self.total_components()
        {
            return Err(ParamError::Conflict {
                param: Param::Handicaps,
                message: "one handicap per component is needed",
            });
        }
        if let Some(&bad) =
            (self.handicaps.iter().flatten()).find(|c| !(c.is_finite() && **c >= 0.0))
        {
            return Err(ParamError::OutOfRange {
                param: Param::Handicaps,
                expected: "finite numbers of at least 0",
                got: f64::from(bad),
            });
        }
        if let Some((w, h)) = &self.initial {
            check_non_negative("initial W", w.view())?;
            check_non_negative("initial H", h.view())?;
        }
        Ok(divergence)
    }

    /// Checks the templates' lengths in frames: each within bounds, the fixed ones adding up
    /// to the fixed columns, and none longer than a frame with the penalties (whose steps
    /// are those of independent activations).
    fn check_frames(&self) -> Result<(), ParamError> {
        let fixed = self.fixed_w.as_ref().map_or(0, |w| w.ncols());
        let lengths = self.fixed_frames.iter().flatten().chain([&self.frames]);
        for &len in lengths {
            if !(1..=MAX_TEMPLATE_FRAMES).contains(&len) {
                return Err(ParamError::OutOfRange {
                    param: Param::TemplateFrames,
                    expected: "between 1 and 64",
                    got: len as f64,
                });
            }
        }
        if let Some(lengths) = &self.fixed_frames
            && lengths.iter().sum::<usize>() != fixed
        {
            return Err(ParamError::Conflict {
                param: Param::TemplateFrames,
                message: "the fixed templates' lengths in frames do not add up to their columns",
            });
        }
        let penalty = if self.sparsity > 0.0 {
            Some(Param::Sparsity)
        } else {
            (self.smoothness > 0.0).then_some(Param::Smoothness)
        };
        if let Some(param) = penalty
            && self.has_convolutive()
        {
            return Err(ParamError::Conflict {
                param,
                message: "templates of several frames cannot be fitted with sparsity or smoothness",
            });
        }
        Ok(())
    }

    /// Checks the parameters against data of `bins` rows and `frames` columns.
    pub(crate) fn check_for(&self, bins: usize, frames: usize) -> Result<Checked<'_>, ParamError> {
        let divergence = self.divergence()?;
        let k = self.total_components();
        if let Some(w) = &self.fixed_w
            && w.nrows() != bins
        {
            return Err(ParamError::Shape {
                what: "fixed templates",
                expected: (bins, w.ncols()),
                actual: w.dim(),
            });
        }
        if let Some((w, h)) = &self.initial {
            if w.dim() != (bins, k) {
                return Err(ParamError::Shape {
                    what: "initial W",
                    expected: (bins, k),
                    actual: w.dim(),
                });
            }
            if h.dim() != (k, frames) {
                return Err(ParamError::Shape {
                    what: "initial H",
                    expected: (k, frames),
                    actual: h.dim(),
                });
            }
        }
        Ok(Checked {
            params: self,
            divergence,
            penalties: Penalties {
                sparsity: f64::from(self.sparsity),
                smoothness: f64::from(self.smoothness),
            },
        })
    }
}

/// [`NmfParams`] checked against the data, with what the fit builds from them once: the
/// divergence of the loss and the penalties' weights. What a factorisation starts from.
pub(crate) struct Checked<'a> {
    /// The parameters.
    pub(crate) params: &'a NmfParams,
    /// The divergence of [`NmfParams::loss`].
    pub(crate) divergence: Divergence,
    /// The penalties' weights, in `f64`.
    pub(crate) penalties: Penalties,
}

pub(crate) fn check_non_negative(what: &'static str, m: ArrayView2<f32>) -> Result<(), ParamError> {
    if m.iter().all(|&x| is_valid_entry(x)) {
        Ok(())
    } else {
        Err(ParamError::NotNonNegative(what))
    }
}

/// The columns of W of each template, in order, from the templates' lengths in frames (see
/// [`NmfParams::template_lengths`]).
pub(crate) fn template_columns(lengths: &[usize]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    lengths.iter().map(move |&len| {
        start += len;
        start - len..start
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_components_are_rejected() {
        assert_eq!(NmfParams::new(0).check(), Err(ParamError::NoComponents(0)));
    }

    #[test]
    fn restarts_are_accepted_from_one_to_the_most() {
        let with = |r| NmfParams::new(2).with_restarts(r).check();
        assert!(with(1).is_ok() && with(MAX_RESTARTS).is_ok());
        for refused in [0, MAX_RESTARTS + 1] {
            let Err(ParamError::OutOfRange { param, got, .. }) = with(refused) else {
                panic!("{refused} restarts accepted");
            };
            assert_eq!((param, got), (Param::Restarts, refused as f64));
        }
    }
}
