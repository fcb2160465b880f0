//! The settings of an evaluation: [`EvalParams`] with documented defaults, checked once into
//! an [`Evaluator`].

use crate::error::{Param, ParamError};

/// Which BSS Eval to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// BSS Eval v4 as museval computes it: filters fitted on the whole track, ratios in
    /// windows, median over windows (the default).
    #[default]
    V4,
    /// BSS Eval v3 as mir_eval computes it: `bss_eval_sources` for one channel,
    /// `bss_eval_images` for several, over the whole signal.
    V3,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::V4 => "v4",
            Mode::V3 => "v3",
        })
    }
}

/// The most sources [`EvalParams::with_permute`] tries every assignment of.
pub const MAX_PERMUTED_SOURCES: usize = 9;

/// The default taps of the distortion filters, as in museval and mir_eval.
pub const DEFAULT_FILTER_LEN: usize = 512;

/// The most taps [`EvalParams::with_filter_len`] accepts: the filters are solved from a
/// system of `sources · channels · taps` unknowns, whose matrix grows with the square of it
/// (at 4096 taps, three mono sources take 1.2 GB and most of a minute).
pub const MAX_FILTER_LEN: usize = 4096;

/// The default v4 window, in seconds (museval's `win` of one second).
pub const DEFAULT_WINDOW: f64 = 1.0;

/// The default hop between v4 windows, in seconds (museval's `hop` of one second).
pub const DEFAULT_HOP: f64 = 1.0;

/// Settings of an evaluation. Build with [`EvalParams::new`] and the `with_*` setters; every
/// setter states its default.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalParams {
    mode: Mode,
    filter_len: usize,
    window: f64,
    hop: f64,
    permute: bool,
}

impl Default for EvalParams {
    fn default() -> Self {
        EvalParams::new()
    }
}

impl EvalParams {
    /// BSS Eval v4 with 512-tap filters, 1 s windows and hops, estimates matched in order.
    pub fn new() -> EvalParams {
        EvalParams {
            mode: Mode::default(),
            filter_len: DEFAULT_FILTER_LEN,
            window: DEFAULT_WINDOW,
            hop: DEFAULT_HOP,
            permute: false,
        }
    }

    /// Which BSS Eval (default [`Mode::V4`]).
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Taps of the distortion filters (default 512, as in both Python packages; at most
    /// [`MAX_FILTER_LEN`]).
    pub fn with_filter_len(mut self, taps: usize) -> Self {
        self.filter_len = taps;
        self
    }

    /// Window of v4 in seconds (default 1); `floor(seconds · sample rate)` samples.
    pub fn with_window(mut self, seconds: f64) -> Self {
        self.window = seconds;
        self
    }

    /// Hop between v4 windows in seconds (default 1); `floor(seconds · sample rate)` samples.
    pub fn with_hop(mut self, seconds: f64) -> Self {
        self.hop = seconds;
        self
    }

    /// Try every assignment of estimates to references and keep the one with the highest mean
    /// SIR (default off: estimate `i` belongs to reference `i`).
    pub fn with_permute(mut self, permute: bool) -> Self {
        self.permute = permute;
        self
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Taps of the distortion filters.
    pub fn filter_len(&self) -> usize {
        self.filter_len
    }

    /// The v4 window in seconds.
    pub fn window(&self) -> f64 {
        self.window
    }

    /// The v4 hop in seconds.
    pub fn hop(&self) -> f64 {
        self.hop
    }

    /// Whether every assignment is tried.
    pub fn permute(&self) -> bool {
        self.permute
    }

    /// Checks every parameter that does not depend on the data, once: the [`Evaluator`] it
    /// returns evaluates any number of tracks without checking them again.
    ///
    /// # Errors
    /// The first [`ParamError`] found: a filter length of 0 or above [`MAX_FILTER_LEN`], or a
    /// window or hop that is not a finite number of seconds above 0.
    pub fn check(&self) -> Result<Evaluator, ParamError> {
        if self.filter_len == 0 {
            return Err(ParamError::OutOfRange {
                param: Param::FilterLen,
                expected: "at least 1",
                got: 0.0,
            });
        }
        if self.filter_len > MAX_FILTER_LEN {
            return Err(ParamError::OutOfRange {
                param: Param::FilterLen,
                expected: FILTER_LEN_LIMIT,
                got: self.filter_len as f64,
            });
        }
        for (param, value) in [(Param::EvalWindow, self.window), (Param::EvalHop, self.hop)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ParamError::OutOfRange {
                    param,
                    expected: "a finite number of seconds above 0",
                    got: value,
                });
            }
        }
        Ok(Evaluator {
            params: self.clone(),
        })
    }
}

/// [`MAX_FILTER_LEN`] in the words of a [`ParamError`].
const FILTER_LEN_LIMIT: &str = "at most 4096 taps";

/// Settings that passed [`EvalParams::check`]; [`Evaluator::evaluate`] scores tracks with them.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluator {
    pub(super) params: EvalParams,
}

impl Evaluator {
    /// The settings.
    pub fn params(&self) -> &EvalParams {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_length_limit_is_stated_as_the_constant() {
        assert!(FILTER_LEN_LIMIT.contains(&MAX_FILTER_LEN.to_string()));
    }

    #[test]
    fn a_filter_length_above_the_limit_is_rejected() {
        let params = EvalParams::new().with_filter_len(MAX_FILTER_LEN + 1);
        let e = params.check().unwrap_err();
        assert!(e.to_string().contains("at most 4096"), "{e}");
        assert!(
            EvalParams::new()
                .with_filter_len(MAX_FILTER_LEN)
                .check()
                .is_ok()
        );
    }
}
