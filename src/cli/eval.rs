//! `demix eval`: pairs reference and estimate files, evaluates them with the library, prints
//! the scores and writes them as JSON.

mod pairing;
mod report;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use rayon::prelude::*;

use super::failure::Failure;
use super::{Output, same_file};
use demix::audio::{Audio, read_audio};
use demix::error::{EvalError, Side};
use demix::eval::{
    DEFAULT_FILTER_LEN, DEFAULT_HOP, DEFAULT_WINDOW, EvalParams, Evaluator, Mode, Scores,
};
use pairing::{Files, pair_files};

/// Shown after `demix eval --help`.
pub const EVAL_EXAMPLE: &str = "\
Example:
  demix eval --reference ref --estimate out/mix --json scores.json
  scores out/mix/bass.wav against ref/bass.wav, and so on for every WAV or FLAC file in ref.
  The table is the result: -q hides notes and warnings, never the table.";

/// Options of `demix eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Reference sources: a folder of WAV or FLAC files, one per source, or one audio file.
    #[arg(short, long, value_name = "REF")]
    pub reference: PathBuf,
    /// Estimated sources: a folder holding a WAV or FLAC file of the same name (extension
    /// aside) for every reference, or one audio file. An estimate named other (the free
    /// components demix separate writes beside named stems) is left out, with a note, when no
    /// reference has that name.
    #[arg(short, long, value_name = "EST")]
    pub estimate: PathBuf,
    /// BSS Eval version: v4 as museval computes it, or v3 as mir_eval does.
    #[arg(long, value_enum, default_value_t = ModeArg::from(Mode::default()))]
    pub mode: ModeArg,
    /// Match estimates to references by the best mean SIR instead of by file name.
    #[arg(long)]
    pub permute: bool,
    /// Also write the scores as JSON to FILE (a new file; see --force).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Replace an existing --json file (never one of the inputs).
    #[arg(long)]
    pub force: bool,
    /// Window of v4 in seconds.
    #[arg(long, default_value_t = DEFAULT_WINDOW, value_name = "SECONDS")]
    pub window: f64,
    /// Hop between v4 windows in seconds.
    #[arg(long, default_value_t = DEFAULT_HOP, value_name = "SECONDS")]
    pub hop: f64,
    /// Taps of the distortion filters (at most 4096).
    #[arg(long = "filter-len", default_value_t = DEFAULT_FILTER_LEN, value_name = "TAPS")]
    pub filter_len: usize,
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// BSS Eval v4 (museval): filters fitted once, median over 1 s windows.
    V4,
    /// BSS Eval v3 (mir_eval): bss_eval_sources for mono, bss_eval_images for several channels.
    V3,
}

impl From<Mode> for ModeArg {
    fn from(mode: Mode) -> ModeArg {
        match mode {
            Mode::V4 => ModeArg::V4,
            Mode::V3 => ModeArg::V3,
        }
    }
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::V4 => Mode::V4,
            ModeArg::V3 => Mode::V3,
        }
    }
}

impl EvalArgs {
    /// The library parameters these options ask for (checked by the library).
    pub fn params(&self) -> EvalParams {
        EvalParams::new()
            .with_mode(self.mode.into())
            .with_permute(self.permute)
            .with_window(self.window)
            .with_hop(self.hop)
            .with_filter_len(self.filter_len)
    }
}

/// A failed input: the file (or flag) it is about, and what is wrong.
fn failed(what: impl AsRef<Path>, problem: impl std::fmt::Display) -> Failure {
    Failure::failed(format!("{}: {problem}", what.as_ref().display()))
}

