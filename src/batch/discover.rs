//! Finding the audio files of the inputs: files as given, folders walked recursively.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::glob::{Glob, selected};
use super::{Item, Plan, Report, Status, report_file_name};

/// File extensions (compared without regard to case) taken as audio when a folder is walked.
///
/// Video containers (`.mp4`, `.mkv`, `.webm`) are left out, so that a folder of videos is not
/// mistaken for audio; name such files on the command line to separate their sound.
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "aac", "adts", "aif", "aifc", "aiff", "bwf", "caf", "flac", "m4a", "m4b", "mka", "mp1", "mp2",
    "mp3", "oga", "ogg", "rf64", "w64", "wav", "wave",
];

/// How folders are walked.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Only files that pass these patterns are taken from folders (default: all audio files);
    /// files named on the command line are always taken.
    pub globs: Vec<Glob>,
    /// A folder never walked into: the output folder, when it lies inside an input folder
    /// (default: none).
    pub exclude: Option<PathBuf>,
}

/// Finds the files to process and the folder of each one's outputs, relative to the output
/// folder.
///
/// A file given as an argument is taken whatever its name, with outputs in `<file stem>`. A
/// folder is walked recursively, following symbolic links, in the order of the file names'
/// bytes; it yields the files with an audio extension ([`AUDIO_EXTENSIONS`]) and the files
/// without any extension whose first bytes are those of an audio format, that pass
/// `options.globs`, each with outputs in `<path relative to the folder, without extension>`.
/// Names starting with `.` are passed over, and so are `options.exclude` and the track folders
/// that the run reports in it list (so that an output folder inside, or equal to, an input
/// folder never feeds demix's own stems back in).
///
/// Nothing here fails: what cannot be walked or read becomes an item with a problem (a
/// failure, or a skip for a symbolic-link loop), and so does a file whose output folder is
/// that of an earlier file, or lies inside it, or holds it.
///
/// ```
/// use demix::batch::{discover, DiscoverOptions, Glob};
/// let plan = discover(&["samples".into()], &DiscoverOptions {
///     globs: vec![Glob::new("mix.*")?],
///     ..Default::default()
/// });
/// assert_eq!(plan.items.len(), 1);
/// assert_eq!(plan.items[0].output.as_deref(), Some("mix".as_ref()));
/// # Ok::<(), demix::batch::BatchError>(())
/// ```
pub fn discover(inputs: &[PathBuf], options: &DiscoverOptions) -> Plan {
    let exclude = options.exclude.as_ref().and_then(|p| p.canonicalize().ok());
    let own = exclude
        .as_deref()
        .map(own_track_folders)
        .unwrap_or_default();
    let mut items = Vec::new();
    for input in inputs {
        match fs::metadata(input) {
            Ok(meta) if meta.is_dir() => {
                walk(input, options, exclude.as_deref(), &own, &mut items);
            }
            Ok(meta) if meta.is_file() => items.push(Item::new(
                input.clone(),
                file_name(input),
                Some(PathBuf::from(stem(input))),
            )),
            Ok(meta) => items.push(problem(input, None, not_regular(&meta))),
            Err(e) => items.push(problem(input, None, unreadable(input, &e))),
        }
    }
    resolve_collisions(&mut items);
    for (id, item) in items.iter_mut().enumerate() {
        item.id = id;
    }
    Plan { items }
}

/// The track folders that the reports in the output folder `out` list (`demix-report.json`
/// and the shards'): demix's own outputs, never inputs, even when `out` is an input folder.
fn own_track_folders(out: &Path) -> HashSet<PathBuf> {
    let Ok(read) = fs::read_dir(out) else {
        return HashSet::new();
    };
    read.flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("demix-report") && name.ends_with(".json")
        })
        .filter_map(|path| Report::load(&path).ok())
        .flat_map(|report| report.files)
        .filter_map(|entry| entry.output)
        .filter(|folder| !folder.as_path().as_os_str().is_empty())
        .filter_map(|folder| out.join(folder.as_path()).canonicalize().ok())
        .collect()
}

