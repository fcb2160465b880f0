//! The run report, `OUT/demix-report.json`: one entry per file with its status, parameters,
//! results and outputs; read back to resume a run, merged across shards.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::BatchError;
use crate::formats::excerpt;

/// The file name of the report of an unsharded run, in the output folder.
pub const REPORT_FILE: &str = "demix-report.json";

/// The value of [`Report::format`]: the name and version of this layout.
pub const FORMAT: &str = "demix-report/1";

/// The file name of the report of one shard: `demix-report.shard-I-of-N.json`, so that shards
/// writing into one shared output folder never overwrite each other's report.
///
/// ```
/// use demix::batch::{report_file_name, Shard};
/// assert_eq!(report_file_name(None), "demix-report.json");
/// assert_eq!(report_file_name(Some(Shard::new(2, 8)?)), "demix-report.shard-2-of-8.json");
/// # Ok::<(), demix::batch::BatchError>(())
/// ```
pub fn report_file_name(shard: Option<super::Shard>) -> String {
    match shard {
        None => REPORT_FILE.to_string(),
        Some(s) => format!("demix-report.shard-{}-of-{}.json", s.index(), s.count()),
    }
}

/// What is wrong with the shape of a report, in words: the first field that is not what
/// demix writes there.
fn shape_problem(value: &Value) -> Option<String> {
    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "true or false",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }
    }
    let files = match value.get("files") {
        None => return Some("it has no \"files\" list".into()),
        Some(Value::Array(files)) => files,
        Some(other) => return Some(format!("\"files\" is {}, not a list", kind(other))),
    };
    const STATUSES: [&str; 5] = ["ok", "failed", "interrupted", "pending", "skipped"];
    for (i, entry) in files.iter().enumerate() {
        let n = i + 1;
        let Some(fields) = entry.as_object() else {
            return Some(format!(
                "entry {n} of \"files\" is {}, not an object",
                kind(entry)
            ));
        };
        if !fields.contains_key("input") {
            return Some(format!("entry {n} of \"files\" has no \"input\""));
        }
        match fields.get("status").and_then(Value::as_str) {
            Some(status) if STATUSES.contains(&status) => {}
            Some(status) => {
                return Some(format!(
                    "entry {n} of \"files\" has status \"{}\", not one of {}",
                    excerpt(status, 40),
                    STATUSES.join(", ")
                ));
            }
            None => return Some(format!("entry {n} of \"files\" has no \"status\"")),
        }
    }
    None
}

/// A run report./// A run report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// The program that wrote it, e.g. `demix 0.1.0`.
    pub tool: String,
    /// The subcommand, e.g. `separate`.
    pub command: String,
    /// The shard this report covers (`I/N`), if the run was sharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The reports this one was merged from, if it is a merge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// When it was last written (RFC 3339, UTC).
    pub updated: String,
    /// Counts of the entries by status.
    pub summary: Summary,
    /// One entry per file (and per folder that could not be walked).
    pub files: Vec<FileEntry>,
    /// What the last run took, written when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<super::RunInfo>,
}

/// Counts of a report's entries by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// All entries.
    pub total: usize,
    /// Entries whose outputs are complete.
    pub ok: usize,
    /// Entries that failed.
    pub failed: usize,
    /// Entries stopped by Ctrl-C or SIGTERM.
    pub interrupted: usize,
    /// Entries not started yet (or never, because the run was stopped).
    pub pending: usize,
    /// Entries left out on purpose, such as symbolic-link loops.
    pub skipped: usize,
}

impl Summary {
    /// Counts `files` by status.
    pub fn of(files: &[FileEntry]) -> Summary {
        let mut s = Summary {
            total: files.len(),
            ..Summary::default()
        };
        for file in files {
            *match file.status {
                Status::Ok => &mut s.ok,
                Status::Failed => &mut s.failed,
                Status::Interrupted => &mut s.interrupted,
                Status::Pending => &mut s.pending,
                Status::Skipped => &mut s.skipped,
            } += 1;
        }
        s
    }
}

/// What became of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Processed; its outputs are complete.
    Ok,
    /// Failed; `error` says why. No output of it was left behind.
    Failed,
    /// Stopped by Ctrl-C or SIGTERM before it finished; no output of it was left behind.
    Interrupted,
    /// Not started yet.
    Pending,
    /// Left out on purpose; `error` says why (a symbolic-link loop, say).
    Skipped,
}

