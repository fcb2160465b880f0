//! The report of a run that keeps none while it runs (a single file), and what every run
//! adds to its report when it ends: its time, threads and peak memory.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::lock::ReportLock;
use super::{BatchError, FileEntry, Report};

/// What a whole run took, recorded in its report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    /// Files processed at once.
    pub jobs: usize,
    /// Threads of each file's kernels.
    pub threads: usize,
    /// The largest resident memory of the process until the end of the run, in bytes (Linux's
    /// `VmHWM`); none where the system does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

/// The largest resident memory of this process so far, in bytes: `VmHWM` of
/// `/proc/self/status` on Linux, `None` elsewhere.
pub fn peak_memory() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Records `entries` and `run` in the report at `path` of `command`: the report is read if it
/// exists (its entries for other files are kept, those of the same files replaced), or made,
/// and written atomically, under the report's lock. Returns the report as written.
///
/// # Errors
/// [`BatchError::Report`] if an existing report cannot be read or is of another command,
/// [`BatchError::Locked`] while another run writes it, [`BatchError::Write`].
///
/// ```
/// use std::path::Path;
/// use demix::batch::{record, FileEntry, RunInfo, Status};
/// let out = tempfile::tempdir()?;
/// let path = out.path().join("demix-report.json");
/// let entry = FileEntry::new(Path::new("song.wav"), Some(Path::new("song")), Status::Ok);
/// let run = RunInfo { seconds: 1.5, jobs: 1, threads: 2, peak_memory_bytes: Some(1 << 20) };
/// let report = record(&path, "separate", &[entry], run)?;
/// assert_eq!((report.summary.ok, report.run), (1, Some(run)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn record(
    path: &Path,
    command: &str,
    entries: &[FileEntry],
    run: RunInfo,
) -> Result<Report, BatchError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| BatchError::Write(crate::Error::write(dir, e)))?;
    }
    let _lock = ReportLock::acquire(path)?;
    let mut report = match fs::symlink_metadata(path) {
        Ok(_) => {
            let old = Report::load(path)?;
            if old.command != command {
                return Err(BatchError::Report {
                    path: path.to_path_buf(),
                    reason: format!(
                        "it is the report of 'demix {}'; use another output folder",
                        old.command
                    ),
                });
            }
            old
        }
        Err(_) => Report::new(command, None),
    };
    let mut index = report.index_by_key();
    for entry in entries {
        match index.get(entry.key()) {
            Some(&i) => report.files[i] = entry.clone(),
            None => {
                index.insert(entry.key().to_path_buf(), report.files.len());
                report.files.push(entry.clone());
            }
        }
    }
    report.run = Some(run);
    report.save(path)?;
    Ok(report)
}
