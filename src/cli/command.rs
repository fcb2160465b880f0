//! The command line: the subcommands and the options every one of them takes.

use clap::{Parser, Subcommand};

use super::args::{LearnArgs, MergeArgs, SeparateArgs};
use super::eval::{EVAL_EXAMPLE, EvalArgs};
use super::inspect::{INSPECT_EXAMPLE, InspectArgs};
use super::rank::{RANK_EXAMPLE, RankCommandArgs};

/// Separate mixed audio recordings into stems with non-negative matrix factorization.
#[derive(Debug, Parser)]
#[command(name = "demix", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    /// Worker threads in all (default: the RAYON_NUM_THREADS variable, else one per core).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Print only errors and what a command exists to show (eval's table): no progress,
    /// notes or warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print the parameters and every file written.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Separate recordings into one WAV file per source.
    #[command(after_help = SEPARATE_EXAMPLE)]
    Separate(SeparateArgs),
    /// Learn the spectral templates of one source from isolated recordings of it.
    #[command(after_help = LEARN_EXAMPLE)]
    Learn(LearnArgs),
    /// Show and export what plays when, at which pitch: templates, activations, notes.
    #[command(after_help = INSPECT_EXAMPLE)]
    Inspect(InspectArgs),
    /// Work with the run reports of batches (OUT/demix-report.json).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Score estimated sources against references: BSS Eval (SDR, SIR, SAR, ISR) and SI-SDR.
    #[command(after_help = EVAL_EXAMPLE)]
    Eval(EvalArgs),
    /// Choose the number of components: fit a range of K and show the evidence.
    #[command(after_help = RANK_EXAMPLE)]
    Rank(RankCommandArgs),
}

/// `demix report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the reports of the shards of a run (or of several runs) into one.
    #[command(after_help = MERGE_EXAMPLE)]
    Merge(MergeArgs),
}

const MERGE_EXAMPLE: &str = "\
Example:
  demix report merge out/demix-report.shard-*.json -o out/demix-report.json";

const SEPARATE_EXAMPLE: &str = "\
Examples:
  demix separate samples/mix.flac -k 2 -o out
    writes out/mix/source1.wav and out/mix/source2.wav, loudest source first.
  demix separate mix.flac --source piano=piano.npz --source bass=bass.npz --free 2 -o out
    writes out/mix/piano.wav, out/mix/bass.wav and out/mix/other.wav.
  demix separate mix.flac --sources 2 -o out
    chooses the number of components (-k auto), fits them and groups them into
    out/mix/source1.wav and source2.wav.
  demix separate mix.flac -k 12 --sources 2 -o out
    the same with 12 components.
  demix separate music/ -o stems
    separates every audio file under music/ into stems/<same path>/, and writes
    stems/demix-report.json; run it again to finish what an interrupted run left.";

const LEARN_EXAMPLE: &str = "\
Example:
  demix learn piano1.flac piano2.flac -k 16 -o piano.npz
    learns 16 templates of 'piano' for `demix separate --source piano.npz`.";

const EXAMPLES: &str = "\
Examples:
  demix separate samples/mix.flac -k 2 -o out
  demix learn piano.flac -o piano.npz
  demix separate mix.flac --source piano.npz --source bass.npz --free 2 -o out";
