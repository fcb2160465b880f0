//! `demix inspect`: its options, and running it over files and folders.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use super::Output;
use super::args::{BatchArgs, ComponentsArg, ModelArgs, RankArgs, parse_components};
use super::batch::{
    Files, RunSpec, chosen_text, components_label, find_files, fit_details, how_it_stopped,
    job_error, job_progress, rank_params_json, run_files, shortest, warn_clipped,
};
use super::failure::{Failure, describe_param_error};
use demix::ParamError;
use demix::audio::OutputFormat;
use demix::batch::{FileEntry, Item, JobContext, JobOutput};
use demix::inspect::notes::NoteRange;
use demix::inspect::{
    InspectOutput, InspectParams, Inspector, NoteTemplates, OUTPUT_NAMES, TranscribeParams,
};
use demix::nmf::NmfParams;
use demix::sources::Templates;

pub(super) const INSPECT_EXAMPLE: &str = "\
Examples:
  demix inspect samples/mix.flac -k 4 -o inspected
  demix inspect piano.flac --notes A0-C8 --midi piano.mid -o inspected
    write CSV, .npy, components.json and PNG charts into inspected/mix/ and inspected/piano/.
  demix inspect recordings/ --notes A0-C8 --midi notes.mid -o analysis
    inspects every audio file under recordings/ into analysis/<same path>/, each folder with
    its notes.mid, and writes analysis/demix-report.json; run it again to finish what an
    interrupted run left.";

/// Options of `demix inspect`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("note_templates").args(["notes", "source"]).multiple(true)))]
pub struct InspectArgs {
    /// Audio files, or folders of them.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Folder for the results, laid out as demix separate lays out its stems: a file named here
    /// into OUT/<file stem>/ (which must not exist unless --force), a file found in a folder
    /// into OUT/<folder relative to the folder given>/<file stem>/, several files with the
    /// report OUT/demix-report.json.
    #[arg(short, long = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Free NMF components, or `auto` to choose them per file within --k-range [default: 4,
    /// or 0 added to the notes with --notes].
    #[arg(short = 'k', long = "components", value_name = "K", value_parser = parse_components)]
    pub components: Option<ComponentsArg>,
    #[command(flatten)]
    pub rank: RankArgs,
    /// One harmonic template per semitone of this range, by names or MIDI numbers
    /// (A0-C8, 36-84, C#3-G5); fitted with the templates fixed for --iter iterations, then
    /// adapted for 10 more.
    #[arg(long, value_name = "LOW-HIGH")]
    pub notes: Option<String>,
    /// Learned templates to transcribe with: NAME=FILE.npz or FILE.npz. Note templates from
    /// `demix learn --notes` (recordings of the instrument's notes) transcribe as --notes does,
    /// starting from them; other templates (`demix learn -k K`) are held fixed, each a
    /// component named NAME1, NAME2, ... whose notes are those of its estimated pitch
    /// (repeatable). -k adds free components.
    #[arg(long = "source", value_name = "[NAME=]FILE", conflicts_with = "notes")]
    pub source: Vec<String>,
    /// Partial n of a note template starts with amplitude n^-D (0: all partials equal).
    #[arg(long = "harmonic-decay", default_value_t = demix::inspect::notes::HarmonicShape::default().decay, value_name = "D", requires = "notes")]
    pub harmonic_decay: f32,
    /// Hold the note templates (--notes, or from learn --notes) fixed instead of adapting them.
    #[arg(long = "fixed-templates", requires = "note_templates")]
    pub fixed_templates: bool,
    /// Write the notes as a standard MIDI file. With several files or a folder, FILE is a name
    /// (such as notes.mid) written into each file's output folder.
    #[arg(long, value_name = "FILE")]
    pub midi: Option<PathBuf>,
    /// Write each component's audio to audio/<component>.wav in the output folder.
    #[arg(long)]
    pub audio: bool,
    /// A note starts where its activation reaches this fraction of its own peak...
    #[arg(long = "onset-threshold", default_value_t = TranscribeParams::default().onset(), value_name = "F")]
    pub onset: f32,
    /// ...and this fraction of the loudest activation of all notes [default: 0.3, or 0.05
    /// with --notes, where the note model judges each candidate].
    #[arg(long = "min-level", value_name = "F")]
    pub min_level: Option<f32>,
    /// With note templates (--notes, or from learn --notes), keep a candidate note when the
    /// note model's confidence in it (0 to 1) is at least this; 0 keeps every candidate above
    /// --min-level.
    #[arg(long = "note-confidence", default_value_t = demix::inspect::DEFAULT_CONFIDENCE, value_name = "P", requires = "note_templates")]
    pub note_confidence: f32,
    /// A note ends where its activation falls below this fraction of its onset level.
    #[arg(long = "offset-threshold", default_value_t = TranscribeParams::default().offset(), value_name = "F")]
    pub offset: f32,
    /// A rise by this factor over two frames while a note sounds starts a new note (0: off).
    #[arg(long, default_value_t = TranscribeParams::default().reonset(), value_name = "X")]
    pub reonset: f32,
    /// Shortest note kept, in seconds.
    #[arg(long = "min-duration", default_value_t = TranscribeParams::default().min_duration(), value_name = "S")]
    pub min_duration: f64,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Most spectrogram frames fitted at once; longer recordings fit templates on a sample of
    /// this many frames and solve activations block by block, in bounded memory.
    #[arg(long = "max-frames", default_value_t = InspectParams::default().max_frames, value_name = "N")]
    pub max_frames: usize,
    /// Exponent p of the soft masks S^p / sum(S^p) of --audio.
    #[arg(long = "mask-power", default_value_t = demix::separate::DEFAULT_MASK_POWER, value_name = "P")]
    pub mask_power: f32,
    /// Replace existing output folders and MIDI files, and redo files the report lists as
    /// complete.
    #[arg(long)]
    pub force: bool,
    /// Write 24-bit WAV instead of 16-bit.
    #[arg(long, conflicts_with = "float32", requires = "audio")]
    pub int24: bool,
    /// Write 32-bit float WAV (never clips).
    #[arg(long, requires = "audio")]
    pub float32: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
}

