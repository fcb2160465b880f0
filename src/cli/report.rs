//! `demix report merge`: one run report from the reports of shards or runs.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use super::args::MergeArgs;
use super::failure::Failure;
use super::{Output, same_file};
use demix::batch::{self, Report};

/// `demix report merge`: one report from many, written atomically.
pub(super) fn run_merge(args: &MergeArgs, out: &Output) -> Result<ExitCode, Failure> {
    let target = args.out.display();
    if args.reports.iter().any(|r| same_file(r, &args.out)) {
        return Err(Failure::usage(format!(
            "-o {target}: is one of the reports being merged; choose another file"
        )));
    }
    if fs::symlink_metadata(&args.out).is_ok() && !args.force {
        return Err(Failure::failed(format!(
            "{target}: already exists; use --force to replace it"
        )));
    }
    let mut reports = Vec::new();
    for path in &args.reports {
        let report = Report::load(path).map_err(|e| Failure::failed(e.to_string()))?;
        reports.push((path.display().to_string(), report));
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
    let mut merged = batch::merge(&reports).map_err(|e| Failure::failed(e.to_string()))?;
    merged
        .save(&args.out)
        .map_err(|e| Failure::failed(e.to_string()))?;
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
    Ok(ExitCode::SUCCESS)
}
