//! Files and folders written whole or not at all: to a hidden temporary name in the same
//! folder, renamed into place when complete, removed on failure. Also: [`Staging`], the
//! temporary folder of a track that is removed unless finished; [`remove_stale_temps`], which
//! clears what a killed run left; [`missing_dirs`], the folders a write would create; and
//! [`check_destination`] and [`move_into_place`], which put a finished output folder in place.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The hidden name `.<name>.demix-<what>-<process id>`, unique to this process, for work in
/// progress on `name` (`what` is `tmp` for what is being written, `old` for what is being
/// replaced).
pub(crate) fn hidden_name(name: &OsStr, what: &str) -> OsString {
    let mut hidden = hidden_prefix(name, what);
    hidden.push(std::process::id().to_string());
    hidden
}

/// `.<name>.demix-<what>-`: [`hidden_name`] without the process id.
fn hidden_prefix(name: &OsStr, what: &str) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(format!(".demix-{what}-"));
    prefix
}

/// The folders among `dir` and its parents that do not exist yet, deepest first: what
/// `create_dir_all(dir)` would create.
pub(crate) fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// A hidden temporary folder in which an output folder `name` of `parent` is written whole,
/// before it is renamed into place. Until [`Staging::finish`], dropping it (on an error, a
/// panic, or a cancelled batch job unwinding) removes the temporary folder, the `extra_file`
/// if one is set, and the folders made for `parent`.
pub(crate) struct Staging {
    /// The temporary folder.
    pub(crate) tmp_dir: PathBuf,
    /// A file written outside the folder, removed with it.
    pub(crate) extra_file: Option<PathBuf>,
    /// Folders that did not exist before, deepest first.
    created: Vec<PathBuf>,
    armed: bool,
}

impl Staging {
    /// Creates `parent` (and its missing parents) and the temporary folder for `name` in it,
    /// after removing what killed runs left there for `name`.
    ///
    /// # Errors
    /// [`Error::Write`] naming the folder that could not be created.
    pub(crate) fn new(parent: &Path, name: &OsStr) -> Result<Staging> {
        let created = missing_dirs(parent);
        remove_stale_temps(parent, name);
        let staging = Staging {
            tmp_dir: parent.join(hidden_name(name, "tmp")),
            extra_file: None,
            created,
            armed: true,
        };
        fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
        fs::create_dir(&staging.tmp_dir).map_err(|e| Error::write(&staging.tmp_dir, e))?;
        Ok(staging)
    }

    /// Keeps everything: the output is in place.
    pub(crate) fn finish(mut self) {
        self.armed = false;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(&self.tmp_dir);
            if let Some(file) = &self.extra_file {
                let _ = fs::remove_file(file);
            }
            for dir in &self.created {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

/// A hidden temporary name next to `path`, unique to this process.
pub(crate) fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or(OsStr::new("out"));
    path.with_file_name(hidden_name(name, "tmp"))
}

/// Removes the temporary files and folders that runs killed while writing `name` in `dir` left
/// behind (`.<name>.demix-tmp-<id>` of a process that no longer exists), so that a rerun
/// reclaims their space. Only on Linux, where a process's existence can be checked; anything
/// that cannot be read or removed is left as it is.
pub(crate) fn remove_stale_temps(dir: &Path, name: &OsStr) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = hidden_prefix(name, "tmp");
    let prefix = prefix.as_encoded_bytes();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(id) = file_name.as_encoded_bytes().strip_prefix(prefix) else {
            continue;
        };
        let Some(id) = std::str::from_utf8(id)
            .ok()
            .and_then(|id| id.parse::<u32>().ok())
        else {
            continue;
        };
        if id == std::process::id() || process_may_exist(id) {
            continue;
        }
        let path = entry.path();
        let _ = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
    }
}

/// Whether a process with this id may be running (always, where that cannot be checked).
pub(crate) fn process_may_exist(id: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(id.to_string()).exists()
    } else {
        true
    }
}

/// Creates `path` with the contents `write` produces, atomically.
///
/// # Errors
/// [`Error::Write`] naming `path` if writing or renaming fails.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>,
) -> Result<()> {
    let tmp = temp_name(path);
    let result = (|| {
        let mut file = BufWriter::new(fs::File::create(&tmp)?);
        write(&mut file)?;
        file.flush()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::write(path, e)
    })
}

/// Refuses a track folder that exists (without `force`) or that holds the input.
pub(crate) fn check_destination(input: &Path, track_dir: &Path, force: bool) -> Result<()> {
    if !track_dir.exists() {
        return Ok(());
    }
    let inside = match (input.canonicalize(), track_dir.canonicalize()) {
        (Ok(i), Ok(t)) => i.starts_with(t),
        _ => false,
    };
    if inside {
        return Err(Error::OutputIsInput(track_dir.to_path_buf()));
    }
    if !force {
        return Err(Error::OutputExists(track_dir.to_path_buf()));
    }
    Ok(())
}

/// Renames the finished temporary folder to `track_dir`, replacing an existing one.
pub(crate) fn move_into_place(tmp_dir: &Path, track_dir: &Path, stem: &OsString) -> Result<()> {
    if !track_dir.exists() {
        return fs::rename(tmp_dir, track_dir).map_err(|e| Error::write(track_dir, e));
    }
    let old = track_dir.with_file_name(hidden_name(stem, "old"));
    fs::rename(track_dir, &old).map_err(|e| Error::write(track_dir, e))?;
    if let Err(e) = fs::rename(tmp_dir, track_dir) {
        let _ = fs::rename(&old, track_dir);
        return Err(Error::write(track_dir, e));
    }
    // What is replaced may be a file (or a link) that happens to have the track folder's name.
    let removed = match fs::symlink_metadata(&old) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&old),
        _ => fs::remove_file(&old),
    };
    removed.map_err(|e| Error::write(&old, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn only_the_temporaries_of_ended_processes_are_removed() {
        let dir = std::env::temp_dir().join(format!("demix-stale-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Process ids stop at 2^22 on Linux, so 4000000000 has never run.
        let dead = dir.join(".mix.demix-tmp-4000000000");
        fs::create_dir_all(dead.join("inner")).unwrap();
        fs::write(dead.join("inner/source1.wav"), b"half").unwrap();
        let dead_file = dir.join(".mix.demix-tmp-4000000001");
        fs::write(&dead_file, b"half").unwrap();
        let keep = [
            dir.join(format!(".mix.demix-tmp-{}", std::process::id())), // this process
            dir.join(".mix.demix-tmp-1"),                               // init, running
            dir.join(".mix2.demix-tmp-4000000000"),                     // another name
            dir.join(".mix.demix-old-4000000000"),                      // not a temporary
            dir.join(".mix.demix-tmp-x"),                               // not ours
            dir.join("mix"),
        ];
        for path in &keep {
            fs::create_dir_all(path).unwrap();
        }
        remove_stale_temps(&dir, OsStr::new("mix"));
        assert!(!dead.exists() && !dead_file.exists());
        for path in &keep {
            assert!(path.exists(), "{}", path.display());
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
