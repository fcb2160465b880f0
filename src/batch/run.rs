//! The runner: files in parallel, each failure recorded and skipped, the report kept up to
//! date, completed files skipped on a rerun, and a clean stop on request.

use std::collections::HashMap;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};

use super::lock::ReportLock;
use super::record::{RunInfo, peak_memory};
use super::report::timestamp;
use super::resume::{incomplete, input_identity};
use super::{BatchError, FileEntry, Item, OutputFile, Plan, Report, ReportPath, Shard, Status};

/// A flag that asks a run to stop: no job starts once it is raised, and running jobs that
/// call [`JobContext::stop_if_cancelled`] stop at their next call. Cloning shares the flag,
/// so a signal handler can hold one clone and the run another.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not raised.
    pub fn new() -> CancelFlag {
        CancelFlag::default()
    }

    /// Raises the flag.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The output folder; an item's outputs go to `out_dir/<item.output>`.
    pub out_dir: PathBuf,
    /// The report file, rewritten as each file finishes (default: none, nothing is resumed).
    pub report: Option<PathBuf>,
    /// The subcommand, recorded in the report (default `separate`).
    pub command: String,
    /// The shard being run, recorded in the report (default: none).
    pub shard: Option<Shard>,
    /// Files processed at once (default: as many as there are threads, but no more than there
    /// are files to process; 0 counts as 1).
    pub jobs: Option<usize>,
    /// Threads in all (default: those of the current rayon pool, which is one per core unless
    /// `RAYON_NUM_THREADS` or the program says otherwise). Each of the `jobs` files runs in a
    /// rayon pool of `threads / jobs` threads (at least 1) for its parallel kernels; a single
    /// job runs in the current pool when that has `threads` threads. So by default several
    /// files are processed one per thread, and a single file uses every thread, and the two
    /// levels never compete for the cores.
    pub threads: Option<usize>,
    /// Redo files whose outputs are complete (default: no, they are skipped).
    pub force: bool,
    /// The parameters of the job, recorded per file; a file is skipped as complete only if it
    /// was processed with the same ones (default: null).
    pub params: Value,
    /// Raised to stop the run (default: a flag of its own, never raised).
    pub cancel: CancelFlag,
}

impl RunOptions {
    /// Options for a run writing into `out_dir`, with the defaults above.
    pub fn new(out_dir: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            out_dir: out_dir.into(),
            report: None,
            command: "separate".into(),
            shard: None,
            jobs: None,
            threads: None,
            force: false,
            params: Value::Null,
            cancel: CancelFlag::new(),
        }
    }
}

/// What a job made of one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutput {
    /// The files it wrote (under the output folder); recorded with their sizes, and checked
    /// on a rerun.
    pub outputs: Vec<PathBuf>,
    /// Anything else to record in the file's report entry (iterations, cost, ...).
    pub details: Map<String, Value>,
}

/// How far a run is, passed to [`Observer::finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Files of this run that have finished, this one included: the problems found before
    /// the run first, then the files processed.
    pub finished: usize,
    /// Files of this run: those to process and those found to be a problem (files skipped as
    /// complete are not counted).
    pub total: usize,
}

/// Follows a run, for progress display. Called from the worker threads.
pub trait Observer: Sync {
    /// The run is about to start its jobs; `counts.total` files are to be processed.
    fn begin(&self, _counts: Counts) {}
    /// A file is skipped because its outputs are complete according to the report.
    fn complete(&self, _item: &Item) {}
    /// A job starts.
    fn started(&self, _item: &Item) {}
    /// A job reports progress ([`JobContext::progress`]).
    fn progress(&self, _item: &Item, _done: u64, _total: u64, _message: Option<&str>) {}
    /// A file is finished: processed, failed, interrupted, or found to be a problem before
    /// the run (those come first).
    fn finished(&self, _item: &Item, _entry: &FileEntry, _counts: Counts) {}
}

/// An observer that shows nothing.
impl Observer for () {}

/// What a job can do besides its work: report progress and notice a request to stop.
pub struct JobContext<'a> {
    item: &'a Item,
    observer: &'a dyn Observer,
    cancel: &'a CancelFlag,
    replace: bool,
}

/// The unwinding payload of [`JobContext::stop_if_cancelled`].
struct Cancelled;