impl InspectArgs {
    /// The library parameters these options ask for, or the error of a bad note range.
    fn params(&self, mut templates: Vec<Templates>) -> Result<InspectParams, ParamError> {
        if templates.iter().any(|t| t.notes.is_some()) {
            if templates.len() > 1 {
                return Err(ParamError::Conflict {
                    param: demix::error::Param::Templates,
                    message: "note templates (demix learn --notes) transcribe alone: give one \
                              --source",
                });
            }
            return self.learned_notes_params(templates.remove(0));
        }
        let notes = self
            .notes
            .as_deref()
            .map(|r| r.parse::<NoteRange>())
            .transpose()?
            .map(|range| {
                let mut templates = NoteTemplates::new(range).with_fixed(self.fixed_templates);
                templates.shape.decay = self.harmonic_decay;
                templates
            });
        let k = ComponentsArg::or(
            self.components,
            if notes.is_some() || !templates.is_empty() {
                0
            } else {
                NmfParams::default().components()
            },
        );
        let (stft, transcribe) = if let Some(first) = templates.first() {
            (Some(first.stft_params()), TranscribeParams::new())
        } else if notes.is_some() {
            (
                Some(demix::inspect::notes_stft()),
                TranscribeParams::for_notes(),
            )
        } else {
            (None, TranscribeParams::new())
        };
        // With learned templates, the loss they were fitted with.
        let base = match templates.first() {
            Some(t) => NmfParams::new(k).with_loss(t.loss),
            None => NmfParams::new(k),
        };
        // Note frames follow each file's sample rate unless the frames are given.
        let scale_frames =
            notes.is_some() && self.model.n_fft.is_none() && self.model.hop.is_none();
        Ok(InspectParams {
            stft: self.model.stft(stft),
            nmf: self.model.nmf(base),
            notes,
            mask_power: self.mask_power,
            transcribe: self.transcribe(transcribe),
            templates,
            scale_frames,
            max_frames: self.max_frames,
            rank: self
                .rank
                .selection(self.components == Some(ComponentsArg::Auto))?,
        })
    }

    /// The library parameters for note templates learned by `demix learn --notes`, as
    /// `--notes` transcribes.
    fn learned_notes_params(&self, learned: Templates) -> Result<InspectParams, ParamError> {
        let mut defaults = InspectParams::learned_notes(learned)?;
        let k = ComponentsArg::or(self.components, 0);
        let notes = (defaults.notes.take()).map(|n| n.with_fixed(self.fixed_templates));
        Ok(InspectParams {
            notes,
            stft: self.model.stft(Some(defaults.stft)),
            nmf: self.model.nmf(NmfParams::new(k)),
            mask_power: self.mask_power,
            transcribe: self.transcribe(defaults.transcribe),
            max_frames: self.max_frames,
            rank: self
                .rank
                .selection(self.components == Some(ComponentsArg::Auto))?,
            ..defaults
        })
    }

