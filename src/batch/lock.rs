//! One run at a time per report: a hidden lock file beside the report names the process that
//! writes it, so that a second run into the same output folder (and shard) refuses instead of
//! overwriting the first one's report.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::BatchError;
use crate::atomic::process_may_exist;

/// The lock of one report, released (its file removed) when dropped.
#[derive(Debug)]
pub(crate) struct ReportLock {
    path: PathBuf,
}

impl ReportLock {
    /// Takes the lock of `report` (`.<report file name>.lock` beside it). A lock left by a
    /// process that no longer exists (killed) is taken over.
    ///
    /// # Errors
    /// [`BatchError::Locked`] naming the process that holds it; [`BatchError::Write`] if the
    /// lock file cannot be made.
    pub(crate) fn acquire(report: &Path) -> Result<ReportLock, BatchError> {
        let name = report.file_name().unwrap_or_default().to_string_lossy();
        let path = report.with_file_name(format!(".{name}.lock"));
        let mut holder = None;
        // Twice: once more after removing a stale lock.
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id())
                        .map_err(|e| BatchError::Write(crate::Error::write(&path, e)))?;
                    return Ok(ReportLock { path });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    holder = fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if !process_may_exist(pid) => {
                            let _ = fs::remove_file(&path);
                        }
                        _ => break,
                    }
                }
                Err(e) => return Err(BatchError::Write(crate::Error::write(&path, e))),
            }
        }
        Err(BatchError::Locked {
            report: report.to_path_buf(),
            holder,
        })
    }
}

impl Drop for ReportLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
