//! `-` as the input of `demix separate`: standard input copied to a hidden file in the output
//! folder, since a separation reads its recording in several passes; removed at the end.

use std::fs;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use super::failure::Failure;
use demix::batch::{Item, Plan};

/// Standard input, copied.
pub(super) struct Spool {
    /// The hidden folder holding the copy.
    dir: PathBuf,
    /// The copy, `<dir>/<name>.stdin`, so that its file stem is the track's name.
    pub path: PathBuf,
}

impl Spool {
    /// Copies standard input into `out/.demix-stdin-<pid>/<name>.stdin`.
    ///
    /// # Errors
    /// A usage error for a bad `name` or a terminal on standard input; a failure when the
    /// copy cannot be written or standard input cannot be read.
    pub(super) fn from_stdin(out: &Path, name: &str) -> Result<Spool, Failure> {
        check_name(name)?;
        let stdin = io::stdin();
        if stdin.is_terminal() {
            return Err(Failure::usage(
                "- reads a WAV or FLAC stream from standard input, which is a terminal; pipe \
                 one into it (ffmpeg -i IN -f wav - | demix separate - -o OUT)",
            ));
        }
        let dir = out.join(format!(".demix-stdin-{}", std::process::id()));
        fs::create_dir_all(&dir)
            .map_err(|e| Failure::failed(format!("{}: cannot create: {e}", dir.display())))?;
        let spool = Spool {
            path: dir.join(format!("{name}.stdin")),
            dir,
        };
        let mut file = fs::File::create(&spool.path).map_err(|e| {
            Failure::failed(format!("{}: cannot create: {e}", spool.path.display()))
        })?;
        io::copy(&mut stdin.lock(), &mut file).map_err(|e| {
            Failure::failed(format!(
                "-: cannot copy standard input to {}: {e}",
                spool.path.display()
            ))
        })?;
        Ok(spool)
    }

    /// The plan of a run on standard input: one item, `-`, written to `OUT/<name>`.
    pub(super) fn plan(name: &str) -> Plan {
        Plan {
            items: vec![Item::new("-".into(), "-".into(), Some(name.into()))],
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A track name is one plain file name: not empty, no `/` or `\`, not hidden.
fn check_name(name: &str) -> Result<(), Failure> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
        return Err(Failure::usage(format!(
            "--name '{name}': give a plain file name, not empty, without / and not starting \
             with ."
        )));
    }
    Ok(())
}