fn walk(
    root: &Path,
    options: &DiscoverOptions,
    exclude: Option<&Path>,
    own: &HashSet<PathBuf>,
    items: &mut Vec<Item>,
) {
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                return false;
            }
            if entry.file_type().is_dir()
                && (exclude.is_some() || !own.is_empty())
                && entry
                    .path()
                    .canonicalize()
                    .is_ok_and(|p| Some(p.as_path()) == exclude || own.contains(&p))
            {
                return false;
            }
            true
        });
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                if let Some(item) = walk_error(root, &e) {
                    items.push(item);
                }
                continue;
            }
        };
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        let kind = entry.file_type();
        if kind.is_dir() || !selected(&options.globs, &relative) {
            continue;
        }
        let output = Some(relative.with_extension(""));
        if kind.is_file() {
            if has_audio_extension(path) || (path.extension().is_none() && sniff_audio(path)) {
                items.push(Item::new(path.to_path_buf(), relative, output));
            }
        } else if has_audio_extension(path) {
            // A named pipe, socket or device with an audio name: opening it could block.
            let message = fs::metadata(path).map_or_else(|e| e.to_string(), |m| not_regular(&m));
            items.push(problem(path, Some(relative), message).with_output(output));
        }
    }
}

/// An item for a walk error: a loop is skipped, an unreadable folder or audio file fails, and
/// anything else (a dangling link without an audio name, say) is passed over.
fn walk_error(root: &Path, e: &walkdir::Error) -> Option<Item> {
    let path = e.path().unwrap_or(root);
    let relative = path.strip_prefix(root).ok().map(Path::to_path_buf);
    if let Some(ancestor) = e.loop_ancestor() {
        let mut item = problem(
            path,
            relative,
            format!(
                "symbolic link loop: it leads back to {}; not followed",
                ancestor.display()
            ),
        );
        item.problem_status = Status::Skipped;
        return Some(item);
    }
    let io = e.io_error();
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if !is_dir && !has_audio_extension(path) {
        return None;
    }
    let message = match io {
        Some(io) if is_dir => format!("cannot read folder: {io}"),
        Some(io) => unreadable(path, io),
        None => e.to_string(),
    };
    let output = if is_dir {
        None
    } else {
        relative.as_ref().map(|r| r.with_extension(""))
    };
    Some(problem(path, relative, message).with_output(output))
}

fn problem(path: &Path, relative: Option<PathBuf>, message: String) -> Item {
    let relative = relative.unwrap_or_else(|| file_name(path));
    let mut item = Item::new(path.to_path_buf(), relative, None);
    item.problem = Some(message);
    item.problem_status = Status::Failed;
    item
}

/// Why `path` cannot be opened: missing, a dangling or looping link, or the OS's word.
fn unreadable(path: &Path, e: &io::Error) -> String {
    let link = fs::read_link(path).ok();
    match (e.kind(), link) {
        (io::ErrorKind::NotFound, Some(target)) => {
            format!(
                "dangling symbolic link (to {}, which does not exist)",
                target.display()
            )
        }
        (io::ErrorKind::NotFound, None) => "no such file or folder".into(),
        (_, Some(_)) if e.raw_os_error() == Some(ELOOP) => {
            "symbolic link loop: the link leads back to itself".into()
        }
        _ => format!("cannot read: {e}"),
    }
}

/// `ELOOP` on Linux and the BSDs' values alike are not in std; Linux's is 40, macOS's 62.
#[cfg(target_os = "linux")]
const ELOOP: i32 = 40;
#[cfg(not(target_os = "linux"))]
const ELOOP: i32 = 62;

fn not_regular(meta: &fs::Metadata) -> String {
    #[cfg(unix)]
    let what = {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            "a named pipe"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() || t.is_char_device() {
            "a device"
        } else {
            "not a file"
        }
    };
    #[cfg(not(unix))]
    let what = {
        let _ = meta;
        "not a file"
    };
    format!("not a regular file ({what}); not opened")
}

