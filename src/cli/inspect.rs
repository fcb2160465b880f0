//! `demix inspect`: its options, and running it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use super::args::InitArg;
use super::{FAILURE, Output, describe_param_error};
use demix::audio::OutputFormat;
use demix::inspect::{self, InspectOutput, InspectParams, NoteTemplates, TranscribeParams};
use demix::nmf::{Init, Loss, NmfParams};
use demix::notes::NoteRange;
use demix::stft::StftParams;
use demix::{Error, ParamError};

pub(super) const INSPECT_EXAMPLE: &str = "\
Examples:
  demix inspect samples/mix.flac -k 4 -o out/mix
  demix inspect piano.flac --notes A0-C8 --midi piano.mid -o out/piano
  write CSV, .npy, components.json and PNG charts into the folder.";

/// Options of `demix inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Audio file to inspect.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Folder for the results (created; it must not exist unless --force).
    #[arg(short, long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Free NMF components [default: 4, or 0 added to the notes with --notes].
    #[arg(short = 'k', long = "components", value_name = "K")]
    pub components: Option<usize>,
    /// One harmonic template per semitone of this range, by names or MIDI numbers
    /// (A0-C8, 36-84, C#3-G5).
    #[arg(long, value_name = "LOW-HIGH")]
    pub notes: Option<String>,
    /// Hold the note templates fixed instead of adapting them.
    #[arg(long = "fixed-templates", requires = "notes")]
    pub fixed_templates: bool,
    /// Write the notes as a standard MIDI file.
    #[arg(long, value_name = "FILE")]
    pub midi: Option<PathBuf>,
    /// Write each component's audio to DIR/audio/<component>.wav.
    #[arg(long)]
    pub audio: bool,
    /// A note starts where its activation reaches this fraction of its own peak...
    #[arg(long = "onset-threshold", default_value_t = 0.1, value_name = "F")]
    pub onset: f32,
    /// ...and this fraction of the loudest activation of all notes.
    #[arg(long = "min-level", default_value_t = 0.3, value_name = "F")]
    pub min_level: f32,
    /// A note ends where its activation falls below this fraction of its onset level.
    #[arg(long = "offset-threshold", default_value_t = 0.5, value_name = "F")]
    pub offset: f32,
    /// A rise by this factor over two frames while a note sounds starts a new note (0: off).
    #[arg(long, default_value_t = 1.5, value_name = "X")]
    pub reonset: f32,
    /// Shortest note kept, in seconds.
    #[arg(long = "min-duration", default_value_t = 0.05, value_name = "S")]
    pub min_duration: f64,
    /// Divergence: is (Itakura-Saito), kl (Kullback-Leibler), euclidean, or a beta in [0, 4].
    #[arg(long, default_value = "kl", value_parser = parse_loss, value_name = "LOSS")]
    pub loss: Loss,
    /// Most NMF iterations (with adapted note templates, 30 more adapt them).
    #[arg(long = "iter", default_value_t = 200, value_name = "N")]
    pub max_iter: usize,
    /// Stop when the cost falls by less than this fraction over 10 iterations (0: never).
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Initialisation of the free factors.
    #[arg(long, value_enum, default_value_t = InitArg::Nndsvda)]
    pub init: InitArg,
    /// FFT frame length in samples.
    #[arg(long = "n-fft", default_value_t = 2048, value_name = "N")]
    pub n_fft: usize,
    /// Hop between frames in samples [default: n-fft / 4].
    #[arg(long, value_name = "N")]
    pub hop: Option<usize>,
    /// Exponent p of the soft masks S^p / sum(S^p) of --audio.
    #[arg(long = "mask-power", default_value_t = 2.0, value_name = "P")]
    pub mask_power: f32,
    /// Replace an existing output folder and MIDI file.
    #[arg(long)]
    pub force: bool,
    /// Write 24-bit WAV instead of 16-bit.
    #[arg(long, conflicts_with = "float32", requires = "audio")]
    pub int24: bool,
    /// Write 32-bit float WAV (never clips).
    #[arg(long, requires = "audio")]
    pub float32: bool,
}

fn parse_loss(s: &str) -> Result<Loss, String> {
    s.parse::<Loss>().map_err(|e| e.to_string())
}

