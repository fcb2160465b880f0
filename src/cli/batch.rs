//! The subcommands that run over files and folders (`demix separate`, `demix inspect`):
//! finding the files, running them through [`demix::batch`] with progress, the summary and
//! the exit code; and `demix report merge`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};

use super::args::{BatchArgs, MergeArgs, SeparateArgs};
use super::{FAILURE, Output, describe_param_error, load_sources};
use demix::audio::OutputFormat;
use demix::batch::{
    self, CancelFlag, Counts, DiscoverOptions, FileEntry, Glob, Item, JobContext, JobOutput,
    Observer, Plan, Report, RunOptions, Status,
};
use demix::nmf::Progress;
use demix::separate::SeparateParams;

/// Exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// The files of a run, found before anything is processed.
pub(super) struct Files {
    /// One item per file (or problem found), of this run's shard.
    pub plan: Plan,
    /// Several files, a folder, or a shard: the run keeps a report. A single file does not.
    pub is_batch: bool,
}

/// Checks the batch options and finds the files of `inputs`, leaving out `out_dir`.
///
/// # Errors
/// The exit code, after printing why: a bad option, or no audio file at all.
pub(super) fn find_files(
    inputs: &[PathBuf],
    out_dir: &Path,
    batch: &BatchArgs,
    out: &Output,
) -> Result<Files, ExitCode> {
    if batch.jobs == Some(0) {
        out.error("-j/--jobs must be at least 1");
        return Err(ExitCode::from(FAILURE));
    }
    let globs = match batch.globs.iter().map(|g| Glob::new(g)).collect() {
        Ok(globs) => globs,
        Err(e) => {
            out.error(&format!("--glob: {e}"));
            return Err(ExitCode::from(FAILURE));
        }
    };
    let mut plan = batch::discover(
        inputs,
        &DiscoverOptions {
            globs,
            exclude: Some(out_dir.to_path_buf()),
        },
    );
    if plan.is_empty() {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        out.error(&format!("no audio files found in {}", names.join(", ")));
        return Err(ExitCode::from(FAILURE));
    }
    let is_batch = plan.len() > 1 || batch.shard.is_some() || inputs.iter().any(|p| p.is_dir());
    if let Some(shard) = batch.shard {
        plan = plan.shard(shard);
    }
    Ok(Files { plan, is_batch })
}

/// How a subcommand runs its files.
pub(super) struct RunSpec<'a> {
    /// The subcommand, recorded in the report (`separate`).
    pub command: &'static str,
    /// What was done to a file, for the summary (`separated`).
    pub done: &'static str,
    /// The output folder.
    pub out_dir: &'a Path,
    /// `-j`, `--shard`.
    pub batch: &'a BatchArgs,
    /// `--threads`.
    pub threads: Option<usize>,
    /// Redo complete files and replace existing outputs.
    pub force: bool,
    /// The parameters recorded per file: a file is complete only for the same ones.
    pub params: Value,
}

/// Shows a file that was processed: called with the input's name (after any `[i/n] `
/// counter), its report entry, and its output folder.
pub(super) type ShowDone<'a> = dyn Fn(&str, &FileEntry, &Path) + Sync + 'a;