/// One file of a report.
///
/// Paths are relative to the folder that holds the report (the output folder), except
/// `input`, which is as it was found (relative to where demix ran, if given so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The input file.
    pub input: ReportPath,
    /// The folder of its outputs, `<relative dir>/<file stem>`; none for an entry that never
    /// had one (a folder that could not be walked, a file that does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ReportPath>,
    /// What became of it.
    pub status: Status,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Size of the input in bytes when it was processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<u64>,
    /// Modification time of the input when it was processed, in nanoseconds since 1970 (an
    /// integer, which every JSON tool keeps exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_modified_ns: Option<u64>,
    /// The parameters it was (or is to be) processed with, seed included.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
    /// Wall-clock seconds it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// When it finished (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The files written, with their sizes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputFile>,
    /// Scheduled by a run asked to replace existing outputs (`--force`) and not finished: a
    /// rerun with the same parameters finishes the replacement without `--force`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
    /// What the job reports besides (for `separate`: iterations, final cost, ...).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl FileEntry {
    /// An entry for `input` with this status and nothing else.
    pub fn new(input: &Path, output: Option<&Path>, status: Status) -> FileEntry {
        FileEntry {
            input: ReportPath::from(input),
            output: output.map(ReportPath::from),
            status,
            error: None,
            input_size: None,
            input_modified_ns: None,
            params: Value::Null,
            seconds: None,
            finished: None,
            outputs: Vec::new(),
            replace: false,
            details: Map::new(),
        }
    }

    /// The key that identifies the file across runs and shards: its output folder, or for an
    /// entry without one, its input.
    pub fn key(&self) -> &Path {
        self.output.as_ref().unwrap_or(&self.input).as_path()
    }
}

/// One output file of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Relative to the report's folder.
    pub path: ReportPath,
    /// Its size in bytes when written.
    pub bytes: u64,
}

/// A path in a report: a JSON string when it is valid UTF-8, otherwise an object with a
/// readable form and the exact bytes in hex (`{"lossy": "caf\u{fffd}", "hex": "636166e9"}`),
/// so that every file name survives the round trip.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "PathRepr", into = "PathRepr")]
pub struct ReportPath(PathBuf);

impl ReportPath {
    /// The path.
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl From<&Path> for ReportPath {
    fn from(path: &Path) -> ReportPath {
        ReportPath(path.to_path_buf())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PathRepr {
    Text(String),
    Bytes { lossy: String, hex: String },
}

impl From<ReportPath> for PathRepr {
    fn from(path: ReportPath) -> PathRepr {
        match path.0.into_os_string().into_string() {
            Ok(text) => PathRepr::Text(text),
            Err(os) => {
                let lossy = os.to_string_lossy().into_owned();
                #[cfg(unix)]
                let bytes = std::os::unix::ffi::OsStrExt::as_bytes(os.as_os_str()).to_vec();
                #[cfg(not(unix))]
                let bytes = lossy.as_bytes().to_vec();
                let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
                PathRepr::Bytes { lossy, hex }
            }
        }
    }
}

impl TryFrom<PathRepr> for ReportPath {
    type Error = String;

    fn try_from(repr: PathRepr) -> Result<ReportPath, String> {
        match repr {
            PathRepr::Text(text) => Ok(ReportPath(PathBuf::from(text))),
            PathRepr::Bytes { lossy, hex } => {
                if hex.len() % 2 != 0 {
                    return Err(format!("odd-length hex path {hex:?}"));
                }
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|_| format!("invalid hex path {hex:?}"))?;
                #[cfg(unix)]
                {
                    let _ = lossy;
                    use std::os::unix::ffi::OsStringExt;
                    Ok(ReportPath(PathBuf::from(std::ffi::OsString::from_vec(
                        bytes,
                    ))))
                }
                #[cfg(not(unix))]
                {
                    let _ = bytes;
                    Ok(ReportPath(PathBuf::from(lossy)))
                }
            }
        }
    }
}

impl Report {
    /// Where each file's entry is in [`Self::files`], by its [`FileEntry::key`].
    pub(crate) fn index_by_key(&self) -> std::collections::HashMap<PathBuf, usize> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key().to_path_buf(), i))
            .collect()
    }

    /// An empty report of `command`.
    pub fn new(command: &str, shard: Option<super::Shard>) -> Report {
        Report {
            format: FORMAT.to_string(),
            tool: format!("demix {}", env!("CARGO_PKG_VERSION")),
            command: command.to_string(),
            shard: shard.map(|s| s.to_string()),
            merged_from: Vec::new(),
            updated: timestamp(SystemTime::now()),
            summary: Summary::default(),
            files: Vec::new(),
            run: None,
        }
    }

    /// Reads a report.
    ///
    /// # Errors
    /// [`BatchError::Report`] if the file cannot be read or is not a demix report of this
    /// format.
    pub fn load(path: &Path) -> Result<Report, BatchError> {
        let error = |reason: String| BatchError::Report {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = fs::read(path).map_err(|e| error(e.to_string()))?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| error(format!("not JSON: {e}")))?;
        match value.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                let other = excerpt(other, 40);
                return Err(error(format!("format '{other}', expected '{FORMAT}'")));
            }
            None => return Err(error("not a demix report (no \"format\" field)".into())),
        }
        if let Some(problem) = shape_problem(&value) {
            return Err(error(problem));
        }
        // serde's message may quote a value of the file, of any length.
        serde_json::from_value(value).map_err(|e| {
            let e = excerpt(&e.to_string(), 200);
            error(format!("not a report this version of demix can read ({e})"))
        })
    }

    /// Writes the report to `path` atomically (to a temporary file renamed into place), with
    /// the summary and the time of writing brought up to date.
    ///
    /// # Errors
    /// [`BatchError::Write`] if writing fails; the previous file at `path` is then untouched.
    pub fn save(&mut self, path: &Path) -> Result<(), BatchError> {
        self.summary = Summary::of(&self.files);
        self.updated = timestamp(SystemTime::now());
        crate::atomic::write_atomically(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
            std::io::Write::write_all(w, b"\n")
        })
        .map_err(BatchError::Write)
    }

    /// The entry whose [`FileEntry::key`] is `key`.
    pub fn entry(&self, key: &Path) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.key() == key)
    }
}

