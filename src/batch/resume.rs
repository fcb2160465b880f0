//! Resume: whether the outputs a report lists for a file are complete for this run.

use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde_json::Value;

use super::{FileEntry, Item, Status};

/// Size and modification time (nanoseconds since 1970) of a file.
pub(super) fn input_identity(path: &Path) -> Option<(u64, u64)> {
    let meta = fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), u64::try_from(modified.as_nanos()).ok()?))
}

/// Why the outputs `entry` lists for `item` are not complete for a run with `params` into
/// `out_dir`, if they are not; `Ok(())` when they are (see [`super::run`]).
pub(super) fn incomplete(
    entry: &FileEntry,
    item: &Item,
    params: &Value,
    out_dir: &Path,
) -> Result<(), &'static str> {
    if entry.status != Status::Ok || entry.outputs.is_empty() {
        return Err("");
    }
    if entry.params != *params {
        return Err("its existing outputs were made with other parameters");
    }
    let same_input = input_identity(&item.input).is_some_and(|(size, modified)| {
        entry.input_size == Some(size) && entry.input_modified_ns == Some(modified)
    });
    if !same_input {
        return Err("the input changed after its existing outputs were made");
    }
    let intact = entry.outputs.iter().all(|o| {
        fs::metadata(out_dir.join(o.path.as_path()))
            .is_ok_and(|m| m.is_file() && m.len() == o.bytes)
    });
    if !intact {
        return Err("some of its existing outputs are missing or changed");
    }
    Ok(())
}