impl InspectArgs {
    /// The library parameters these options ask for, or the message for a bad note range.
    fn params(&self) -> Result<InspectParams, ParamError> {
        let mut stft = StftParams::new(self.n_fft);
        if let Some(hop) = self.hop {
            stft = stft.with_hop(hop);
        }
        let notes = self
            .notes
            .as_deref()
            .map(|r| r.parse::<NoteRange>())
            .transpose()?
            .map(|range| NoteTemplates::new(range).with_fixed(self.fixed_templates));
        let k = self
            .components
            .unwrap_or(if notes.is_some() { 0 } else { 4 });
        let init = match self.init {
            InitArg::Nndsvda => Init::Nndsvda,
            InitArg::Random => Init::Random,
        };
        Ok(InspectParams {
            stft,
            nmf: NmfParams::new(k)
                .with_loss(self.loss)
                .with_max_iter(self.max_iter)
                .with_tol(self.tol)
                .with_seed(self.seed)
                .with_init(init),
            notes,
            mask_power: self.mask_power,
            transcribe: TranscribeParams::new()
                .with_onset(self.onset)
                .with_min_level(self.min_level)
                .with_offset(self.offset)
                .with_reonset(self.reonset)
                .with_min_duration(self.min_duration),
        })
    }

    fn output(&self) -> InspectOutput {
        let format = if self.float32 {
            OutputFormat::Float32
        } else if self.int24 {
            OutputFormat::Int24
        } else {
            OutputFormat::Int16
        };
        InspectOutput {
            audio: self.audio.then_some(format),
            midi: self.midi.clone(),
            force: self.force,
        }
    }
}

/// Runs `demix inspect`.
pub(super) fn run(args: &InspectArgs, out: &Output) -> ExitCode {
    let params = match args.params().and_then(|p| p.check().map(|()| p)) {
        Ok(p) => p,
        Err(e) => {
            out.error(&describe_inspect_error(&e));
            return ExitCode::from(FAILURE);
        }
    };
    let name = args.input.display().to_string();
    out.detail(&format!(
        "demix inspect: {} loss={} iter={} tol={} seed={} n_fft={} hop={}",
        match &params.notes {
            Some(n) => format!(
                "notes={} ({}) k={}",
                n.range,
                if n.fixed { "fixed" } else { "adapted" },
                params.nmf.components()
            ),
            None => format!("k={}", params.nmf.components()),
        },
        args.loss,
        args.max_iter,
        args.tol,
        args.seed,
        params.stft.n_fft(),
        params.stft.hop()
    ));
    let started = Instant::now();
    let bar = out.iteration_bar(&name, args.max_iter);
    let result = inspect::inspect_file(&args.input, &args.out, &params, &args.output(), &mut |p| {
        bar.set_length(p.max_iter as u64);
        bar.set_position(p.iteration as u64);
        if let Some(cost) = p.cost {
            bar.set_message(format!("cost {cost:.4e}"));
        }
    });
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            let how = if report.converged {
                "converged after"
            } else {
                "stopped at"
            };
            let midi = match &args.midi {
                Some(path) => format!(" and {}", path.display()),
                None => String::new(),
            };
            out.info(&format!(
                "{name}: {} components, {} notes in {}{midi} ({how} {} iterations, {:.1} s)",
                report.components,
                report.notes,
                report.out_dir.display(),
                report.iterations,
                started.elapsed().as_secs_f64()
            ));
            for file in &report.files {
                out.detail(&format!("  {}", file.display()));
            }
            for (path, clip) in &report.clipped {
                out.warn(&format!(
                    "{}: {} samples beyond full scale (peak {:.3}) were limited to full \
                     scale; use --float32 to keep them",
                    path.display(),
                    clip.clipped,
                    clip.peak
                ));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let hint = match e {
                Error::OutputExists(_) => "; use --force to replace it",
                _ => "",
            };
            let message = match &e {
                Error::Param(p) => describe_inspect_error(p),
                _ => format!("{name}: {e}{hint}"),
            };
            let message = if message.starts_with(&name) {
                message
            } else {
                format!("{name}: {message}")
            };
            out.error(&message);
            ExitCode::from(FAILURE)
        }
    }
}

/// A parameter error with the flag that sets the parameter.
fn describe_inspect_error(e: &ParamError) -> String {
    let flag = match e {
        ParamError::BadNote { .. }
        | ParamError::BadNoteRange(_)
        | ParamError::NoteAboveNyquist { .. } => "--notes",
        ParamError::OutOfRange { name, .. } => match *name {
            "onset threshold" => "--onset-threshold",
            "offset threshold" => "--offset-threshold",
            "minimum level" => "--min-level",
            "re-onset factor" => "--reonset",
            "minimum duration" => "--min-duration",
            _ => return describe_param_error(e),
        },
        _ => return describe_param_error(e),
    };
    format!("{flag}: {e}")
}