/// Runs `job` for every file, `--jobs` at a time, with progress, a report for a batch, a
/// clean stop on Ctrl-C or SIGTERM, and a summary; returns the exit code.
pub(super) fn run_files<F>(
    files: &Files,
    spec: &RunSpec<'_>,
    out: &Output,
    show: &ShowDone<'_>,
    job: F,
) -> ExitCode
where
    F: Fn(&Item, &JobContext<'_>) -> Result<JobOutput, String> + Sync,
{
    let shard = spec.batch.shard;
    let report_path = files
        .is_batch
        .then(|| spec.out_dir.join(batch::report_file_name(shard)));

    let cancel = CancelFlag::new();
    let on_signal = cancel.clone();
    // Fails only if a handler is set already; the run then simply cannot be stopped cleanly.
    let _ = ctrlc::set_handler(move || {
        if on_signal.is_cancelled() {
            std::process::exit(i32::from(INTERRUPTED));
        }
        on_signal.cancel();
        eprintln!(
            "demix: stopping: no new file is started and running ones stop at their next \
             iteration; press Ctrl-C again to quit at once"
        );
    });

    let options = RunOptions {
        out_dir: spec.out_dir.to_path_buf(),
        report: report_path.clone(),
        command: spec.command.into(),
        shard,
        jobs: spec.batch.jobs,
        threads: spec.threads,
        force: spec.force,
        params: spec.params.clone(),
        cancel,
    };
    let display = Display::new(out, spec.out_dir, show);
    let summary = match batch::run(&files.plan, &options, &display, job) {
        Ok(summary) => summary,
        Err(e) => {
            out.error(&e.to_string());
            return ExitCode::from(FAILURE);
        }
    };
    display.finish();
    out.detail(&format!(
        "{} file(s) at once, {} thread(s) each",
        summary.jobs.0, summary.jobs.1
    ));

    if let Some(e) = &summary.report_error {
        out.error(&format!("the report could not be written: {e}"));
    }
    let report_name = report_path.as_ref().map(|p| p.display().to_string());
    let stopped = summary.interrupted + summary.not_started > 0;
    if stopped {
        out.error(&format!(
            "stopped: {} file(s) {}, {} interrupted, {} not started, {} failed; run the same \
             command again to continue",
            summary.ok, spec.done, summary.interrupted, summary.not_started, summary.failed
        ));
        return ExitCode::from(INTERRUPTED);
    }
    if let Some(report_name) = report_name {
        if summary.failed > 0 {
            out.error(&format!(
                "{} of {} files failed; see {report_name}",
                summary.failed, summary.total
            ));
        } else {
            let mut line = format!("{} file(s) {}", summary.ok, spec.done);
            if summary.complete > 0 {
                line += &format!(", {} already complete", summary.complete);
            }
            if summary.skipped > 0 {
                line += &format!(", {} skipped", summary.skipped);
            }
            out.info(&format!(
                "{line} in {:.1} s; report {report_name}",
                summary.seconds
            ));
        }
    }
    if summary.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    }
}

/// The message of a job's error, with a hint where one helps.
pub(super) fn job_error(e: &demix::Error) -> String {
    match e {
        demix::Error::OutputExists(_) => format!("{e}; use --force to replace it"),
        _ => e.to_string(),
    }
}

/// Warns that `clipped` samples of `path` were limited to full scale.
pub(super) fn warn_clipped(
    out: &Output,
    path: &Path,
    clipped: u64,
    peak: f64,
    format: OutputFormat,
) {
    let bits = if format == OutputFormat::Int24 {
        24
    } else {
        16
    };
    out.warn(&format!(
        "{}: {clipped} samples beyond full scale (peak {peak:.3}) were limited to full scale \
         in {bits}-bit output; use --float32 to keep them",
        path.display()
    ));
}

/// Separates every file of the inputs, `--jobs` at a time, with a report for a batch.
pub(super) fn run_separate(args: &SeparateArgs, threads: Option<usize>, out: &Output) -> ExitCode {
    let templates = match load_sources(&args.source) {
        Ok(t) => t,
        Err(message) => {
            out.error(&message);
            return ExitCode::from(FAILURE);
        }
    };
    let params = args.params(templates);
    let separator = match params.check() {
        Ok(separator) => separator,
        Err(e) => {
            out.error(&describe_param_error(&e));
            return ExitCode::from(FAILURE);
        }
    };
    let files = match find_files(&args.inputs, &args.out, &args.batch, out) {
        Ok(files) => files,
        Err(code) => return code,
    };
    let output = args.output();
    out.detail(&format!(
        "demix separate: components={} sources={} loss={} iter={} tol={} seed={} n_fft={} hop={} mask_power={}",
        params.nmf.components(),
        params.templates.len(),
        params.nmf.loss(),
        params.nmf.max_iter(),
        params.nmf.tol(),
        params.nmf.seed(),
        params.stft.n_fft(),
        params.stft.hop(),
        args.mask_power
            .map_or_else(|| "auto".to_string(), |p| p.to_string())
    ));

    let spec = RunSpec {
        command: "separate",
        done: "separated",
        out_dir: &args.out,
        batch: &args.batch,
        threads,
        force: output.force,
        params: params_json(args, &params, output.format),
    };
    let show = |name: &str, entry: &FileEntry, folder: &Path| {
        show_separated(out, &args.out, output.format, name, entry, folder);
    };
    let job = |item: &Item, ctx: &JobContext<'_>| -> Result<JobOutput, String> {
        let holder = match item.output.as_deref().and_then(Path::parent) {
            Some(parent) if !parent.as_os_str().is_empty() => args.out.join(parent),
            _ => args.out.clone(),
        };
        let report = separator
            .separate_file(&item.input, &holder, &output, &mut job_progress(ctx))
            .map_err(|e| job_error(&e))?;
        let mut details = fit_details(
            report.iterations,
            report.final_cost,
            report.converged,
            report.duration_secs,
        );
        let sources: Vec<Value> = report
            .stems
            .iter()
            .map(|s| json!({"name": s.name, "clipped": s.clip.clipped, "peak": s.clip.peak}))
            .collect();
        details.insert("sources".into(), Value::Array(sources));
        Ok(JobOutput {
            outputs: report.stems.into_iter().map(|s| s.path).collect(),
            details,
        })
    };
    run_files(&files, &spec, out, &show, job)
}

