//! The range of component counts a rank selection tries, and its method.

use std::fmt;
use std::str::FromStr;

use crate::error::ParamError;

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
