//! Command-line arguments, and their conversion into the library's parameters.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use demix::ParamError;
use demix::audio::{Container, OutputFormat};
use demix::batch::Shard;
use demix::nmf::{Init, KRange, Loss, NmfParams, RankMethod, RankParams};
use demix::separate::{OutputOptions, SeparateParams};
use demix::spectral::StftParams;

/// Options of `demix report merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The reports to merge.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// The merged report to write.
    #[arg(short, long = "out", value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE if it exists (never one of the reports being merged).
    #[arg(long)]
    pub force: bool,
}

/// Options of commands that take folders of files (`separate`, `inspect`).
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Files processed at once [default: one per thread when there are several files, else 1;
    /// each file's kernels get threads/N threads].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Take from folders only the files that match GLOB (repeatable; `!GLOB` excludes). A
    /// GLOB with a / matches the path relative to the folder, else the file name.
    #[arg(long = "glob", value_name = "GLOB")]
    pub globs: Vec<String>,
    /// Process only shard I of N of the files (0 <= I < N), e.g. $SLURM_ARRAY_TASK_ID/N; the
    /// report is then OUT/demix-report.shard-I-of-N.json.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Also write the run's report (parameters, results, outputs, time, peak memory) to FILE,
    /// a new file (--force replaces it), whether the run succeeded or not.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// The STFT and NMF options shared by the subcommands that fit a model.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Divergence: is (Itakura-Saito), kl (Kullback-Leibler), euclidean, or a beta in [0, 4]
    /// [default: kl].
    #[arg(long, value_parser = parse_loss, value_name = "LOSS")]
    pub loss: Option<Loss>,
    /// Most NMF iterations [default: 200; in learn 100, and half of them for the KL
    /// templates it fits beside IS ones, 100 with --notes; in separate with --source 35 for
    /// IS, 70 for KL, 100 otherwise].
    #[arg(long = "iter", value_name = "N")]
    pub max_iter: Option<usize>,
    /// Stop when the cost falls by less than this fraction over 10 iterations (0: never).
    #[arg(long, default_value_t = NmfParams::default().tol())]
    pub tol: f64,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = NmfParams::default().seed())]
    pub seed: u64,
    /// Initialisation of the factors [default: nndsvda].
    #[arg(long, value_enum)]
    pub init: Option<InitArg>,
    /// FFT frame length in samples [default: 2048].
    #[arg(long = "n-fft", value_name = "N")]
    pub n_fft: Option<usize>,
    /// Hop between frames in samples [default: n-fft / 4].
    #[arg(long, value_name = "N")]
    pub hop: Option<usize>,
    /// Weight of an L1 (sparsity) penalty on the activations, for data scaled to mean 1.
    #[arg(long, default_value_t = NmfParams::default().sparsity(), value_name = "λ")]
    pub sparsity: f32,
    /// Weight of a temporal-continuity penalty on the activations, for data scaled to mean 1.
    #[arg(long, default_value_t = NmfParams::default().smoothness(), value_name = "λ")]
    pub smoothness: f32,
    /// Fit this many times (the first from --init, the rest from random starts with the next
    /// seeds) and keep the fit with the lowest cost, at most 100 [default: 1].
    #[arg(long, value_name = "R")]
    pub restarts: Option<usize>,
    /// Refuse a file whose factorisation would need more memory than SIZE (e.g. 512M, 8G)
    /// [default: the memory available].
    #[arg(long = "max-memory", value_parser = parse_size, value_name = "SIZE")]
    pub max_memory: Option<u64>,
    /// Raise spectrogram values below this fraction of its largest value to it before fitting.
    #[arg(long, default_value_t = NmfParams::DEFAULT_FLOOR, value_name = "F")]
    pub floor: f32,
}