/// Merges the reports of the shards of one run (or of several runs into one output folder)
/// into one report: one entry per file, preferring a complete one, then a failed, an
/// interrupted, a skipped and a pending one, and among equals the one that finished last.
///
/// The entries' paths are relative to the folder of the report they come from, so the reports
/// should all describe the same output folder (shards writing into one shared folder, or
/// shards' output folders copied together), and the merged report belong in it.
///
/// # Errors
/// [`BatchError::Report`] if the reports are of different commands.
///
/// ```
/// use std::path::Path;
/// use demix::batch::{merge, FileEntry, Report, Shard, Status};
/// let mut a = Report::new("separate", Some(Shard::new(0, 2)?));
/// a.files.push(FileEntry::new(Path::new("in/x.wav"), Some(Path::new("x")), Status::Ok));
/// let mut b = Report::new("separate", Some(Shard::new(1, 2)?));
/// b.files.push(FileEntry::new(Path::new("in/y.wav"), Some(Path::new("y")), Status::Failed));
/// let merged = merge(&[("a.json".into(), a), ("b.json".into(), b)])?;
/// assert_eq!((merged.summary.total, merged.summary.ok, merged.summary.failed), (2, 1, 1));
/// # Ok::<(), demix::batch::BatchError>(())
/// ```
pub fn merge(reports: &[(String, Report)]) -> Result<Report, BatchError> {
    let Some((_, first)) = reports.first() else {
        return Ok(Report::new("separate", None));
    };
    let mut merged = Report::new(&first.command, None);
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    for (name, report) in reports {
        if report.command != first.command {
            return Err(BatchError::Report {
                path: PathBuf::from(name),
                reason: format!(
                    "a report of '{}', the others are of '{}'",
                    report.command, first.command
                ),
            });
        }
        merged.merged_from.push(name.clone());
        for entry in &report.files {
            match index.get(entry.key()) {
                Some(&i) => {
                    if preference(entry) > preference(&merged.files[i]) {
                        merged.files[i] = entry.clone();
                    }
                }
                None => {
                    index.insert(entry.key().to_path_buf(), merged.files.len());
                    merged.files.push(entry.clone());
                }
            }
        }
    }
    merged.files.sort_by(|a, b| a.key().cmp(b.key()));
    merged.summary = Summary::of(&merged.files);
    Ok(merged)
}

/// Which of two entries of one file a merge keeps: the greater.
fn preference(entry: &FileEntry) -> (u8, &str) {
    let rank = match entry.status {
        Status::Ok => 4,
        Status::Failed => 3,
        Status::Interrupted => 2,
        Status::Skipped => 1,
        Status::Pending => 0,
    };
    // RFC 3339 UTC timestamps of one layout sort as text.
    (rank, entry.finished.as_deref().unwrap_or(""))
}

/// `time` as RFC 3339 in UTC with second precision, e.g. `2026-05-20T14:03:07Z`.
pub(crate) fn timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |secs| timestamp(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_779_285_787), "2026-05-20T14:03:07Z");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_survive_the_round_trip() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"caf\xe9 1/x.wav"));
        let json = serde_json::to_string(&ReportPath::from(path)).unwrap();
        assert_eq!(
            json,
            r#"{"lossy":"caf� 1/x.wav","hex":"636166e920312f782e776176"}"#
        );
        let back: ReportPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_path(), path);
        let text: ReportPath = serde_json::from_str(r#""a b/c.wav""#).unwrap();
        assert_eq!(text.as_path(), Path::new("a b/c.wav"));
    }

    #[test]
    fn merge_prefers_complete_entries_then_the_latest() {
        let entry = |status, finished: &str| {
            let mut e = FileEntry::new(Path::new("in/x.wav"), Some(Path::new("x")), status);
            e.finished = Some(finished.to_string());
            e
        };
        let report = |files| Report {
            files,
            ..Report::new("separate", None)
        };
        let a = report(vec![entry(Status::Failed, "2026-01-02T00:00:00Z")]);
        let b = report(vec![entry(Status::Ok, "2026-01-01T00:00:00Z")]);
        let c = report(vec![entry(Status::Failed, "2026-01-03T00:00:00Z")]);
        let merged = merge(&[("a".into(), a.clone()), ("b".into(), b), ("c".into(), c)]).unwrap();
        assert_eq!(merged.files.len(), 1);
        assert_eq!(merged.files[0].status, Status::Ok);
        let other = Report::new("inspect", None);
        assert!(merge(&[("a".into(), a), ("o".into(), other)]).is_err());
    }
}
