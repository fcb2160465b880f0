//! The divergence the factorisation minimises, named as users type it.

use std::fmt;
use std::str::FromStr;

use super::divergence::Divergence;
use crate::error::{Param, ParamError};

/// The divergence the factorisation minimises: a member of the β-divergence family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Itakura–Saito divergence (β = 0): scale-invariant, weights quiet bins as much as loud.
    ItakuraSaito,
    /// Generalised Kullback–Leibler divergence (β = 1).
    KullbackLeibler,
    /// Half the squared Euclidean distance (β = 2).
    Euclidean,
    /// Any β in [[`Loss::MIN_BETA`], [`Loss::MAX_BETA`]].
    Beta(f32),
}

impl Loss {
    /// Smallest accepted β.
    pub const MIN_BETA: f32 = 0.0;
    /// Largest accepted β: larger powers of spectrogram values overflow `f32`.
    pub const MAX_BETA: f32 = 4.0;

    /// The β of this divergence.
    pub fn beta(self) -> f32 {
        match self {
            Loss::ItakuraSaito => 0.0,
            Loss::KullbackLeibler => 1.0,
            Loss::Euclidean => 2.0,
            Loss::Beta(b) => b,
        }
    }

    /// The exponent γ(β) of the majorisation–minimisation updates (Févotte & Idier 2011), which
    /// keeps the cost from rising: `1/(2-β)` below 1, 1 on [1, 2], `1/(β-1)` above 2.
    pub fn gamma(self) -> f32 {
        Divergence::new(self.beta()).gamma()
    }

    /// The divergence of this loss, if its β is in range: made here once, for every pass.
    pub(super) fn check(self) -> Result<Divergence, ParamError> {
        let b = self.beta();
        if !(Self::MIN_BETA..=Self::MAX_BETA).contains(&b) {
            return Err(ParamError::OutOfRange {
                param: Param::Loss,
                expected: "between 0 and 4",
                got: f64::from(b),
            });
        }
        Ok(Divergence::new(b))
    }
}

impl Default for Loss {
    /// Kullback–Leibler.
    fn default() -> Self {
        Loss::KullbackLeibler
    }
}

impl FromStr for Loss {
    type Err = ParamError;

    /// `is`, `kl`, `euclidean` (also the long names and `frobenius`), or a number for β.
    fn from_str(s: &str) -> Result<Loss, ParamError> {
        let lower = s.trim().to_ascii_lowercase();
        let loss = match lower.as_str() {
            "is" | "itakura-saito" => Loss::ItakuraSaito,
            "kl" | "kullback-leibler" => Loss::KullbackLeibler,
            "euclidean" | "euc" | "frobenius" => Loss::Euclidean,
            other => match other.parse::<f32>() {
                Ok(b) if b.is_finite() => match b {
                    0.0 => Loss::ItakuraSaito,
                    1.0 => Loss::KullbackLeibler,
                    2.0 => Loss::Euclidean,
                    b => Loss::Beta(b),
                },
                _ => return Err(ParamError::UnknownLoss(s.to_string())),
            },
        };
        loss.check()?;
        Ok(loss)
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::ItakuraSaito => f.write_str("is"),
            Loss::KullbackLeibler => f.write_str("kl"),
            Loss::Euclidean => f.write_str("euclidean"),
            Loss::Beta(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_parse_by_name_and_by_beta() {
        assert_eq!("is".parse::<Loss>(), Ok(Loss::ItakuraSaito));
        assert_eq!("KL".parse::<Loss>(), Ok(Loss::KullbackLeibler));
        assert_eq!("euclidean".parse::<Loss>(), Ok(Loss::Euclidean));
        assert_eq!("2".parse::<Loss>(), Ok(Loss::Euclidean));
        assert_eq!("0.5".parse::<Loss>(), Ok(Loss::Beta(0.5)));
        assert!(matches!(
            "cosine".parse::<Loss>(),
            Err(ParamError::UnknownLoss(_))
        ));
        assert!(matches!(
            "-1".parse::<Loss>(),
            Err(ParamError::OutOfRange { .. })
        ));
        assert!(matches!(
            "nan".parse::<Loss>(),
            Err(ParamError::UnknownLoss(_))
        ));
    }

    #[test]
    fn gamma_follows_fevotte_and_idier() {
        assert_eq!(Loss::ItakuraSaito.gamma(), 0.5);
        assert_eq!(Loss::Beta(0.5).gamma(), 1.0 / 1.5);
        assert_eq!(Loss::KullbackLeibler.gamma(), 1.0);
        assert_eq!(Loss::Beta(1.5).gamma(), 1.0);
        assert_eq!(Loss::Euclidean.gamma(), 1.0);
        assert_eq!(Loss::Beta(3.0).gamma(), 0.5);
    }
}
