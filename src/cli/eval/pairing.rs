//! Which estimate is scored against which reference: two files, or the WAV and FLAC files of
//! two folders matched by name (or listed, with `--permute`).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use demix::sources::OTHER;

use super::super::failure::Failure;
use super::failed;

/// Extensions (any case) of the files a folder is read for.
const EXTENSIONS: [&str; 2] = ["wav", "flac"];

/// The files of one evaluation: `estimates[i]` belongs to `references[i]` (by name), or is just
/// the `i`-th estimate (with `--permute`).
pub(super) struct Files {
    /// The sources' names: the references' file names without extension.
    pub names: Vec<String>,
    /// The reference files.
    pub references: Vec<PathBuf>,
    /// The estimate files.
    pub estimates: Vec<PathBuf>,
    /// Estimates left out: an `other` file (the free components `demix separate` writes beside
    /// named stems) when no reference has that name.
    pub left_out: Vec<PathBuf>,
}

/// A file's name without its extension.
pub(super) fn stem(path: &Path) -> String {
    path.file_stem()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// The WAV and FLAC files of a folder, sorted by name; two of one name are refused.
fn audio_files(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries = fs::read_dir(dir).map_err(|e| failed(dir, format!("cannot read: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| failed(dir, format!("cannot read: {e}")))?
            .path();
        let is_audio = path
            .extension()
            .and_then(OsStr::to_str)
            .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)));
        if is_audio && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(failed(dir, "no WAV files and no FLAC files in this folder"));
    }
    for pair in files.windows(2) {
        if stem(&pair[0]) == stem(&pair[1]) {
            return Err(failed(
                &pair[1],
                format!(
                    "{} has the same name; files are matched by name, so keep one of them",
                    pair[0].display()
                ),
            ));
        }
    }
    Ok(files)
}

/// Two files, or the audio files of two folders matched by name (or listed, with `permute`).
pub(super) fn pair_files(
    reference: &Path,
    estimate: &Path,
    permute: bool,
) -> Result<Files, Failure> {
    for path in [reference, estimate] {
        if !path.exists() {
            return Err(failed(path, "no such file or folder"));
        }
    }
    match (reference.is_dir(), estimate.is_dir()) {
        (false, false) => Ok(Files {
            names: vec![stem(reference)],
            references: vec![reference.to_path_buf()],
            estimates: vec![estimate.to_path_buf()],
            left_out: Vec::new(),
        }),
        (true, true) => pair_folders(reference, estimate, permute),
        (true, false) => Err(failed(
            estimate,
            format!(
                "is a file but the reference {} is a folder; give two folders or two files",
                reference.display()
            ),
        )),
        (false, true) => Err(failed(
            estimate,
            format!(
                "is a folder but the reference {} is a file; give two folders or two files",
                reference.display()
            ),
        )),
    }
}

/// The audio files of two folders matched by name (or listed, with `permute`).
fn pair_folders(reference: &Path, estimate: &Path, permute: bool) -> Result<Files, Failure> {
    let references = audio_files(reference)?;
    let names: Vec<String> = references.iter().map(|p| stem(p)).collect();
    let (left_out, listed): (Vec<PathBuf>, Vec<PathBuf>) = audio_files(estimate)?
        .into_iter()
        .partition(|e| stem(e) == OTHER && !names.iter().any(|n| n == OTHER));
    let estimates = if permute {
        if listed.len() != references.len() {
            return Err(failed(
                estimate,
                format!(
                    "{} estimates for {} references in {}",
                    listed.len(),
                    references.len(),
                    reference.display()
                ),
            ));
        }
        listed
    } else {
        let mut matched = Vec::new();
        for (r, name) in references.iter().zip(&names) {
            let Some(e) = listed.iter().find(|e| stem(e) == *name) else {
                return Err(failed(
                    estimate.join(r.file_name().expect("a listed file")),
                    format!(
                        "missing: no WAV or FLAC estimate named {name} for the reference {}",
                        r.display()
                    ),
                ));
            };
            matched.push(e.clone());
        }
        if let Some(extra) = listed.iter().find(|e| !matched.contains(e)) {
            return Err(failed(
                extra,
                format!(
                    "no reference of this name in {} (files are matched by name; \
                     --permute matches them by score)",
                    reference.display()
                ),
            ));
        }
        matched
    };
    Ok(Files {
        names,
        references,
        estimates,
        left_out,
    })
}
