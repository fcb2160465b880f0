//! How the binary fails: one error type, one printer, the exit codes, and the one map from the
//! library's parameters to the flags that set them.

use std::process::ExitCode;

use demix::error::{Param, ParamError};

/// Exit code for a failed input or output (bad audio, a failed write, a file in a batch).
pub(super) const FAILURE: u8 = 1;
/// Exit code for a command-line mistake: a flag that does not parse or a value out of range.
pub(super) const USAGE: u8 = 2;
/// Exit code for a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub(super) const INTERRUPTED: u8 = 130;

/// Why a command stopped: the one line printed and the exit code.
#[derive(Debug)]
pub(super) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A command-line mistake (exit code 2).
    pub(super) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: USAGE,
        }
    }

    /// A failed input or output (exit code 1); the message names the file.
    pub(super) fn failed(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: FAILURE,
        }
    }

    /// Prints the message on stderr and gives the exit code.
    pub(super) fn report(&self) -> ExitCode {
        print_error(&self.message);
        ExitCode::from(self.code)
    }
}

impl From<ParamError> for Failure {
    fn from(e: ParamError) -> Failure {
        Failure::usage(describe_param_error(&e))
    }
}

/// The one way errors reach stderr: `demix: error: <message>`, control characters escaped so
/// that a file name with a newline stays on one line.
pub(super) fn print_error(message: &str) {
    eprintln!("demix: error: {}", one_line(message));
}

/// `message` with control characters (newlines, tabs, escapes) written as Rust escapes.
pub(super) fn one_line(message: &str) -> String {
    if !message.chars().any(char::is_control) {
        return message.to_string();
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A parameter error prefixed with the flag that sets the parameter.
pub(super) fn describe_param_error(e: &ParamError) -> String {
    format!("{}: {e}", flag(e.param()))
}

/// The flag that sets `param`, or what the user gave it with.
pub(super) fn flag(param: Param) -> &'static str {
    match param {
        Param::Components => "-k/--components",
        Param::NFft => "--n-fft",
        Param::MaxMemory => "--max-memory",
        Param::Hop | Param::EvalHop => "--hop",
        Param::Loss => "--loss",
        Param::Tol => "--tol",
        Param::Floor => "--floor",
        Param::Sparsity => "--sparsity",
        Param::Smoothness => "--smoothness",
        Param::Restarts => "--restarts",
        Param::MaskPower => "--mask-power",
        Param::SpatialIterations => "--spatial-iterations",
        Param::PitchShifts => "--pitch-shifts",
        Param::BandsPerOctave => "--bands-per-octave",
        Param::ShiftPenalty => "--shift-penalty",
        Param::MaxFrames => "--max-frames",
        Param::Sources => "--sources",
        Param::Templates => "--source",
        Param::SourceName => "source name",
        Param::Examples => "inputs",
        Param::Notes => "--notes",
        Param::HarmonicDecay => "--harmonic-decay",
        Param::OnsetThreshold => "--onset-threshold",
        Param::OffsetThreshold => "--offset-threshold",
        Param::MinLevel => "--min-level",
        Param::Reonset => "--reonset",
        Param::NoteConfidence => "--note-confidence",
        Param::MinDuration => "--min-duration",
        Param::Midi => "--midi",
        Param::FilterLen => "--filter-len",
        Param::EvalWindow => "--window",
        Param::KRange => "-k/--k-range",
        Param::RankStarts => "--starts",
        Param::HeldOut => "--held-out",
        Param::TemplateFrames => "--frames",
        // Set by no flag: the library's own checks.
        _ => "invalid parameter",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_in_a_message_is_escaped() {
        assert_eq!(one_line("a\nb.wav: bad"), "a\\nb.wav: bad");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn parameter_errors_name_their_flag_and_are_usage_errors() {
        let e = ParamError::OutOfRange {
            param: Param::Tol,
            expected: "at least 0",
            got: -1.0,
        };
        let failure = Failure::from(e);
        assert_eq!(failure.code, USAGE);
        assert!(
            failure.message.starts_with("--tol: tol must be"),
            "{}",
            failure.message
        );
    }
}