fn file_name(path: &Path) -> PathBuf {
    path.file_name()
        .map_or_else(|| path.to_path_buf(), PathBuf::from)
}

/// The name of a file's output folder: its stem, as `separate_file` uses.
fn stem(path: &Path) -> &OsStr {
    path.file_stem().unwrap_or(OsStr::new("track"))
}

fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .and_then(OsStr::to_str)
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// Whether the file starts like a WAV, FLAC, AIFF, CAF, Ogg, MP3, ADTS, MP4 or Matroska file.
fn sniff_audio(path: &Path) -> bool {
    let mut head = [0u8; 12];
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    looks_like_audio(&head[..n])
}

pub(crate) fn looks_like_audio(head: &[u8]) -> bool {
    let at = |i: usize, magic: &[u8]| head.get(i..i + magic.len()) == Some(magic);
    (at(0, b"RIFF") || at(0, b"RF64") || at(0, b"BW64")) && at(8, b"WAVE")
        || at(0, b"fLaC")
        || at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC"))
        || at(0, b"caff")
        || at(0, b"OggS")
        || at(0, b"ID3")
        || at(4, b"ftyp")
        || at(0, &[0x1A, 0x45, 0xDF, 0xA3])
        || head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0
}

/// Fails every item whose output folder is that of an earlier item, lies inside one, holds
/// one, or is a report file's name; the earlier item keeps it.
fn resolve_collisions(items: &mut [Item]) {
    let mut owners: HashMap<PathBuf, usize> = HashMap::new();
    // Folders that hold an output folder, and an item whose output they hold.
    let mut holders: HashMap<PathBuf, usize> = HashMap::new();
    for i in 0..items.len() {
        let Some(output) = items[i].output.clone() else {
            continue;
        };
        if items[i].problem.is_some() {
            continue;
        }
        let name = |j: usize| items[j].input.display().to_string();
        let conflict = if let Some(&j) = owners.get(&output) {
            Some(format!(
                "its output folder {} is also that of {}; rename one of them",
                output.display(),
                name(j)
            ))
        } else if let Some(&j) = holders.get(&output) {
            Some(format!(
                "its output folder {} would hold that of {}; rename one of them",
                output.display(),
                name(j)
            ))
        } else if let Some(&j) = output.ancestors().skip(1).find_map(|a| owners.get(a)) {
            Some(format!(
                "its output folder {} would lie inside that of {}; rename one of them",
                output.display(),
                name(j)
            ))
        } else if output.parent() == Some(Path::new(""))
            && output
                .to_str()
                .is_some_and(|s| s == report_file_name(None) || s.starts_with("demix-report."))
        {
            Some(format!(
                "its output folder {} is the name of demix's report; rename it",
                output.display()
            ))
        } else {
            None
        };
        if let Some(message) = conflict {
            // The output folder is another item's: this one's report entry goes by its input.
            items[i].problem = Some(message);
            items[i].problem_status = Status::Failed;
            items[i].output = None;
            continue;
        }
        for ancestor in output.ancestors().skip(1) {
            if ancestor.as_os_str().is_empty() {
                break;
            }
            holders.entry(ancestor.to_path_buf()).or_insert(i);
        }
        owners.insert(output, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_of_audio_formats_are_recognised() {
        assert!(looks_like_audio(b"RIFF\x24\0\0\0WAVEfmt "));
        assert!(looks_like_audio(b"fLaC\0\0\0\x22"));
        assert!(looks_like_audio(b"FORM\0\0\0\0AIFF"));
        assert!(looks_like_audio(b"\0\0\0\x20ftypM4A "));
        assert!(looks_like_audio(b"ID3\x04"));
        assert!(!looks_like_audio(b"RIFF\x24\0\0\0AVI LIST"));
        assert!(!looks_like_audio(b"%PDF-1.7"));
        assert!(!looks_like_audio(b""));
    }
}