/// Runs `demix eval`.
pub(super) fn run(args: &EvalArgs, out: &Output) -> Result<ExitCode, Failure> {
    let evaluator = args.params().check()?;
    let params = evaluator.params();
    out.detail(&format!(
        "demix eval: mode={} permute={} window={} s hop={} s filter_len={}",
        params.mode(),
        params.permute(),
        params.window(),
        params.hop(),
        params.filter_len()
    ));
    let started = Instant::now();
    let files = pair_files(&args.reference, &args.estimate, args.permute)?;
    check_json(args, &files)?;
    for path in &files.left_out {
        note(
            out,
            &format!(
                "{}: left out: no reference is named {} (the free components demix separate \
                 writes beside named stems)",
                path.display(),
                demix::sources::OTHER
            ),
        );
    }
    let scores = evaluate(args, &files, &evaluator)?;
    if scores.loading > 0.0 {
        out.warn(&format!(
            "{}: the references are nearly linearly dependent (pure tones are); a diagonal \
             loading of {:.0e} of the mean was needed to fit the filters, and museval or \
             mir_eval may give other figures",
            args.reference.display(),
            scores.loading
        ));
    }
    report::print_table(&files, &scores, params);
    out.detail(&format!("{:.2} s", started.elapsed().as_secs_f64()));
    if let Some(path) = &args.json {
        let text = report::to_json(&files, &scores, args.permute) + "\n";
        write_json(path, &text, args.force)
            .map_err(|e| failed(path, format_args!("cannot write: {e}")))?;
        out.detail(&format!("  {}", path.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// A note on stderr, hidden by `-q`.
fn note(out: &Output, message: &str) {
    if !out.quiet {
        eprintln!("demix: note: {message}");
    }
}

/// Refuses, before any work, a `--json` file that is one of the inputs (even with `--force`),
/// a folder, one that exists (without `--force`), or one in a folder that does not exist.
fn check_json(args: &EvalArgs, files: &Files) -> Result<(), Failure> {
    let Some(path) = &args.json else {
        return Ok(());
    };
    let mut inputs = files.references.iter().chain(&files.estimates);
    if inputs.any(|input| same_file(input, path)) {
        return Err(failed(
            path,
            "is one of the inputs; choose another file for --json",
        ));
    }
    if path.is_dir() {
        return Err(failed(path, "is a folder; --json takes a file name"));
    }
    if path.exists() && !args.force {
        return Err(failed(path, "already exists; use --force to replace it"));
    }
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => Err(failed(
            path,
            format!("cannot write: no folder {}", folder.display()),
        )),
        _ => Ok(()),
    }
}

/// Writes `text` to `path`: a new file, or with `force` any file.
fn write_json(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    if force {
        return fs::write(path, text);
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Reads the files and evaluates them.
fn evaluate(args: &EvalArgs, files: &Files, evaluator: &Evaluator) -> Result<Scores, Failure> {
    // Files are decoded in parallel (the evaluation after it is parallel inside).
    let read = |paths: &[PathBuf]| -> Result<Vec<Audio>, Failure> {
        paths
            .par_iter()
            .map(|p| read_audio(p).map_err(|e| failed(p, e)))
            .collect()
    };
    let references = read(&files.references)?;
    let estimates = read(&files.estimates)?;
    match evaluator.evaluate(&references, &estimates) {
        Ok(scores) => Ok(scores),
        Err(demix::Error::Eval(e)) => Err(describe_eval_error(&e, files, args)),
        Err(e) => Err(failed(&args.reference, e)),
    }
}
/// The file an evaluation error is about, with the problem in words.
fn describe_eval_error(e: &EvalError, files: &Files, args: &EvalArgs) -> Failure {
    let path = |side: Side, index: usize| match side {
        Side::Reference => &files.references[index],
        Side::Estimate => &files.estimates[index],
    };
    match e {
        EvalError::Mismatch {
            side,
            index,
            property,
            expected,
            actual,
        } => failed(
            path(*side, *index),
            format!(
                "{}, but {} has {}",
                property.describe(*actual),
                files.references[0].display(),
                property.describe(*expected)
            ),
        ),
        EvalError::Silent { side, index } => failed(
            path(*side, *index),
            format!("silent (every sample is zero); BSS Eval is undefined for a silent {side}"),
        ),
        EvalError::NonFinite {
            side,
            index,
            channel,
            sample,
            value,
        } => failed(
            path(*side, *index),
            format!("sample {sample} of channel {channel} is {value}"),
        ),
        EvalError::TooManyToPermute { .. } => failed("--permute", e),
        EvalError::WindowTooShort { .. } => failed("--window/--hop", e),
        _ => failed(&args.reference, e),
    }
}
