//! What the subcommands that run over files and folders (`demix separate`, `demix inspect`)
//! share: finding the files, running them through [`demix::batch`] with progress, the summary
//! and the exit code.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};

use super::Output;
use super::args::BatchArgs;
use super::failure::{FAILURE, Failure, INTERRUPTED};
use demix::audio::OutputFormat;
use demix::batch::{
    self, CancelFlag, Counts, DiscoverOptions, FileEntry, Glob, Item, JobContext, JobOutput,
    Observer, Plan, RunOptions, Status,
};
use demix::nmf::{Progress, RankParams};

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
/// A bad option (a usage error), or no audio file at all.
pub(super) fn find_files(
    inputs: &[PathBuf],
    out_dir: &Path,
    batch: &BatchArgs,
) -> Result<Files, Failure> {
    if batch.jobs == Some(0) {
        return Err(Failure::usage("-j/--jobs must be at least 1"));
    }
    let globs = batch
        .globs
        .iter()
        .map(|g| Glob::new(g))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::usage(format!("--glob: {e}")))?;
    let mut plan = batch::discover(
        inputs,
        &DiscoverOptions {
            globs,
            exclude: Some(out_dir.to_path_buf()),
        },
    );
    if plan.is_empty() {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(Failure::failed(format!(
            "no audio files found in {}",
            names.join(", ")
        )));
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
/// clean stop on Ctrl-C or SIGTERM, and a summary; returns the exit code (1 when a file
/// failed, after each failure was shown).
///
/// # Errors
/// When the run cannot start (its report or output folder cannot be made).
pub(super) fn run_files<F>(
    files: &Files,
    spec: &RunSpec<'_>,
    out: &Output,
    show: &ShowDone<'_>,
    job: F,
) -> Result<ExitCode, Failure>
where
    F: Fn(&Item, &JobContext<'_>) -> Result<JobOutput, String> + Sync,
{
    let shard = spec.batch.shard;
    let report_path = files
        .is_batch
        .then(|| spec.out_dir.join(batch::report_file_name(shard)));
    if let Some(json) = &spec.batch.json {
        check_json_path(json, spec.force, report_path.as_deref())?;
    }

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
    let summary = batch::run(&files.plan, &options, &display, job)
        .map_err(|e| Failure::failed(e.to_string()))?;
    display.finish();
    out.detail(&format!(
        "{} file(s) at once, {} thread(s) each",
        summary.jobs.0, summary.jobs.1
    ));
    let entries = std::mem::take(&mut *display.entries.lock().unwrap_or_else(|e| e.into_inner()));
    let single_report = spec.out_dir.join(batch::REPORT_FILE);
    let written = record_run(
        spec,
        &summary,
        report_path.as_deref().unwrap_or(&single_report),
        &entries,
        report_path.is_some(),
    );
    let summary = batch::RunSummary {
        report_error: summary.report_error.clone().or(written.err()),
        ..summary
    };

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
        return Ok(ExitCode::from(INTERRUPTED));
    }
    if let Some(report_name) = report_name {
        if summary.failed > 0 {
            // Of the files that got a line above, as their counters count them.
            let mut line = format!(
                "{} of {} files failed",
                summary.failed,
                summary.total - summary.complete
            );
            if summary.complete > 0 {
                line += &format!(" ({} already complete)", summary.complete);
            }
            out.error(&format!("{line}; see {report_name}"));
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
    Ok(if summary.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}

/// Refuses a `--json` FILE that exists (without `--force`) or is the run's own report.
pub(super) fn check_json_path(
    json: &Path,
    force: bool,
    report: Option<&Path>,
) -> Result<(), Failure> {
    let own = report.is_some_and(|r| r == json || super::same_file(r, json));
    if own || json.is_dir() {
        return Err(Failure::usage(format!(
            "--json {}: give a file apart from the output folder's report",
            json.display()
        )));
    }
    if !force && std::fs::symlink_metadata(json).is_ok() {
        return Err(Failure::failed(format!(
            "{}: already exists; use --force to replace it",
            json.display()
        )));
    }
    Ok(())
}

/// Records what the run took for a single file that succeeded, in OUT/demix-report.json (a
/// failed file leaves nothing in OUT; a batch's report has it from `batch::run`, which saves
/// it last under its lock); with `--json`, writes the report to that file too.
fn record_run(
    spec: &RunSpec<'_>,
    summary: &batch::RunSummary,
    report: &Path,
    entries: &[FileEntry],
    is_batch: bool,
) -> Result<(), String> {
    let run = batch::RunInfo {
        seconds: summary.seconds,
        jobs: summary.jobs.0,
        threads: summary.jobs.1,
        peak_memory_bytes: batch::peak_memory(),
    };
    let all_ok = !entries.is_empty() && entries.iter().all(|e| e.status == Status::Ok);
    let mut written = if is_batch {
        // batch::run saved the entries and the run's figures before it let the report go.
        Some(batch::Report::load(report).map_err(|e| e.to_string())?)
    } else if all_ok {
        Some(batch::record(report, spec.command, entries, run).map_err(|e| e.to_string())?)
    } else {
        None
    };
    if let Some(json) = &spec.batch.json {
        let report = written.get_or_insert_with(|| {
            let mut report = batch::Report::new(spec.command, spec.batch.shard);
            report.files = entries.to_vec();
            report.run = Some(run);
            report
        });
        report.save(json).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The message of a job's error, with a hint where one helps.
pub(super) fn job_error(e: &demix::Error) -> String {
    match e {
        demix::Error::OutputExists(_) => format!("{e}; use --force to replace it"),
        demix::Error::Param(p) => super::failure::describe_param_error(p),
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

/// `x` as the f64 of its shortest decimal form, so that 0.3 is recorded as 0.3, not
/// 0.30000001192092896.
pub(super) fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

/// The settings of a rank selection (`-k auto`) as a run's report records them among its
/// parameters, `null` without one.
pub(super) fn rank_params_json(rank: Option<&RankParams>) -> [(&'static str, Value); 4] {
    [
        ("k_range", json!(rank.map(|r| r.range().to_string()))),
        ("rank_method", json!(rank.map(|r| r.method().to_string()))),
        ("rank_starts", json!(rank.map(RankParams::starts))),
        ("held_out", json!(rank.map(|r| shortest(r.held_out())))),
    ]
}

/// How the settings line (`-v`) shows the number of components: `4`, or with a rank
/// selection `auto (2-32 by sweep)`.
pub(super) fn components_label(components: usize, rank: Option<&RankParams>) -> String {
    rank.map_or_else(
        || components.to_string(),
        |r| format!("auto ({} by {})", r.range(), r.method()),
    )
}

/// `K = 8 chosen, ` when a rank selection chose the file's K (its `chosen_k` detail).
pub(super) fn chosen_text(entry: &FileEntry) -> String {
    match entry.details.get("chosen_k").and_then(Value::as_u64) {
        Some(k) => format!("K = {k} chosen, "),
        None => String::new(),
    }
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
    /// The entries of the files that finished, in the order they did.
    entries: Mutex<Vec<FileEntry>>,
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
            entries: Mutex::new(Vec::new()),
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

    /// The output folder of an entry: OUT/<output> (OUT itself for an empty output).
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
        self.overall.inc(1);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry.clone());
        let prefix = if counts.total > 1 {
            format!("[{}/{}] ", counts.finished, counts.total)
        } else {
            String::new()
        };
        let name = item.input.display().to_string();
        let error = entry.error.as_deref().unwrap_or("failed");
        self.print(|| match entry.status {
            Status::Ok => (self.show)(&format!("{prefix}{name}"), entry, &self.folder(entry)),
            Status::Interrupted => self.out.warn(&format!("{prefix}{name}: {error}")),
            Status::Skipped => self.out.warn(&format!("{prefix}{name}: {error}")),
            Status::Failed | Status::Pending => {
                self.out.error(&format!("{prefix}{name}: {error}"));
            }
        });
    }
}