impl ModelArgs {
    /// The STFT settings asked for; `fallback` (from templates) fills what is not given.
    pub fn stft(&self, fallback: Option<StftParams>) -> StftParams {
        let n_fft = self
            .n_fft
            .or(fallback.map(|f| f.n_fft()))
            .unwrap_or(StftParams::default().n_fft());
        let mut stft = StftParams::new(n_fft);
        let hop = match (self.hop, fallback) {
            (Some(hop), _) => Some(hop),
            (None, Some(f)) if self.n_fft.is_none_or(|n| n == f.n_fft()) => Some(f.hop()),
            _ => None,
        };
        if let Some(hop) = hop {
            stft = stft.with_hop(hop);
        }
        if let Some(f) = fallback {
            stft = stft.with_window(f.window());
        }
        stft
    }

    /// The library's parameters `base` (its defaults for the subcommand) with the options
    /// given on the command line.
    pub fn nmf(&self, base: NmfParams) -> NmfParams {
        let init = match self.init {
            Some(InitArg::Nndsvda) => Init::Nndsvda,
            Some(InitArg::Random) => Init::Random,
            None => base.init(),
        };
        let (loss, restarts, max_iter) = (
            self.loss.unwrap_or(base.loss()),
            self.restarts.unwrap_or(base.restarts()),
            self.max_iter.unwrap_or(base.max_iter()),
        );
        base.with_loss(loss)
            .with_max_iter(max_iter)
            .with_tol(self.tol)
            .with_seed(self.seed)
            .with_init(init)
            .with_sparsity(self.sparsity)
            .with_smoothness(self.smoothness)
            .with_restarts(restarts)
            .with_floor(self.floor)
            .with_max_memory(self.max_memory)
    }
}

