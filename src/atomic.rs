//! Files written whole or not at all: to a hidden temporary name in the same folder, renamed
//! into place when complete, removed on failure.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A hidden temporary name next to `path`, unique to this process.
pub(crate) fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.demix-tmp-{}", std::process::id()))
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
