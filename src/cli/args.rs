//! Command-line arguments, and their conversion into the library's parameters.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use demix::audio::OutputFormat;
use demix::nmf::{Init, Loss, NmfParams};
use demix::separate::{OutputOptions, SeparateParams};
use demix::stft::StftParams;

/// Separate mixed audio recordings into stems with non-negative matrix factorization.
#[derive(Debug, Parser)]
#[command(name = "demix", version, propagate_version = true, after_help = SEPARATE_EXAMPLE)]
pub struct Cli {
    /// Worker threads (default: the RAYON_NUM_THREADS variable, else one per core).
    #[arg(short = 'j', long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Print only errors.
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
    /// Score estimated sources against references: BSS Eval (SDR, SIR, SAR, ISR) and SI-SDR.
    #[command(after_help = super::eval::EVAL_EXAMPLE)]
    Eval(super::eval::EvalArgs),
}

const SEPARATE_EXAMPLE: &str = "\
Example:
  demix separate samples/mix.flac -k 2 -o out
  writes out/mix/source1.wav and out/mix/source2.wav, loudest source first.";

/// Options of `demix separate`.
#[derive(Debug, Args)]
pub struct SeparateArgs {
    /// Audio files to separate (WAV, FLAC, and the other formats in the README).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Folder for the results: OUT/<input file stem>/<source>.wav.
    #[arg(short, long = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Number of NMF components; each is written as one source.
    #[arg(
        short = 'k',
        long = "components",
        default_value_t = 4,
        value_name = "K"
    )]
    pub components: usize,
    /// Divergence: is (Itakura-Saito), kl (Kullback-Leibler), euclidean, or a beta in [0, 4].
    #[arg(long, default_value = "kl", value_parser = parse_loss, value_name = "LOSS")]
    pub loss: Loss,
    /// Most NMF iterations.
    #[arg(long = "iter", default_value_t = 200, value_name = "N")]
    pub max_iter: usize,
    /// Stop when the cost falls by less than this fraction over 10 iterations (0: never).
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Initialisation of the factors.
    #[arg(long, value_enum, default_value_t = InitArg::Nndsvda)]
    pub init: InitArg,
    /// FFT frame length in samples.
    #[arg(long = "n-fft", default_value_t = 2048, value_name = "N")]
    pub n_fft: usize,
    /// Hop between frames in samples [default: n-fft / 4].
    #[arg(long, value_name = "N")]
    pub hop: Option<usize>,
    /// Exponent p of the soft masks S^p / sum(S^p).
    #[arg(long = "mask-power", default_value_t = 2.0, value_name = "P")]
    pub mask_power: f32,
    /// Replace existing track folders.
    #[arg(long)]
    pub force: bool,
    /// Write 24-bit WAV instead of 16-bit.
    #[arg(long, conflicts_with = "float32")]
    pub int24: bool,
    /// Write 32-bit float WAV (never clips).
    #[arg(long)]
    pub float32: bool,
}

/// `--init` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// NNDSVD with zeros filled by the mean.
    Nndsvda,
    /// Seeded random values.
    Random,
}

fn parse_loss(s: &str) -> Result<Loss, String> {
    s.parse::<Loss>().map_err(|e| e.to_string())
}

impl SeparateArgs {
    /// The library parameters these options ask for (checked later, by the library).
    pub fn params(&self) -> SeparateParams {
        let mut stft = StftParams::new(self.n_fft);
        if let Some(hop) = self.hop {
            stft = stft.with_hop(hop);
        }
        let init = match self.init {
            InitArg::Nndsvda => Init::Nndsvda,
            InitArg::Random => Init::Random,
        };
        SeparateParams {
            stft,
            nmf: NmfParams::new(self.components)
                .with_loss(self.loss)
                .with_max_iter(self.max_iter)
                .with_tol(self.tol)
                .with_seed(self.seed)
                .with_init(init),
            mask_power: self.mask_power,
        }
    }

    /// How the stems are written.
    pub fn output(&self) -> OutputOptions {
        let format = if self.float32 {
            OutputFormat::Float32
        } else if self.int24 {
            OutputFormat::Int24
        } else {
            OutputFormat::Int16
        };
        OutputOptions {
            format,
            force: self.force,
        }
    }
}