/// Options of `demix separate`.
#[derive(Debug, Args)]
#[command(
    mut_arg("loss", |a| a.help(
        "Divergence: is (Itakura-Saito), kl (Kullback-Leibler), euclidean, or a beta in \
         [0, 4] [default: kl; with --source, the templates' own]"
    )),
    mut_arg("n_fft", |a| a.help("FFT frame length in samples [default: 2048, or the templates']")),
    mut_arg("hop", |a| a.help("Hop between frames in samples [default: n-fft / 4, or the templates']")),
)]
pub struct SeparateArgs {
    /// Audio files (WAV, FLAC, and the other formats in the README) or folders of them; `-`
    /// alone reads a WAV or FLAC stream from standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Folder for the results: OUT/<input file stem>/<source>.wav, and for a file found in a
    /// folder OUT/<its folder relative to that folder>/<stem>/<source>.wav.
    #[arg(short, long = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// The track name of standard input (-): its stems go to OUT/NAME/ [default: stdin].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Number of NMF components, each written as one source, or `auto` to choose it per file
    /// within --k-range [default: 4; auto with --sources].
    #[arg(
        short = 'k',
        long = "components",
        value_name = "K",
        value_parser = parse_components,
        conflicts_with = "source"
    )]
    pub components: Option<ComponentsArg>,
    #[command(flatten)]
    pub rank: RankArgs,
    /// A named source from learned templates, held fixed: NAME=FILE.npz, or FILE.npz to use the
    /// name stored in the file. Repeat for each source.
    #[arg(long = "source", value_name = "[NAME=]FILE")]
    pub source: Vec<String>,
    /// Free components fitted alongside learned templates, written together as other.wav.
    #[arg(long, default_value_t = 0, value_name = "K", requires = "source")]
    pub free: usize,
    /// Group the components into this many sources by their sound, register and side (source1.wav ...).
    #[arg(long = "sources", value_name = "S")]
    pub groups: Option<usize>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Exponent p of the soft masks S^p / sum(S^p) [default: when the spatial filter renders,
    /// which starts from them, 0.75 with --source and 0.5 with --sources; 2 when the masks
    /// render].
    #[arg(long = "mask-power", value_name = "P")]
    pub mask_power: Option<f32>,
    /// Render with soft masks even when the templates bring spatial covariances or sources are
    /// grouped blind (by default a multichannel mix is then rendered by the multichannel Wiener
    /// filter).
    #[arg(long = "no-spatial")]
    pub no_spatial: bool,
    /// Times the multichannel Wiener filter re-estimates the sources' spatial covariances on
    /// the mixture.
    #[arg(long = "spatial-iterations", default_value_t = SeparateParams::default().spatial_iterations, value_name = "N")]
    pub spatial_iterations: usize,
    /// With --source: copies of every single-frame template shifted by 1 to N semitones up and
    /// down, so that notes the training recordings did not play are explained by their own
    /// source (0: the templates as learned; at most 6).
    #[arg(long = "pitch-shifts", default_value_t = SeparateParams::default().pitch_shifts, value_name = "N")]
    pub pitch_shifts: u32,
    /// With --source: how much less a pitch-shifted copy is trusted per semitone beyond 2, so
    /// that far copies take only notes that nothing nearer explains (0: all alike; at most 10).
    #[arg(long = "shift-penalty", default_value_t = SeparateParams::default().shift_penalty, value_name = "P")]
    pub shift_penalty: f32,
    /// Begin the fit on frequency bands N per octave (a bin alone where it is wider), then drop
    /// the templates no frame needs and end it on every bin, with --source alone (no --free,
    /// --sparsity or --smoothness): 48 fits 294 bands of 1025 at 2048-point frames. [default:
    /// 48 with --source alone, else every bin throughout; 0: every bin throughout; at most 1200]
    #[arg(long = "bands-per-octave", value_name = "N")]
    pub bands_per_octave: Option<u32>,
    /// Most spectrogram frames fitted at once; longer recordings learn templates on a sample
    /// of this many frames and solve activations block by block, in bounded memory.
    #[arg(long = "max-frames", default_value_t = SeparateParams::default().max_frames, value_name = "N")]
    pub max_frames: usize,
    /// Replace existing track folders, and redo files the report lists as complete.
    #[arg(long)]
    pub force: bool,
    /// Write 24-bit samples instead of 16-bit.
    #[arg(long, conflicts_with = "float32")]
    pub int24: bool,
    /// Write 32-bit float WAV (never clips).
    #[arg(long)]
    pub float32: bool,
    /// Write FLAC (<source>.flac, 16-bit, or 24-bit with --int24) instead of WAV.
    #[arg(long, conflicts_with = "float32")]
    pub flac: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// Options of `demix learn`.
#[derive(Debug, Args)]
#[command(
    mut_arg("loss", |a| a.help(
        "Divergence: is (Itakura-Saito), kl (Kullback-Leibler), euclidean, or a beta in \
         [0, 4] [default: is]"
    )),
    mut_arg("init", |a| a.help("Initialisation of the factors [default: random]")),
    mut_arg("restarts", |a| a.help(
        "Fit this many times (the first from --init, the rest from random starts with the \
         next seeds) and keep the fit with the lowest cost, at most 100 [default: 1]"
    )),
)]
pub struct LearnArgs {
    /// Isolated recordings of the source (pooled).
    #[arg(required = true, value_name = "AUDIO")]
    pub inputs: Vec<PathBuf>,
    /// The template file to write (.npz).
    #[arg(short, long = "out", value_name = "NAME.npz")]
    pub out: PathBuf,
    /// Number of templates, or `auto` to choose it on the recordings within --k-range
    /// [default: 16].
    #[arg(
        short = 'k',
        long = "components",
        value_name = "K",
        value_parser = parse_components
    )]
    pub components: Option<ComponentsArg>,
    #[command(flatten)]
    pub rank: RankArgs,
    /// Frames of each template: 1 for spectra, more for convolutive templates (NMFD) that
    /// follow how a sound changes after its onset, as drums do (at most 64), or `auto`: 6 for
    /// percussive recordings (learned with KL), else 1 (learned with IS, and with KL beside)
    /// [default: auto].
    #[arg(long, value_name = "T", value_parser = parse_frames)]
    pub frames: Option<FramesArg>,
    /// The source's name [default: the output file's stem].
    #[arg(long)]
    pub name: Option<String>,
    /// Recordings of the instrument's notes played one at a time: one template per semitone
    /// of this range (A0-C8, 36-84, C#3-G5), each its note's harmonic comb with the levels of
    /// the frames where that note sounds most, for `inspect --source` to transcribe with (on
    /// inspect's note frames, KL, 100 iterations per fit).
    #[arg(
        long,
        value_name = "LOW-HIGH",
        conflicts_with_all = ["components", "frames", "loss", "restarts", "init", "sparsity", "smoothness"]
    )]
    pub notes: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Replace an existing template file.
    #[arg(long)]
    pub force: bool,
}