/// The line of a separated file, its stems with `-v`, and a warning for each that clipped.
fn show_separated(
    out: &Output,
    out_dir: &Path,
    format: OutputFormat,
    name: &str,
    entry: &FileEntry,
    folder: &Path,
) {
    let detail = |key: &str| entry.details.get(key).cloned().unwrap_or(Value::Null);
    out.info(&format!(
        "{name}: {} sources in {} ({} iterations, cost {:.4e}, {:.1} s)",
        entry.outputs.len(),
        folder.display(),
        how_it_stopped(entry),
        detail("final_cost").as_f64().unwrap_or(f64::NAN),
        entry.seconds.unwrap_or(0.0)
    ));
    let sources = detail("sources");
    for (file, source) in entry
        .outputs
        .iter()
        .zip(sources.as_array().into_iter().flatten())
    {
        let path = out_dir.join(file.path.as_path());
        out.detail(&format!("  {}", path.display()));
        let clipped = source["clipped"].as_u64().unwrap_or(0);
        if clipped > 0 {
            let peak = source["peak"].as_f64().unwrap_or(f64::NAN);
            warn_clipped(out, &path, clipped, peak, format);
        }
    }
}

/// Shows a job's NMF iterations on its progress bar, and stops the job when the batch is
/// cancelled.
pub(super) fn job_progress<'a>(ctx: &'a JobContext<'_>) -> impl FnMut(Progress) + 'a {
    |p| {
        ctx.progress(
            p.iteration as u64,
            p.max_iter as u64,
            p.cost.map(|c| format!("cost {c:.4e}")).as_deref(),
        );
        ctx.stop_if_cancelled();
    }
}

/// What the report records of a file's fit, read back by [`how_it_stopped`].
pub(super) fn fit_details(
    iterations: usize,
    final_cost: f64,
    converged: bool,
    duration_secs: f64,
) -> Map<String, Value> {
    let mut details = Map::new();
    details.insert("iterations".into(), json!(iterations));
    details.insert("final_cost".into(), json!(final_cost));
    details.insert("converged".into(), json!(converged));
    details.insert("duration_secs".into(), json!(duration_secs));
    details
}

/// `converged after N` or `stopped at N`, from an entry's details.
pub(super) fn how_it_stopped(entry: &FileEntry) -> String {
    let how = if entry.details.get("converged").and_then(Value::as_bool) == Some(true) {
        "converged after"
    } else {
        "stopped at"
    };
    let iterations = entry
        .details
        .get("iterations")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    format!("{how} {iterations}")
}

/// The parameters recorded per file: a file is complete only for the same ones. Learned
/// templates are recorded by their `--source` arguments (names and files), not their contents.
fn params_json(args: &SeparateArgs, params: &SeparateParams, format: OutputFormat) -> Value {
    let nmf = &params.nmf;
    json!({
        "components": nmf.components(),
        "sources": args.source,
        "free": args.free,
        "groups": args.groups,
        "loss": nmf.loss().to_string(),
        "max_iter": nmf.max_iter(),
        "tol": nmf.tol(),
        "seed": nmf.seed(),
        "init": format!("{:?}", nmf.init()).to_lowercase(),
        "sparsity": nmf.sparsity(),
        "smoothness": nmf.smoothness(),
        "restarts": nmf.restarts(),
        "floor": shortest(nmf.floor()),
        "spatial": params.spatial,
        "max_frames": params.max_frames,
        "n_fft": params.stft.n_fft(),
        "hop": params.stft.hop(),
        "mask_power": args.mask_power.map(shortest),
        "format": format!("{format:?}").to_lowercase(),
    })
}

/// `x` as the f64 of its shortest decimal form, so that 0.3 is recorded as 0.3, not
/// 0.30000001192092896.
pub(super) fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

/// Progress of a batch: on a terminal, a bar for the batch and one per running file; else
/// one line per finished file.
struct Display<'a> {
    out: &'a Output,
    out_dir: PathBuf,
    show: &'a ShowDone<'a>,
    multi: Option<MultiProgress>,
    overall: ProgressBar,
    bars: Mutex<HashMap<usize, ProgressBar>>,
}