    /// The thresholds `defaults` with the ones given on the command line.
    fn transcribe(&self, defaults: TranscribeParams) -> TranscribeParams {
        let min_level = self.min_level.unwrap_or(defaults.min_level());
        defaults
            .with_onset(self.onset)
            .with_min_level(min_level)
            .with_confidence(self.note_confidence)
            .with_offset(self.offset)
            .with_reonset(self.reonset)
            .with_min_duration(self.min_duration)
    }

    /// The format of `--audio`, if asked for.
    fn audio_format(&self) -> Option<OutputFormat> {
        self.audio
            .then(|| super::args::wav_format(self.int24, self.float32))
    }
}

/// Runs `demix inspect` over the files and folders given: one file into OUT, several through
/// the batch runner into OUT/<relative path>/, as `demix separate` does.
pub(super) fn run(
    args: &InspectArgs,
    threads: Option<usize>,
    out: &Output,
) -> Result<ExitCode, Failure> {
    let params = args.params(super::load_sources(&args.source)?)?;
    let inspector = params.check()?;
    let files = find_files(&args.inputs, &args.out, &args.batch)?;
    if files.is_batch
        && let Some(name) = &args.midi
        && let Err(message) = check_midi_name(name)
    {
        return Err(Failure::usage(message));
    }
    let nmf = &params.nmf;
    out.detail(&format!(
        "demix inspect: {} loss={} iter={} tol={} seed={} restarts={} n_fft={} hop={}",
        match &params.notes {
            Some(n) => format!(
                "notes={} ({}) k={}",
                n.range,
                if n.fixed { "fixed" } else { "adapted" },
                nmf.components()
            ),
            None => format!(
                "k={}",
                components_label(nmf.components(), params.rank.as_ref())
            ),
        },
        nmf.loss(),
        nmf.max_iter(),
        nmf.tol(),
        nmf.seed(),
        nmf.restarts(),
        params.stft.n_fft(),
        params.stft.hop()
    ));
    run_inspect(args, &inspector, &files, threads, out)
}

fn run_inspect(
    args: &InspectArgs,
    inspector: &Inspector,
    files: &Files,
    threads: Option<usize>,
    out: &Output,
) -> Result<ExitCode, Failure> {
    let single = !files.is_batch;
    let format = args.audio_format();
    // A single file's MIDI file may lie outside its output folder; it is then no output of
    // the folder (and as there is no report, no output of the run), but it is shown.
    let single_folder = files
        .plan
        .items
        .first()
        .and_then(|item| item.output.as_ref());
    let midi_apart = match (&args.midi, single_folder) {
        (Some(midi), Some(folder)) if single => {
            demix::inspect::midi_apart(&args.out.join(folder), midi)
                .ok()
                .flatten()
        }
        _ => None,
    };
    let spec = RunSpec {
        command: "inspect",
        done: "inspected",
        out_dir: &args.out,
        batch: &args.batch,
        threads,
        force: args.force,
        params: params_json(args, inspector.params(), format),
    };
    let show = |name: &str, entry: &FileEntry, folder: &Path| {
        let count = |key: &str| entry.details.get(key).and_then(Value::as_u64).unwrap_or(0);
        let midi = match &args.midi {
            Some(path) if single => format!(" and {}", path.display()),
            _ => String::new(),
        };
        out.info(&format!(
            "{name}: {} components, {} notes in {}{midi} ({}{} iterations, {:.1} s)",
            count("components"),
            count("notes"),
            folder.display(),
            chosen_text(entry),
            how_it_stopped(entry),
            entry.seconds.unwrap_or(0.0)
        ));
        for file in &entry.outputs {
            out.detail(&format!(
                "  {}",
                args.out.join(file.path.as_path()).display()
            ));
        }
        if let Some(midi) = &midi_apart {
            out.detail(&format!("  {}", midi.display()));
        }
        let clipped = entry.details.get("clipped").and_then(Value::as_array);
        for c in clipped.into_iter().flatten() {
            let id = c["component"].as_str().unwrap_or("?");
            let path = folder.join("audio").join(format!("{id}.wav"));
            let peak = c["peak"].as_f64().unwrap_or(f64::NAN);
            let samples = c["clipped"].as_u64().unwrap_or(0);
            warn_clipped(
                out,
                &path,
                samples,
                peak,
                format.unwrap_or(OutputFormat::Int16),
            );
        }
    };
    let job = |item: &Item, ctx: &JobContext<'_>| -> Result<JobOutput, String> {
        let folder = match item.output.as_deref() {
            Some(o) if !o.as_os_str().is_empty() => args.out.join(o),
            _ => args.out.clone(),
        };
        let output = InspectOutput {
            audio: format,
            midi: match &args.midi {
                Some(path) if single => Some(path.clone()),
                Some(name) => Some(folder.join(name)),
                None => None,
            },
            // --force, or a replacement a stopped --force run left unfinished.
            force: ctx.replace(),
        };
        let report = inspector
            .inspect_file(&item.input, &folder, &output, &mut job_progress(ctx))
            .map_err(|e| match &e {
                demix::Error::Param(p) => describe_param_error(p),
                _ => job_error(&e),
            })?;
        let mut details = fit_details(
            report.iterations,
            report.final_cost,
            report.converged,
            report.duration_secs,
        );
        details.insert("components".into(), json!(report.components));
        // With -k auto, the free components are all the components: the chosen K.
        if inspector.params().rank.is_some() {
            details.insert("chosen_k".into(), json!(report.components));
        }
        details.insert("notes".into(), json!(report.notes));
        let clipped: Vec<Value> = report
            .clipped
            .iter()
            .map(|(path, clip)| {
                let id = path.file_stem().unwrap_or_default().to_string_lossy();
                json!({"component": id, "clipped": clip.clipped, "peak": clip.peak})
            })
            .collect();
        details.insert("clipped".into(), Value::Array(clipped));
        Ok(JobOutput {
            outputs: report
                .files
                .into_iter()
                .filter(|f| midi_apart.as_ref() != Some(f))
                .collect(),
            details,
        })
    };
    run_files(files, &spec, out, &show, job)
}