/// A number of components, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentsArg {
    /// This many.
    Fixed(usize),
    /// Chosen per file by a rank selection.
    Auto,
}

impl ComponentsArg {
    /// The number given, `default` when none was, or 1 (a placeholder: the parameters are
    /// checked with one component, and the fit gets the chosen number) for `auto`.
    pub fn or(arg: Option<ComponentsArg>, default: usize) -> usize {
        match arg {
            Some(ComponentsArg::Fixed(k)) => k,
            Some(ComponentsArg::Auto) => 1,
            None => default,
        }
    }
}

/// The length of learned templates in frames (`--frames`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramesArg {
    /// This many.
    Fixed(usize),
    /// Chosen by how percussive the recordings are.
    Auto,
}

/// `auto` or a number of frames.
fn parse_frames(s: &str) -> Result<FramesArg, String> {
    Ok(auto_or_number(s, "frames")?.map_or(FramesArg::Auto, FramesArg::Fixed))
}

/// `auto` or a number.
pub fn parse_components(s: &str) -> Result<ComponentsArg, String> {
    Ok(auto_or_number(s, "components")?.map_or(ComponentsArg::Auto, ComponentsArg::Fixed))
}

/// `None` for `auto`, else the number, or a message naming `what` it should be a number of.
fn auto_or_number(s: &str, what: &str) -> Result<Option<usize>, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    s.trim()
        .parse()
        .map(Some)
        .map_err(|_| format!("'{s}' is not a number of {what} or 'auto'"))
}

/// How `-k auto` chooses the number of components.
#[derive(Debug, Args)]
pub struct RankArgs {
    /// With -k auto: the range of K tried, LOW-HIGH (1 <= LOW <= HIGH <= 256).
    #[arg(long = "k-range", default_value = "2-32", value_name = "LOW-HIGH")]
    pub range: String,
    /// With -k auto: sweep (fit every K from several starts, held-out rule) or ard (one fit
    /// with automatic relevance determination).
    #[arg(long = "rank-method", default_value = "sweep", value_parser = parse_method, value_name = "METHOD")]
    pub method: RankMethod,
    /// Seeded starts per K of the sweep.
    #[arg(long, default_value_t = RankParams::default().starts(), value_name = "N")]
    pub starts: usize,
    /// Fraction of the spectrogram's entries each start of the sweep holds out.
    #[arg(long = "held-out", default_value_t = RankParams::default().held_out(), value_name = "F")]
    pub held_out: f32,
}

impl RankArgs {
    /// The library's rank parameters (checked later by the library).
    ///
    /// # Errors
    /// A range that is not `LOW-HIGH` with `1 <= LOW <= HIGH <= 256`.
    pub fn params(&self) -> Result<RankParams, ParamError> {
        Ok(self.params_for(self.range.parse()?))
    }

    /// The library's rank parameters when K is chosen (`auto`), else `None`.
    ///
    /// # Errors
    /// As [`Self::params`], with or without `auto`: a bad `--k-range` is never passed over.
    pub fn selection(&self, auto: bool) -> Result<Option<RankParams>, ParamError> {
        let params = self.params()?;
        Ok(auto.then_some(params))
    }

