//! `--shard I/N`: a deterministic share of the files, for job arrays of a scheduler.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::BatchError;

/// Shard `index` of `count` (0-based, as `$SLURM_ARRAY_TASK_ID` and Kubernetes'
/// `$JOB_COMPLETION_INDEX` count).
///
/// A file belongs to the shard its output path (relative to the output folder) hashes to, so
/// the assignment is the same on every machine and for every run, and a file keeps its shard
/// when others are added to the archive. Every file belongs to exactly one shard.
///
/// ```
/// use demix::batch::Shard;
/// let shards: Vec<Shard> = (0..4).map(|i| format!("{i}/4").parse().unwrap()).collect();
/// let owners = shards.iter().filter(|s| s.contains("live/set 1".as_ref())).count();
/// assert_eq!(owners, 1);
/// assert!("4/4".parse::<Shard>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// [`BatchError::Shard`] unless `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, BatchError> {
        if index >= count {
            return Err(BatchError::Shard(format!(
                "the index must be below the count, counting from 0 (got {index}/{count})"
            )));
        }
        Ok(Shard { index, count })
    }

    /// The 0-based index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The number of shards.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether the file with output path `key` (relative to the output folder) is this shard's.
    pub fn contains(&self, key: &Path) -> bool {
        shard_of(key, self.count) == self.index
    }
}

impl FromStr for Shard {
    type Err = BatchError;

    fn from_str(s: &str) -> Result<Shard, BatchError> {
        let bad = || BatchError::Shard(format!("expected I/N such as 0/8, got '{s}'"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index = i.trim().parse().map_err(|_| bad())?;
        let count = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard of `key` among `count`: FNV-1a over the path's bytes, mixed by SplitMix64's
/// finaliser. Fixed forever: changing it would move files between shards of a running archive.
fn shard_of(key: &Path, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path_bytes(key) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    (hash % u64::from(count)) as u32
}

/// The bytes of a relative path with `/` between components, whatever the platform.
fn path_bytes(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, component) in path.components().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        #[cfg(unix)]
        out.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(
            component.as_os_str(),
        ));
        #[cfg(not(unix))]
        out.extend_from_slice(component.as_os_str().to_string_lossy().as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assignment_is_pinned() {
        // Changing the hash would move files of a running archive between shards.
        let got: Vec<u32> = ["a", "b/c", "live/set 1", "x/y/z"]
            .iter()
            .map(|k| shard_of(Path::new(k), 1000))
            .collect();
        assert_eq!(got, PINNED);
    }

    const PINNED: [u32; 4] = [736, 287, 732, 610];

    #[test]
    fn shards_are_roughly_even() {
        let n = 8;
        let mut counts = vec![0usize; n];
        for i in 0..8000 {
            counts
                [shard_of(Path::new(&format!("album {}/track {i}", i / 12)), n as u32) as usize] +=
                1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn malformed_shards_are_rejected() {
        for bad in ["", "1", "1/0", "3/3", "-1/3", "a/b", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?}");
        }
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard::new(2, 3).unwrap());
    }
}