impl JobContext<'_> {
    /// Whether the job may replace this file's existing outputs: the run was asked to
    /// (`RunOptions::force`), or a run asked to scheduled it with the same parameters and was
    /// stopped before it finished.
    pub fn replace(&self) -> bool {
        self.replace
    }

    /// Reports that `done` of `total` steps are done, with an optional message.
    pub fn progress(&self, done: u64, total: u64, message: Option<&str>) {
        self.observer.progress(self.item, done, total, message);
    }

    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Stops the job if the run was asked to stop, by unwinding to the runner, which records
    /// the file as interrupted. Whatever the job holds is dropped on the way, so a job whose
    /// partial outputs are removed on drop (as [`crate::separate::separate_file`]'s are) leaves
    /// nothing behind. The unwinding does not run the panic hook.
    pub fn stop_if_cancelled(&self) {
        if self.is_cancelled() {
            panic::resume_unwind(Box::new(Cancelled));
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Items of the plan.
    pub total: usize,
    /// Files processed successfully in this run.
    pub ok: usize,
    /// Files skipped because their outputs were complete.
    pub complete: usize,
    /// Files that failed, problems included.
    pub failed: usize,
    /// Items left out on purpose (symbolic-link loops).
    pub skipped: usize,
    /// Files stopped while running.
    pub interrupted: usize,
    /// Files never started because the run was stopped.
    pub not_started: usize,
    /// The first error writing the report during the run, after which the run went on.
    pub report_error: Option<String>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    /// Files processed at once, and the threads of each one's kernels.
    pub jobs: (usize, usize),
}

impl RunSummary {
    /// Whether every file is complete and the report was written.
    pub fn all_ok(&self) -> bool {
        self.failed == 0
            && self.interrupted == 0
            && self.not_started == 0
            && self.report_error.is_none()
    }
}

/// Runs `job` for every item of `plan` that has no problem and is not complete, `jobs` at a
/// time, and records every item in the report.
///
/// Before any job starts, the report (if `options.report` is set) is read if it exists (its
/// entries for other files are kept), and written with every item of the plan: problems as
/// failed or skipped, complete files as they were, the rest as pending. Each job then runs on
/// one of `options.jobs` threads, inside a rayon pool of `options.threads_per_job` threads,
/// after the folder that will hold its output folder has been created. An error or a panic of
/// a job fails that file only. The report is rewritten atomically after every file. Once
/// `options.cancel` is raised, no further job starts; running jobs finish or stop at their
/// next [`JobContext::stop_if_cancelled`]. Folders created for files that then failed are
/// removed again if they are empty. The last save adds the run's time, jobs, threads and peak
/// memory ([`RunInfo`]), before the report's lock is released.
///
/// A file is complete, and skipped unless `options.force` is set, when its report entry is
/// `ok`, has the same parameters, the input has the size and modification time it had, and
/// every output exists with the size it had.
///
/// # Errors
/// [`BatchError::Report`] if an existing report cannot be read; [`BatchError::Write`] if the
/// output folder or the first report cannot be written (then no job has run). A failing
/// file is never an error.
///
/// ```
/// use std::path::PathBuf;
/// use demix::batch::{run, Item, JobOutput, Plan, RunOptions};
/// let out = tempfile::tempdir()?;
/// let items = ["a", "b", "bad"].iter().enumerate().map(|(id, name)| Item {
///     id,
///     ..Item::new(format!("in/{name}.txt").into(), format!("{name}.txt").into(), Some(name.into()))
/// });
/// let plan = Plan { items: items.collect() };
/// let mut options = RunOptions::new(out.path());
/// options.report = Some(out.path().join("demix-report.json"));
/// options.jobs = Some(2);
/// let summary = run(&plan, &options, &(), |item, _ctx| {
///     let name = item.output.as_ref().unwrap();
///     if name == &PathBuf::from("bad") {
///         return Err("it is bad".to_string());
///     }
///     let path = out.path().join(name).with_extension("txt");
///     std::fs::write(&path, "done").map_err(|e| e.to_string())?;
///     Ok(JobOutput { outputs: vec![path], ..Default::default() })
/// })?;
/// assert_eq!((summary.ok, summary.failed), (2, 1));
/// let report = demix::batch::Report::load(&out.path().join("demix-report.json"))?;
/// assert_eq!(report.summary.ok, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run<F>(
    plan: &Plan,
    options: &RunOptions,
    observer: &dyn Observer,
    job: F,
) -> Result<RunSummary, BatchError>
where
    F: Fn(&Item, &JobContext<'_>) -> Result<JobOutput, String> + Sync,
{
    let started = Instant::now();
    // Held until the run ends: no other run writes this report meanwhile.
    let _lock = match &options.report {
        Some(path) => {
            fs::create_dir_all(&options.out_dir)
                .map_err(|e| BatchError::Write(crate::Error::write(&options.out_dir, e)))?;
            Some(ReportLock::acquire(path)?)
        }
        None => None,
    };
    let mut report = match &options.report {
        Some(path) if fs::symlink_metadata(path).is_ok() => {
            let mut old = Report::load(path)?;
            if old.command != options.command {
                return Err(BatchError::Report {
                    path: path.clone(),
                    reason: format!(
                        "it is the report of 'demix {}'; use another output folder",
                        old.command
                    ),
                });
            }
            let fresh = Report::new(&options.command, options.shard);
            old.tool = fresh.tool;
            old.shard = fresh.shard;
            old
        }
        _ => Report::new(&options.command, options.shard),
    };
    let mut index = report.index_by_key();
    let mut summary = RunSummary {
        total: plan.len(),
        ..RunSummary::default()
    };

    // Each with why its previous outputs are not complete, if it has any, and whether they
    // may be replaced.
    let mut to_do: Vec<(&Item, Option<&str>, bool)> = Vec::new();
    let mut problems: Vec<(&Item, FileEntry)> = Vec::new();
    for item in &plan.items {
        let key = item.key().to_path_buf();
        let previous = index.get(&key).map(|&i| &report.files[i]);
        let entry = if let Some(problem) = &item.problem {
            let mut entry =
                FileEntry::new(&item.input, item.output.as_deref(), item.problem_status);
            entry.error = Some(problem.clone());
            entry.finished = Some(timestamp(SystemTime::now()));
            match item.problem_status {
                Status::Skipped => summary.skipped += 1,
                _ => summary.failed += 1,
            }
            problems.push((item, entry.clone()));
            entry
        } else {
            let state = match previous {
                Some(p) if options.report.is_some() => {
                    incomplete(p, item, &options.params, &options.out_dir)
                }
                _ => Err(""),
            };
            if state.is_ok() && !options.force {
                summary.complete += 1;
                observer.complete(item);
                continue;
            }
            // A replacement that a stopped --force run left unfinished, with these parameters.
            let unfinished = previous
                .is_some_and(|p| p.replace && p.status != Status::Ok && p.params == options.params);
            let replace = options.force || unfinished;
            to_do.push((item, state.err().filter(|why| !why.is_empty()), replace));
            let mut entry = FileEntry::new(&item.input, item.output.as_deref(), Status::Pending);
            entry.params = options.params.clone();
            entry.replace = replace;
            entry
        };
        upsert(&mut report, &mut index, entry);
    }

    if let Some(path) = &options.report {
        fs::create_dir_all(&options.out_dir)
            .map_err(|e| BatchError::Write(crate::Error::write(&options.out_dir, e)))?;
        report.save(path)?;
    }
    let total = to_do.len() + problems.len();
    observer.begin(Counts { finished: 0, total });
    for (i, (item, entry)) in problems.iter().enumerate() {
        observer.finished(
            item,
            entry,
            Counts {
                finished: i + 1,
                total,
            },
        );
    }

    let state = Mutex::new(State {
        report,
        index,
        summary,
        finished: 0,
        created: Vec::new(),
    });
    let next = AtomicUsize::new(0);
    let current = rayon::current_num_threads();
    let threads = options.threads.unwrap_or(current).max(1);
    let workers = options
        .jobs
        .unwrap_or(threads)
        .max(1)
        .min(to_do.len().max(1));
    // 0: the jobs run in the current pool.
    let threads_per_job = if workers == 1 && threads == current {
        0
    } else {
        (threads / workers).max(1)
    };
    let kernel_threads = if threads_per_job == 0 {
        current
    } else {
        threads_per_job
    };
    state.lock().unwrap_or_else(|e| e.into_inner()).summary.jobs = (workers, kernel_threads);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let pool = (threads_per_job > 0)
                    .then(|| {
                        rayon::ThreadPoolBuilder::new()
                            .num_threads(threads_per_job)
                            .build()
                            .ok()
                    })
                    .flatten();
                loop {
                    if options.cancel.is_cancelled() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(item, stale, replace)) = to_do.get(i) else {
                        break;
                    };
                    let job = Job {
                        item,
                        replace,
                        run: &job,
                    };
                    let mut entry = run_one(&job, options, observer, pool.as_ref(), &state);
                    if let (Status::Failed, Some(error), Some(why)) =
                        (entry.status, &mut entry.error, stale)
                    {
                        *error = format!("{error} ({why})");
                    }
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    state.finished += 1;
                    match entry.status {
                        Status::Ok => state.summary.ok += 1,
                        Status::Interrupted => state.summary.interrupted += 1,
                        _ => state.summary.failed += 1,
                    }
                    let counts = Counts {
                        finished: problems.len() + state.finished,
                        total,
                    };
                    let State {
                        report,
                        index,
                        summary,
                        ..
                    } = &mut *state;
                    upsert(report, index, entry.clone());
                    if let Some(path) = &options.report
                        && let Err(e) = report.save(path)
                    {
                        summary.report_error.get_or_insert(e.to_string());
                    }
                    observer.finished(item, &entry, counts);
                }
            });
        }
    });

    let mut state = state.into_inner().unwrap_or_else(|e| e.into_inner());
    state.summary.not_started = to_do.len().saturating_sub(state.finished);
    // Folders made for files that did not complete, if nothing else went into them.
    state
        .created
        .sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
    for dir in &state.created {
        let _ = fs::remove_dir(dir);
    }
    // Every outcome was saved as it came; the last save, still under the lock, adds what the
    // run took (and retries after a failed save).
    state.summary.seconds = started.elapsed().as_secs_f64();
    state.report.run = Some(RunInfo {
        seconds: state.summary.seconds,
        jobs: state.summary.jobs.0,
        threads: state.summary.jobs.1,
        peak_memory_bytes: peak_memory(),
    });
    if let Some(path) = &options.report {
        match state.report.save(path) {
            Ok(()) => state.summary.report_error = None,
            Err(e) => {
                state.summary.report_error.get_or_insert(e.to_string());
            }
        }
    }
    Ok(state.summary)
}