    /// The library's rank parameters over `range`.
    pub fn params_for(&self, range: KRange) -> RankParams {
        RankParams::new(range)
            .with_method(self.method)
            .with_starts(self.starts)
            .with_held_out(self.held_out)
    }
}

fn parse_method(s: &str) -> Result<RankMethod, String> {
    s.parse::<RankMethod>()
}

/// `--init` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// NNDSVD with zeros filled by the mean.
    Nndsvda,
    /// Seeded random values.
    Random,
}

/// A size in bytes: a number with an optional binary unit K, M, G or T (`KiB`, `kB` and the
/// like are read the same, as powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("'{s}' is not a size such as 512M or 8G")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a size such as 512M or 8G"))?;
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{s}' must be at least one byte"));
    }
    Ok(bytes as u64)
}

fn parse_loss(s: &str) -> Result<Loss, String> {
    s.parse::<Loss>().map_err(|e| e.to_string())
}

impl SeparateArgs {
    /// The library parameters these options ask for, with the templates already loaded
    /// (checked later, by the library).
    ///
    /// # Errors
    /// A `--k-range` that does not parse (with -k auto).
    pub fn params(
        &self,
        templates: Vec<demix::sources::Templates>,
    ) -> Result<SeparateParams, ParamError> {
        let fallback = templates.first().map(|t| t.stft_params());
        let auto = self.auto_k();
        let components = match (templates.is_empty(), self.components) {
            (false, _) => self.free,
            // Chosen per file when auto (with --sources alone too).
            (true, _) if auto => 1,
            (true, k) => ComponentsArg::or(k, NmfParams::default().components()),
        };
        // With learned templates, the loss of the mix (KL with a percussive source, else the
        // loss they were fitted with), and each source's templates of that loss.
        let loss = self
            .model
            .loss
            .or_else(|| demix::sources::mix_loss(&templates));
        let templates: Vec<_> = match loss {
            Some(loss) => templates.into_iter().map(|t| t.for_loss(loss)).collect(),
            None => templates,
        };
        let mut base = match loss {
            Some(loss) => NmfParams::new(components).with_loss(loss),
            None => NmfParams::new(components),
        };
        if !templates.is_empty() {
            base = demix::separate::template_fit(base);
        }
        Ok(SeparateParams {
            stft: self.model.stft(fallback),
            nmf: self.model.nmf(base),
            mask_power: self.mask_power,
            templates,
            pitch_shifts: self.pitch_shifts,
            shift_penalty: self.shift_penalty,
            bands_per_octave: self.bands_per_octave,
            groups: self.groups,
            spatial: !self.no_spatial,
            spatial_iterations: self.spatial_iterations,
            max_frames: self.max_frames,
            rank: self.rank.selection(auto)?,
        })
    }

    /// Whether K is chosen per file: `-k auto`, or `--sources` without `-k`.
    pub fn auto_k(&self) -> bool {
        match self.components {
            Some(ComponentsArg::Auto) => true,
            Some(ComponentsArg::Fixed(_)) => false,
            None => self.groups.is_some() && self.source.is_empty(),
        }
    }

    /// How the stems are written.
    pub fn output(&self) -> OutputOptions {
        OutputOptions {
            format: wav_format(self.int24, self.float32),
            container: if self.flac {
                Container::Flac
            } else {
                Container::Wav
            },
            force: self.force,
        }
    }
}

/// The WAV sample format chosen by `--int24` and `--float32` (16-bit without either).
pub fn wav_format(int24: bool, float32: bool) -> OutputFormat {
    if float32 {
        OutputFormat::Float32
    } else if int24 {
        OutputFormat::Int24
    } else {
        OutputFormat::Int16
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("3M"), Ok(3 << 20));
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("2 kB"), Ok(2048));
        for bad in ["", "lots", "10X", "0", "0.1", "-5M"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
