//! Batch processing of many files: discovery in folders, sharding over machines, a runner
//! that processes files in parallel and survives failing ones, and the run report that makes
//! a run resumable.
//!
//! The pieces, in the order a run uses them:
//!
//! 1. [`discover`] turns the command line's files and folders into a [`Plan`]: one [`Item`]
//!    per file, each with the folder of its outputs relative to the output folder, mirroring
//!    the file's place under the folder it was found in. What cannot be processed (a dangling
//!    link, two files wanting one output folder) is an item with a problem, not an error.
//! 2. [`Plan::shard`] keeps a deterministic share of the items ([`Shard`]).
//! 3. [`run`] calls a job (any closure from an item to a [`JobOutput`]) for every item, on
//!    `jobs` threads at once, each with its own rayon pool for the job's parallel kernels;
//!    skips items whose outputs are complete according to the previous [`Report`]; records
//!    each outcome in the report as it comes; turns a failure or a panic of one job into a
//!    failed entry; and stops starting jobs once a [`CancelFlag`] is raised.
//! 4. [`merge`] joins the reports of the shards.
//!
//! The runner knows nothing of separation: `demix separate` passes a job that calls
//! [`crate::separate::separate_file`], and `demix inspect` one that calls
//! [`crate::inspect::inspect_file`].

mod discover;
mod glob;
mod lock;
mod record;
mod report;
mod resume;
mod run;
mod shard;

pub use discover::{AUDIO_EXTENSIONS, DiscoverOptions, discover};
pub use glob::Glob;
pub use record::{RunInfo, peak_memory, record};
pub use report::{
    FORMAT, FileEntry, OutputFile, REPORT_FILE, Report, ReportPath, Status, Summary, merge,
    report_file_name,
};
pub use run::{CancelFlag, Counts, JobContext, JobOutput, Observer, RunOptions, RunSummary, run};
pub use shard::Shard;

use std::path::PathBuf;

/// An error of the batch machinery itself (a failing file is not one: it is an entry of the
/// report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A `--glob` pattern that does not parse.
    #[error("invalid glob '{pattern}': {reason}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--shard` that does not parse or is out of range.
    #[error("invalid shard: {0}")]
    Shard(String),
    /// A report that cannot be read or merged.
    #[error("report {path}: {reason}")]
    Report {
        /// The report file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Another run is writing the same report.
    #[error(
        "{} is being written by another demix run{}; wait for it to end, or use another \
         output folder or --shard",
        report.display(),
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default()
    )]
    Locked {
        /// The report.
        report: PathBuf,
        /// The process that holds its lock, when known.
        holder: Option<u32>,
    },
    /// Writing the report or creating the output folder failed.
    #[error(transparent)]
    Write(crate::Error),
}

/// One file of a batch (or a problem found while looking for files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Position in the plan before sharding.
    pub id: usize,
    /// The file to open, as found.
    pub input: PathBuf,
    /// Its path relative to the folder it was found in (its name, if it was given itself).
    pub relative: PathBuf,
    /// The folder of its outputs relative to the output folder: the relative path without
    /// extension, or empty for outputs written into the output folder itself (as `demix
    /// inspect` does for a single file). None for a problem that has no output (a missing
    /// argument, a folder).
    pub output: Option<PathBuf>,
    /// Why it cannot be processed, if it cannot.
    pub problem: Option<String>,
    /// The status a problem is reported with: [`Status::Failed`], or [`Status::Skipped`] for
    /// what is left out on purpose.
    pub problem_status: Status,
}

impl Item {
    /// An item to process.
    pub fn new(input: PathBuf, relative: PathBuf, output: Option<PathBuf>) -> Item {
        Item {
            id: 0,
            input,
            relative,
            output,
            problem: None,
            problem_status: Status::Failed,
        }
    }

    fn with_output(mut self, output: Option<PathBuf>) -> Item {
        self.output = output;
        self
    }

    /// The key of its report entry: its output folder, or its input when it has none.
    pub fn key(&self) -> &std::path::Path {
        self.output.as_deref().unwrap_or(&self.input)
    }
}

/// The items of a batch, in order: the arguments' order, and within a folder the order of the
/// file names' bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The items.
    pub items: Vec<Item>,
}

impl Plan {
    /// Keeps the items of `shard`: those whose [`Item::key`] it [`contains`](Shard::contains).
    /// Problems are found before sharding, so every shard agrees on them.
    pub fn shard(mut self, shard: Shard) -> Plan {
        self.items.retain(|item| shard.contains(item.key()));
        self
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