struct State {
    report: Report,
    index: HashMap<PathBuf, usize>,
    summary: RunSummary,
    finished: usize,
    /// Folders created to hold output folders, removed at the end if empty.
    created: Vec<PathBuf>,
}

fn upsert(report: &mut Report, index: &mut HashMap<PathBuf, usize>, entry: FileEntry) {
    match index.get(entry.key()) {
        Some(&i) => report.files[i] = entry,
        None => {
            index.insert(entry.key().to_path_buf(), report.files.len());
            report.files.push(entry);
        }
    }
}

/// One item to run, whether its outputs may be replaced, and the job that runs it.
struct Job<'a, F> {
    item: &'a Item,
    replace: bool,
    run: &'a F,
}

/// Runs the job for one item and turns whatever happens into its report entry.
fn run_one<F>(
    job: &Job<'_, F>,
    options: &RunOptions,
    observer: &dyn Observer,
    pool: Option<&rayon::ThreadPool>,
    state: &Mutex<State>,
) -> FileEntry
where
    F: Fn(&Item, &JobContext<'_>) -> Result<JobOutput, String> + Sync,
{
    let item = job.item;
    let mut entry = FileEntry::new(&item.input, item.output.as_deref(), Status::Failed);
    entry.params = options.params.clone();
    entry.replace = job.replace;
    // The input as it is before the job reads it: a change during the job shows on a rerun.
    if let Some((size, modified)) = input_identity(&item.input) {
        entry.input_size = Some(size);
        entry.input_modified_ns = Some(modified);
    }
    observer.started(item);
    let started = Instant::now();

    let holder = item
        .output
        .as_ref()
        .and_then(|o| o.parent())
        .map(|p| options.out_dir.join(p));
    let outcome = match holder.as_deref().map(|dir| create_dirs(dir, state)) {
        Some(Err(e)) => Ok(Err(crate::Error::write(
            holder.clone().unwrap_or_default(),
            e,
        )
        .to_string())),
        _ => {
            let ctx = JobContext {
                item,
                observer,
                cancel: &options.cancel,
                replace: job.replace,
            };
            panic::catch_unwind(AssertUnwindSafe(|| match pool {
                Some(pool) => pool.install(|| (job.run)(item, &ctx)),
                None => (job.run)(item, &ctx),
            }))
        }
    };
    entry.seconds = Some(started.elapsed().as_secs_f64());
    entry.finished = Some(timestamp(SystemTime::now()));
    match outcome {
        Ok(Ok(output)) => {
            entry.status = Status::Ok;
            entry.replace = false;
            entry.outputs = output
                .outputs
                .iter()
                .map(|path| OutputFile {
                    path: ReportPath::from(path.strip_prefix(&options.out_dir).unwrap_or(path)),
                    bytes: fs::metadata(path).map_or(0, |m| m.len()),
                })
                .collect();
            entry.details = output.details;
        }
        Ok(Err(message)) => entry.error = Some(message),
        Err(payload) if payload.is::<Cancelled>() => {
            entry.status = Status::Interrupted;
            entry.error = Some("interrupted before it finished; a rerun processes it".into());
        }
        Err(payload) => {
            let what =
                crate::error::panic_message(&*payload).unwrap_or_else(|| "no message".into());
            entry.error = Some(format!(
                "internal error: demix panicked ({what}); this is a bug, please report it with \
                 this file"
            ));
        }
    }
    entry
}

/// Creates `dir` and its missing parents, remembering the ones it created.
fn create_dirs(dir: &Path, state: &Mutex<State>) -> std::io::Result<()> {
    let missing = crate::atomic::missing_dirs(dir);
    fs::create_dir_all(dir)?;
    state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .created
        .extend(missing);
    Ok(())
}
