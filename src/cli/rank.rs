//! `demix rank`: how many components each input needs, with the evidence as files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use super::Output;
use super::args::{ModelArgs, RankArgs};
use super::failure::Failure;
use demix::nmf::{NmfParams, RankParams};

/// Options of `demix rank`: the options of `-k auto` with the range as `-k`.
#[derive(Debug, Args)]
#[command(
    mut_arg("range", |a| a
        .short('k')
        .help("The range of K tried, LOW-HIGH (1 <= LOW <= HIGH <= 256)")),
    mut_arg("method", |a| a.help(
        "sweep (fit every K from several starts, held-out rule) or ard (one fit with \
         automatic relevance determination at the top of the range)"
    )),
)]
pub struct RankCommandArgs {
    /// Audio files.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Folder for rank.json, rank.csv and rank.png (with several inputs, DIR/<file stem>/).
    #[arg(short, long = "out", value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub rank: RankArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Replace existing rank.json, rank.csv and rank.png.
    #[arg(long)]
    pub force: bool,
}

pub(super) const RANK_EXAMPLE: &str = "\
Example:
  demix rank samples/mix.flac -k 2-12 -o rank
    fits K = 2..12 from 3 starts each, prints the chosen K, and writes rank/rank.json,
    rank/rank.csv and rank/rank.png (the curves against K).";

/// Chooses K for every input; one line per input, a failed input reported and skipped.
pub(super) fn run(args: &RankCommandArgs, out: &Output) -> Result<ExitCode, Failure> {
    let nmf = args.model.nmf(NmfParams::new(1));
    // The curves in the loss asked for (Kullback-Leibler by default, as -k auto's).
    let rank = args.rank.params()?.with_loss(nmf.loss());
    rank.check_with(&nmf)?;
    let stft = args.model.stft(None);
    stft.check()?;
    let several = args.inputs.len() > 1;
    let mut failed = 0;
    for input in &args.inputs {
        let dir = if several {
            args.out
                .join(input.file_stem().unwrap_or(input.as_os_str()))
        } else {
            args.out.clone()
        };
        match rank_one(input, &dir, args.force, &stft, &nmf, &rank) {
            Ok(line) => out.info(&line),
            Err(message) => {
                out.error(&format!("{}: {message}", input.display()));
                failed += 1;
            }
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The rank of one input, its files in `dir`, and its line.
fn rank_one(
    input: &Path,
    dir: &Path,
    force: bool,
    stft: &demix::spectral::StftParams,
    nmf: &NmfParams,
    rank: &RankParams,
) -> Result<String, String> {
    let existing = demix::rank::RANK_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists());
    if let (Some(existing), false) = (existing, force) {
        return Err(format!(
            "{}: already exists; use --force to replace it",
            existing.display()
        ));
    }
    let started = Instant::now();
    let audio = demix::read_audio(input).map_err(|e| e.to_string())?;
    let report = demix::choose_rank(&audio, stft, nmf, rank).map_err(|e| match e {
        demix::Error::Param(p) => super::failure::describe_param_error(&p),
        e => e.to_string(),
    })?;
    let name = input.file_name().map_or_else(
        || input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    demix::rank::write_rank_files(dir, &name, &report, force).map_err(|e| e.to_string())?;
    Ok(format!(
        "{}: {} in {} ({:.1} s)",
        input.display(),
        demix::rank::summary(&report),
        dir.display(),
        started.elapsed().as_secs_f64()
    ))
}