impl<'a> Display<'a> {
    fn new(out: &'a Output, out_dir: &Path, show: &'a ShowDone<'a>) -> Display<'a> {
        let multi = (!out.quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let overall = match &multi {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} [{bar:30}] {pos}/{len} files, {elapsed} elapsed, ETA {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix("batch");
                bar
            }
            None => ProgressBar::hidden(),
        };
        Display {
            out,
            out_dir: out_dir.to_path_buf(),
            show,
            multi,
            overall,
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Prints without tearing the bars.
    fn print(&self, f: impl FnOnce()) {
        match &self.multi {
            Some(multi) => multi.suspend(f),
            None => f(),
        }
    }

    fn finish(&self) {
        self.overall.finish_and_clear();
    }

    /// The output folder of an entry: OUT/<output>, or OUT itself for an empty output.
    fn folder(&self, entry: &FileEntry) -> PathBuf {
        match &entry.output {
            Some(o) if !o.as_path().as_os_str().is_empty() => self.out_dir.join(o.as_path()),
            _ => self.out_dir.clone(),
        }
    }
}

impl Observer for Display<'_> {
    fn begin(&self, counts: Counts) {
        self.overall.set_length(counts.total as u64);
        self.overall.reset_eta();
    }

    fn complete(&self, item: &Item) {
        self.print(|| {
            self.out.detail(&format!(
                "{}: complete according to the report, skipped (--force redoes it)",
                item.input.display()
            ));
        });
    }

    fn started(&self, item: &Item) {
        let Some(multi) = &self.multi else {
            return;
        };
        // Empty until the first iteration, while the file is read and its spectrogram made.
        let bar = multi.insert_before(&self.overall, ProgressBar::new(1));
        bar.set_style(
            ProgressStyle::with_template("  {prefix:40!} [{bar:20}] {pos}/{len} iterations {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(item.relative.display().to_string());
        bar.set_message("reading");
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(item.id, bar);
    }

    fn progress(&self, item: &Item, done: u64, total: u64, message: Option<&str>) {
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = bars.get(&item.id) {
            bar.set_length(total);
            bar.set_position(done);
            if let Some(message) = message {
                bar.set_message(message.to_string());
            }
        }
    }

    fn finished(&self, item: &Item, entry: &FileEntry, counts: Counts) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&item.id)
        {
            bar.finish_and_clear();
            if let Some(multi) = &self.multi {
                multi.remove(&bar);
            }
        }
        if counts.finished > 0 {
            self.overall.inc(1);
        }
        let prefix = if counts.total > 1 && counts.finished > 0 {
            format!("[{}/{}] ", counts.finished, counts.total)
        } else {
            String::new()
        };
        let name = item.input.display().to_string();
        let error = entry.error.as_deref().unwrap_or("failed");
        self.print(|| match entry.status {
            Status::Ok => (self.show)(&format!("{prefix}{name}"), entry, &self.folder(entry)),
            Status::Interrupted => self.out.warn(&format!("{prefix}{name}: {error}")),
            Status::Skipped => self.out.warn(&format!("{name}: {error}")),
            Status::Failed | Status::Pending => {
                self.out.error(&format!("{prefix}{name}: {error}"));
            }
        });
    }
}

/// `demix report merge`: one report from many, written atomically.
pub(super) fn run_merge(args: &MergeArgs, out: &Output) -> ExitCode {
    let mut reports = Vec::new();
    for path in &args.reports {
        match Report::load(path) {
            Ok(report) => reports.push((path.display().to_string(), report)),
            Err(e) => {
                out.error(&e.to_string());
                return ExitCode::from(FAILURE);
            }
        }
    }
    let folder = |p: &Path| {
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        parent.unwrap_or(Path::new(".")).canonicalize().ok()
    };
    let target = folder(&args.out);
    if args.reports.iter().any(|p| folder(p) != target) {
        out.warn(
            "the reports are not all in the merged report's folder; the paths of their entries \
             are relative to their own folders",
        );
    }
    let mut merged = match batch::merge(&reports) {
        Ok(merged) => merged,
        Err(e) => {
            out.error(&e.to_string());
            return ExitCode::from(FAILURE);
        }
    };
    if let Err(e) = merged.save(&args.out) {
        out.error(&e.to_string());
        return ExitCode::from(FAILURE);
    }
    let s = merged.summary;
    out.info(&format!(
        "{}: {} files from {} reports: {} ok, {} failed, {} interrupted, {} pending, {} skipped",
        args.out.display(),
        s.total,
        reports.len(),
        s.ok,
        s.failed,
        s.interrupted,
        s.pending,
        s.skipped
    ));
    ExitCode::SUCCESS
}
