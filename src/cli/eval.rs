//! `demix eval`: pairs reference and estimate files, evaluates them with the library, prints
//! the scores and writes them as JSON.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use rayon::prelude::*;
use serde_json::Value;

use super::Output;
use super::failure::{FAILURE, describe_param_error};
use demix::audio::{Audio, read_audio};
use demix::error::{EvalError, Side};
use demix::eval::{self, EvalParams, Metrics, Mode, Scores};

/// Shown after `demix eval --help`.
pub const EVAL_EXAMPLE: &str = "\
Example:
  demix eval --reference ref --estimate out/mix --json scores.json
  scores out/mix/bass.wav against ref/bass.wav, and so on for every WAV file in ref.";

/// Options of `demix eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Reference sources: a folder of WAV files, one per source, or one audio file.
    #[arg(short, long, value_name = "REF")]
    pub reference: PathBuf,
    /// Estimated sources: a folder holding a WAV file of the same name for every reference, or
    /// one audio file.
    #[arg(short, long, value_name = "EST")]
    pub estimate: PathBuf,
    /// BSS Eval version: v4 as museval computes it, or v3 as mir_eval does.
    #[arg(long, value_enum, default_value_t = ModeArg::V4)]
    pub mode: ModeArg,
    /// Match estimates to references by the best mean SIR instead of by file name.
    #[arg(long)]
    pub permute: bool,
    /// Also write the scores as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Window of v4 in seconds.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub window: f64,
    /// Hop between v4 windows in seconds.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub hop: f64,
    /// Taps of the distortion filters.
    #[arg(long = "filter-len", default_value_t = 512, value_name = "TAPS")]
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

impl EvalArgs {
    /// The library parameters these options ask for (checked by the library).
    pub fn params(&self) -> EvalParams {
        let mode = match self.mode {
            ModeArg::V4 => Mode::V4,
            ModeArg::V3 => Mode::V3,
        };
        EvalParams::new()
            .with_mode(mode)
            .with_permute(self.permute)
            .with_window(self.window)
            .with_hop(self.hop)
            .with_filter_len(self.filter_len)
    }
}

/// The files of one evaluation: `estimates[i]` belongs to `references[i]` (by name), or is just
/// the `i`-th estimate (with `--permute`).
struct Files {
    names: Vec<String>,
    references: Vec<PathBuf>,
    estimates: Vec<PathBuf>,
}

/// A failure: the file (or flag) it is about, and what is wrong.
struct Failure {
    what: String,
    problem: String,
}

impl Failure {
    fn new(what: impl AsRef<Path>, problem: impl Into<String>) -> Failure {
        Failure {
            what: what.as_ref().display().to_string(),
            problem: problem.into(),
        }
    }
}