/// Checks `--midi NAME` for a run over several files: a relative path that stays inside each
/// file's output folder and does not take the name of a file inspect writes there.
fn check_midi_name(name: &Path) -> Result<(), String> {
    let inside = name
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let first = name.components().find_map(|c| match c {
        Component::Normal(n) => Some(n),
        _ => None,
    });
    match first {
        Some(first) if inside => {
            if OUTPUT_NAMES.iter().any(|n| first == *n) {
                Err(format!(
                    "--midi {}: inspect writes {} into each output folder; choose another \
                     name, such as notes.mid",
                    name.display(),
                    first.to_string_lossy()
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "--midi {}: with several files or a folder, each file's notes are written into its \
             own output folder, so --midi takes a file name there, such as notes.mid",
            name.display()
        )),
    }
}

/// The parameters recorded per file: a file is complete only for the same ones.
fn params_json(args: &InspectArgs, params: &InspectParams, audio: Option<OutputFormat>) -> Value {
    let nmf = &params.nmf;
    let mut value = json!({
        "components": nmf.components(),
        "notes": params.notes.as_ref().map(|n| n.range.to_string()),
        // Learned note templates are a source too.
        "sources": params
            .templates
            .iter()
            .chain(params.notes.iter().filter_map(|n| n.learned.as_ref()))
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        "fixed_templates": params.notes.as_ref().map(|n| n.fixed),
        "harmonic_decay": params
            .notes
            .as_ref()
            .filter(|n| n.learned.is_none())
            .map(|n| shortest(n.shape.decay)),
        "loss": nmf.loss().to_string(),
        "max_iter": nmf.max_iter(),
        "tol": nmf.tol(),
        "seed": nmf.seed(),
        "init": format!("{:?}", nmf.init()).to_lowercase(),
        "sparsity": shortest(nmf.sparsity()),
        "smoothness": shortest(nmf.smoothness()),
        "restarts": nmf.restarts(),
        "floor": shortest(nmf.floor()),
        "n_fft": params.stft.n_fft(),
        "hop": params.stft.hop(),
        "frames_follow_rate": params.scale_frames,
        "max_frames": params.max_frames,
        "onset_threshold": shortest(args.onset),
        "min_level": shortest(params.transcribe.min_level()),
        "note_confidence": params.notes.as_ref().map(|_| shortest(params.transcribe.confidence())),
        "offset_threshold": shortest(args.offset),
        "reonset": shortest(args.reonset),
        "min_duration": args.min_duration,
        "mask_power": shortest(params.mask_power),
        "audio": audio.map(|f| format!("{f:?}").to_lowercase()),
        "midi": args.midi.as_ref().map(|m| m.to_string_lossy()),
    });
    // Recorded only with -k auto, so that the reports of earlier runs still describe the
    // same parameters.
    if let Some(rank) = &params.rank {
        value["components"] = json!("auto");
        for (key, setting) in rank_params_json(Some(rank)) {
            value[key] = setting;
        }
    }
    value
}
