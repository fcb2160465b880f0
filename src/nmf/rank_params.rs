//! The settings of a rank selection: the range of component counts it tries, its method,
//! and the rest of [`RankParams`].

use std::fmt;
use std::str::FromStr;

use super::{Loss, NmfParams};
use crate::error::{Param, ParamError};

/// The most components a rank selection tries.
pub const MAX_RANK: usize = 256;

/// How the number of components is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RankMethod {
    /// Fit every K of the range from several starts and apply [`RULE`](super::RULE) (the default).
    #[default]
    Sweep,
    /// One fit at the top of the range with automatic relevance determination.
    Ard,
}

impl FromStr for RankMethod {
    type Err = String;

    /// `sweep` or `ard`.
    fn from_str(s: &str) -> Result<RankMethod, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sweep" => Ok(RankMethod::Sweep),
            "ard" => Ok(RankMethod::Ard),
            _ => Err(format!("'{s}' is not a rank method (sweep or ard)")),
        }
    }
}

impl fmt::Display for RankMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RankMethod::Sweep => "sweep",
            RankMethod::Ard => "ard",
        })
    }
}

/// A range of component counts `LOW-HIGH`, both included, `1 <= LOW <= HIGH <= MAX_RANK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KRange {
    low: usize,
    high: usize,
}

impl KRange {
    /// The range `low..=high`.
    ///
    /// # Errors
    /// [`ParamError::BadRankRange`] unless `1 <= low <= high`, and
    /// [`ParamError::RankTooLarge`] above [`MAX_RANK`].
    pub fn new(low: usize, high: usize) -> Result<KRange, ParamError> {
        if low == 0 || low > high {
            return Err(ParamError::BadRankRange(format!("{low}-{high}")));
        }
        if high > MAX_RANK {
            return Err(ParamError::RankTooLarge {
                high,
                limit: MAX_RANK,
                what: "components demix tries",
            });
        }
        Ok(KRange { low, high })
    }

    /// The smallest K.
    pub fn low(self) -> usize {
        self.low
    }

    /// The largest K.
    pub fn high(self) -> usize {
        self.high
    }
}

impl Default for KRange {
    /// 2-32.
    fn default() -> Self {
        KRange { low: 2, high: 32 }
    }
}

impl FromStr for KRange {
    type Err = ParamError;

    /// `LOW-HIGH`, or one number for a range of one.
    fn from_str(s: &str) -> Result<KRange, ParamError> {
        let bad = || ParamError::BadRankRange(s.to_string());
        let (low, high) = s.split_once('-').unwrap_or((s, s));
        let parse = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
        let (low, high) = (parse(low)?, parse(high)?);
        if low == 0 || low > high {
            return Err(bad());
        }
        KRange::new(low, high)
    }
}

impl fmt::Display for KRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

/// Everything a rank selection needs besides the data and the model's [`NmfParams`].
#[derive(Debug, Clone, PartialEq)]
pub struct RankParams {
    pub(crate) range: KRange,
    pub(crate) method: RankMethod,
    pub(crate) starts: usize,
    pub(crate) held_out: f32,
    pub(crate) max_frames: usize,
    pub(crate) tol: f64,
    pub(crate) loss: Loss,
}

impl Default for RankParams {
    fn default() -> Self {
        RankParams::new(KRange::default())
    }
}

impl RankParams {
    /// The sweep over `range` from 3 starts, hiding 8 % of the entries, on at most 128
    /// frames, each K stopped when its cost falls by less than 0.1 % over 10 iterations, in
    /// the Kullback-Leibler divergence.
    pub fn new(range: KRange) -> RankParams {
        RankParams {
            range,
            method: RankMethod::Sweep,
            starts: 3,
            held_out: 0.08,
            max_frames: 128,
            tol: 1e-3,
            loss: Loss::KullbackLeibler,
        }
    }

    /// The method (default [`RankMethod::Sweep`]).
    pub fn with_method(mut self, method: RankMethod) -> Self {
        self.method = method;
        self
    }

    /// The range of K (default 2-32).
    pub fn with_range(mut self, range: KRange) -> Self {
        self.range = range;
        self
    }

    /// Seeded starts per K, at least 2 and at most 16 (default 3).
    pub fn with_starts(mut self, starts: usize) -> Self {
        self.starts = starts;
        self
    }

    /// The fraction of entries each start holds out, in [0.01, 0.5] (default 0.08).
    pub fn with_held_out(mut self, fraction: f32) -> Self {
        self.held_out = fraction;
        self
    }

    /// Most frames fitted: longer data have their frames summed in equal groups down to at
    /// most this many (default 128; at least 16). Sums keep the structure `W H` exactly.
    pub fn with_max_frames(mut self, frames: usize) -> Self {
        self.max_frames = frames;
        self
    }

    /// Stop each K of the sweep when its fitted cost falls by less than this fraction over 10
    /// iterations (default 1e-3, ten times a separation's default: the rule compares K whose
    /// held-out costs differ several-fold). The iteration limit is that of the [`NmfParams`].
    pub fn with_tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// The divergence the selection fits and measures with, whatever the loss of the fit
    /// that follows it (default Kullback-Leibler, the loss the rule was measured with: with
    /// Itakura-Saito, which weighs the quietest bins as much as the loudest, the held-out
    /// cost keeps falling tenfold past the true rank, and the sweep chose 4, 6 and 10
    /// components for mixtures of 3, 5 and 8 notes).
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// The range.
    pub fn range(&self) -> KRange {
        self.range
    }

    /// The method.
    pub fn method(&self) -> RankMethod {
        self.method
    }

    /// Starts per K.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// The divergence of the selection.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The held-out fraction.
    pub fn held_out(&self) -> f32 {
        self.held_out
    }

    /// Checks what does not depend on the data.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check(&self) -> Result<(), ParamError> {
        self.loss.check()?;
        if !(2..=16).contains(&self.starts) {
            return Err(ParamError::OutOfRange {
                param: Param::RankStarts,
                expected: "between 2 and 16",
                got: self.starts as f64,
            });
        }
        if !(self.held_out.is_finite() && (0.01..=0.5).contains(&self.held_out)) {
            return Err(ParamError::OutOfRange {
                param: Param::HeldOut,
                expected: "between 0.01 and 0.5",
                got: f64::from(self.held_out),
            });
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(ParamError::OutOfRange {
                param: Param::Tol,
                expected: "a finite number of at least 0",
                got: self.tol,
            });
        }
        if self.max_frames < 16 {
            return Err(ParamError::OutOfRange {
                param: Param::MaxFrames,
                expected: "at least 16",
                got: self.max_frames as f64,
            });
        }
        Ok(())
    }

    /// Checks these parameters and `nmf` for a selection followed by a fit (`-k auto`):
    /// `nmf`'s number of components, chosen later, is taken as one. The selection fits
    /// components of one frame whatever `nmf`'s length in frames; the fit that follows has it.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check_with(&self, nmf: &NmfParams) -> Result<(), ParamError> {
        self.check()?;
        let mut one = nmf.clone();
        one.components = 1;
        one.check()
    }

    /// Checks the range against data of `bins × frames` (as given, before any pooling).
    pub(super) fn check_for(&self, bins: usize, frames: usize) -> Result<(), ParamError> {
        let high = self.range.high();
        if high > frames {
            return Err(ParamError::RankTooLarge {
                high,
                limit: frames,
                what: "frames of this input",
            });
        }
        if high > bins {
            return Err(ParamError::RankTooLarge {
                high,
                limit: bins,
                what: "frequency bins of this input",
            });
        }
        Ok(())
    }
}