/// Runs `demix eval`.
pub fn run_eval(args: &EvalArgs, out: &Output) -> ExitCode {
    let params = args.params();
    if let Err(e) = params.check() {
        out.error(&describe_param_error(&e));
        return ExitCode::from(FAILURE);
    }
    out.detail(&format!(
        "demix eval: mode={} permute={} window={} s hop={} s filter_len={}",
        params.mode(),
        params.permute(),
        params.window(),
        params.hop(),
        params.filter_len()
    ));
    let started = Instant::now();
    match evaluate(args, &params) {
        Ok((files, scores)) => {
            if scores.loading > 0.0 {
                out.warn(&format!(
                    "{}: the references are nearly linearly dependent (pure tones are); a \
                     diagonal loading of {:.0e} of the mean was needed to fit the filters, \
                     and museval or mir_eval may give other figures",
                    args.reference.display(),
                    scores.loading
                ));
            }
            report(&files, &scores, args, out);
            out.detail(&format!("{:.2} s", started.elapsed().as_secs_f64()));
            if let Some(path) = &args.json {
                let text = to_json(&files, &scores, args.permute);
                if let Err(e) = fs::write(path, text + "\n") {
                    out.error(&format!("{}: cannot write: {e}", path.display()));
                    return ExitCode::from(FAILURE);
                }
                out.detail(&format!("  {}", path.display()));
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            out.error(&format!("{}: {}", f.what, f.problem));
            ExitCode::from(FAILURE)
        }
    }
}

/// Pairs the files, reads them and evaluates them.
fn evaluate(args: &EvalArgs, params: &EvalParams) -> Result<(Files, Scores), Failure> {
    let files = pair_files(&args.reference, &args.estimate, args.permute)?;
    // Files are decoded in parallel (the evaluation after it is parallel inside).
    let read = |paths: &[PathBuf]| -> Result<Vec<Audio>, Failure> {
        paths
            .par_iter()
            .map(|p| read_audio(p).map_err(|e| Failure::new(p, e.to_string())))
            .collect()
    };
    let references = read(&files.references)?;
    let estimates = read(&files.estimates)?;
    match eval::evaluate(&references, &estimates, params) {
        Ok(scores) => Ok((files, scores)),
        Err(demix::Error::Eval(e)) => Err(describe_eval_error(&e, &files, args)),
        Err(demix::Error::Param(e)) => Err(Failure {
            what: "invalid parameter".into(),
            problem: e.to_string(),
        }),
        Err(e) => Err(Failure::new(&args.reference, e.to_string())),
    }
}

/// The WAV files of a folder (by extension, any case), sorted by name.
fn wav_files(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries = fs::read_dir(dir).map_err(|e| Failure::new(dir, format!("cannot read: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Failure::new(dir, format!("cannot read: {e}")))?
            .path();
        let is_wav = path
            .extension()
            .and_then(OsStr::to_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"));
        if is_wav && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Failure::new(dir, "no WAV files in this folder"));
    }
    Ok(files)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// Two files, or the WAV files of two folders matched by name (or listed, with `permute`).
fn pair_files(reference: &Path, estimate: &Path, permute: bool) -> Result<Files, Failure> {
    for path in [reference, estimate] {
        if !path.exists() {
            return Err(Failure::new(path, "no such file or folder"));
        }
    }
    match (reference.is_dir(), estimate.is_dir()) {
        (false, false) => Ok(Files {
            names: vec![stem(reference)],
            references: vec![reference.to_path_buf()],
            estimates: vec![estimate.to_path_buf()],
        }),
        (true, true) => {
            let references = wav_files(reference)?;
            let names: Vec<String> = references.iter().map(|p| stem(p)).collect();
            let listed = wav_files(estimate)?;
            let estimates = if permute {
                if listed.len() != references.len() {
                    return Err(Failure::new(
                        estimate,
                        format!(
                            "{} estimates for {} references in {}",
                            listed.len(),
                            references.len(),
                            reference.display()
                        ),
                    ));
                }
                listed
            } else {
                let mut matched = Vec::new();
                for r in &references {
                    let e = estimate.join(r.file_name().expect("a listed file"));
                    if !e.is_file() {
                        return Err(Failure::new(
                            &e,
                            format!("missing: no estimate for the reference {}", r.display()),
                        ));
                    }
                    matched.push(e);
                }
                if let Some(extra) = listed.iter().find(|e| !matched.contains(e)) {
                    return Err(Failure::new(
                        extra,
                        format!(
                            "no reference of this name in {} (files are matched by name; \
                             --permute matches them by score)",
                            reference.display()
                        ),
                    ));
                }
                matched
            };
            Ok(Files {
                names,
                references,
                estimates,
            })
        }
        (true, false) => Err(Failure::new(
            estimate,
            format!(
                "is a file but the reference {} is a folder; give two folders or two files",
                reference.display()
            ),
        )),
        (false, true) => Err(Failure::new(
            estimate,
            format!(
                "is a folder but the reference {} is a file; give two folders or two files",
                reference.display()
            ),
        )),
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
        } => Failure::new(
            path(*side, *index),
            format!(
                "{}, but {} has {}",
                property.describe(*actual),
                files.references[0].display(),
                property.describe(*expected)
            ),
        ),
        EvalError::Silent { side, index } => Failure::new(
            path(*side, *index),
            format!("silent (every sample is zero); BSS Eval is undefined for a silent {side}"),
        ),
        EvalError::NonFinite {
            side,
            index,
            channel,
            sample,
            value,
        } => Failure::new(
            path(*side, *index),
            format!("sample {sample} of channel {channel} is {value}"),
        ),
        EvalError::TooManyToPermute { .. } => Failure {
            what: "--permute".into(),
            problem: e.to_string(),
        },
        EvalError::WindowTooShort { .. } => Failure {
            what: "--window/--hop".into(),
            problem: e.to_string(),
        },
        _ => Failure::new(&args.reference, e.to_string()),
    }
}

/// A figure with three decimals; `nan`, `inf`, and `-` for one that does not apply.
fn figure(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_nan() => "nan".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        Some(v) => format!("{v:.3}"),
    }
}

/// A folder's or a single file's name for the title line.
fn label(paths: &[PathBuf]) -> String {
    match paths {
        [] => String::new(),
        [one] => one.display().to_string(),
        [first, ..] => first.parent().unwrap_or(first).display().to_string(),
    }
}

/// The table of scores on stdout.
fn report(files: &Files, scores: &Scores, args: &EvalArgs, out: &Output) {
    let permute = args.permute;
    let how = match scores.mode {
        Mode::V4 => {
            let used = scores.frames - scores.silent_frames;
            let mut how = format!(
                "BSS Eval v4 (museval), median over {used} window{} of {} s every {} s",
                if used == 1 { "" } else { "s" },
                args.window,
                args.hop
            );
            if scores.silent_frames > 0 {
                how.push_str(&format!(" ({} silent left out)", scores.silent_frames));
            }
            how
        }
        Mode::V3 if scores.sources[0].metrics.isr.is_none() => {
            "BSS Eval v3 (mir_eval bss_eval_sources)".to_string()
        }
        Mode::V3 => "BSS Eval v3 (mir_eval bss_eval_images)".to_string(),
    };
    out.info(&format!(
        "{} against {}: {how}; dB",
        label(&files.estimates),
        label(&files.references)
    ));
    let width = files
        .names
        .iter()
        .map(|n| n.chars().count())
        .chain(["median".len(), "source".len()])
        .max()
        .unwrap_or(6);
    let estimate_width = files
        .estimates
        .iter()
        .map(|p| stem(p).chars().count())
        .chain(["estimate".len()])
        .max()
        .unwrap_or(8);
    let row = |name: &str, estimate: &str, m: &Metrics, si_sdr: f64| {
        let mut line = format!("{name:<width$}");
        if permute {
            line.push_str(&format!("  {estimate:<estimate_width$}"));
        }
        for v in [Some(m.sdr), Some(m.sir), Some(m.sar), m.isr, Some(si_sdr)] {
            line.push_str(&format!("  {:>8}", figure(v)));
        }
        line
    };
    let mut header = format!("{:<width$}", "source");
    if permute {
        header.push_str(&format!("  {:<estimate_width$}", "estimate"));
    }
    for title in ["SDR", "SIR", "SAR", "ISR", "SI-SDR"] {
        header.push_str(&format!("  {title:>8}"));
    }
    out.info(&header);
    for (name, s) in files.names.iter().zip(&scores.sources) {
        out.info(&row(
            name,
            &stem(&files.estimates[s.estimate]),
            &s.metrics,
            s.si_sdr,
        ));
    }
    out.info(&row("median", "", &scores.median, scores.median_si_sdr));
}

/// A JSON number, or null for NaN, infinite and inapplicable values.
fn number(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| "null".to_string(), |v| Value::from(v).to_string())
}

/// A JSON string.
fn string(s: &str) -> String {
    Value::from(s).to_string()
}

/// The metrics as JSON members, in the order sdr, sir, sar, isr, si_sdr.
fn metrics_json(m: &Metrics, si_sdr: f64) -> Vec<String> {
    vec![
        format!("\"sdr\": {}", number(Some(m.sdr))),
        format!("\"sir\": {}", number(Some(m.sir))),
        format!("\"sar\": {}", number(Some(m.sar))),
        format!("\"isr\": {}", number(m.isr)),
        format!("\"si_sdr\": {}", number(Some(si_sdr))),
    ]
}

/// `{"mode": .., "sources": {"<name>": {"sdr": .., ...}}, "median": {...}}`, keys in a fixed
/// order.
fn to_json(files: &Files, scores: &Scores, permute: bool) -> String {
    let mut root = vec![format!("\"mode\": {}", string(&scores.mode.to_string()))];
    if scores.mode == Mode::V4 {
        root.push(format!("\"window_samples\": {}", scores.window.0));
        root.push(format!("\"hop_samples\": {}", scores.window.1));
        root.push(format!("\"frames\": {}", scores.frames));
        root.push(format!("\"silent_frames\": {}", scores.silent_frames));
    }
    let sources: Vec<String> = files
        .names
        .iter()
        .zip(&scores.sources)
        .map(|(name, s)| {
            let mut members = Vec::new();
            if permute {
                let estimate = files.estimates[s.estimate].display().to_string();
                members.push(format!("\"estimate\": {}", string(&estimate)));
            }
            members.extend(metrics_json(&s.metrics, s.si_sdr));
            format!("    {}: {{{}}}", string(name), members.join(", "))
        })
        .collect();
    root.push(format!("\"sources\": {{\n{}\n  }}", sources.join(",\n")));
    root.push(format!(
        "\"median\": {{{}}}",
        metrics_json(&scores.median, scores.median_si_sdr).join(", ")
    ));
    format!("{{\n  {}\n}}", root.join(",\n  "))
}
