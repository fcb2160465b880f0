//! NumPy `.npy` and `.npz` files, so that templates, activations and spectrograms open in one
//! line of numpy (`np.load`).
//!
//! Arrays of `f32`, `f64` and `i64` are written in C order; strings as 0-d unicode arrays
//! (`'<U'`), which numpy reads back with `str(a)`. Reading accepts the same types in C or
//! Fortran order, and `.npz` archives stored or deflated (`np.savez`, `np.savez_compressed`).
//! Data is read as it arrives, never into a buffer sized by the header: a short file that
//! declares a huge shape is an error, not an allocation.
//!
//! Why not a crate (measured with ndarray-npy 0.10 and npyz 0.9): ndarray-npy has no string
//! type and allocates the declared shape first (a 216-byte file declaring 2^36 floats aborts
//! the process); npyz reads strings lazily, but its `npz` feature adds 43 crates (zip 0.6 with
//! bzip2 and zstd in C; 82 s of CPU to build) and without it still 11 (a pest parser for the
//! header dict; 27 s), and its element count wraps silently in release builds.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use super::excerpt;

/// One array of a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    /// 32-bit floats (`'<f4'`).
    F32(ArrayD<f32>),
    /// 64-bit floats (`'<f8'`).
    F64(ArrayD<f64>),
    /// 64-bit integers (`'<i8'`).
    I64(ArrayD<i64>),
    /// A 0-d unicode string (`'<Un'`).
    Str(String),
}

impl NpyArray {
    /// A scalar integer.
    pub fn scalar_i64(v: i64) -> NpyArray {
        NpyArray::I64(ArrayD::from_elem(IxDyn(&[]), v))
    }

    /// A scalar float.
    pub fn scalar_f64(v: f64) -> NpyArray {
        NpyArray::F64(ArrayD::from_elem(IxDyn(&[]), v))
    }

    /// The values as `f32` (converting `f64` and `i64`), or `None` for a string.
    pub fn to_f32(&self) -> Option<ArrayD<f32>> {
        match self {
            NpyArray::F32(a) => Some(a.clone()),
            NpyArray::F64(a) => Some(a.mapv(|v| v as f32)),
            NpyArray::I64(a) => Some(a.mapv(|v| v as f32)),
            NpyArray::Str(_) => None,
        }
    }

    /// The values as `f64`, or `None` for a string.
    pub fn to_f64(&self) -> Option<ArrayD<f64>> {
        match self {
            NpyArray::F32(a) => Some(a.mapv(f64::from)),
            NpyArray::F64(a) => Some(a.clone()),
            NpyArray::I64(a) => Some(a.mapv(|v| v as f64)),
            NpyArray::Str(_) => None,
        }
    }

    /// The single value of a one-element numeric array.
    pub fn scalar(&self) -> Option<f64> {
        let a = self.to_f64()?;
        (a.len() == 1).then(|| a.iter().next().copied().unwrap_or(f64::NAN))
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            NpyArray::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A malformed or unsupported `.npy` or `.npz` file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The bytes are not a `.npy` file this module understands.
    #[error("not a supported .npy file: {0}")]
    Format(String),
    /// The archive is not a readable zip file.
    #[error("not a readable .npz archive: {0}")]
    Zip(String),
}

/// Writes one array in `.npy` format.
///
/// # Errors
/// [`NpyError::Io`] if writing fails.
///
/// ```
/// use demix::formats::npy::{read_npy, write_npy, NpyArray};
/// let a = NpyArray::F32(ndarray::array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn());
/// let mut bytes = Vec::new();
/// write_npy(&mut bytes, &a)?;
/// assert_eq!(read_npy(&mut bytes.as_slice())?, a);
/// # Ok::<(), demix::formats::npy::NpyError>(())
/// ```
pub fn write_npy(w: &mut impl Write, array: &NpyArray) -> Result<(), NpyError> {
    let (descr, shape): (String, Vec<usize>) = match array {
        NpyArray::F32(a) => ("<f4".into(), a.shape().to_vec()),
        NpyArray::F64(a) => ("<f8".into(), a.shape().to_vec()),
        NpyArray::I64(a) => ("<i8".into(), a.shape().to_vec()),
        NpyArray::Str(s) => (format!("<U{}", s.chars().count().max(1)), Vec::new()),
    };
    write_npy_header(w, &descr, &shape)?;
    let mut data = Vec::new();
    match array {
        NpyArray::F32(a) => a
            .iter()
            .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
        NpyArray::F64(a) => a
            .iter()
            .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
        NpyArray::I64(a) => a
            .iter()
            .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
        NpyArray::Str(s) => {
            s.chars()
                .for_each(|c| data.extend_from_slice(&(c as u32).to_le_bytes()));
            if s.is_empty() {
                data.extend_from_slice(&[0; 4]);
            }
        }
    }
    w.write_all(&data)?;
    Ok(())
}

/// Writes the header of a `.npy` file (version 1.0) of an array of type `descr` (such as
/// `<f4`) and shape `shape`, in C order (the last index fastest), for its values to follow
/// as they are computed, little-endian.
///
/// # Errors
/// Those of `w`.
///
/// ```
/// use demix::formats::npy::{read_npy, write_npy_header};
/// let mut file = Vec::new();
/// write_npy_header(&mut file, "<f4", &[2, 3])?;
/// assert_eq!(file.len() % 64, 0);
/// for v in [1f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
///     file.extend_from_slice(&v.to_le_bytes());
/// }
/// let array = read_npy(&mut file.as_slice())?.to_f32().unwrap();
/// assert_eq!(array.shape(), &[2, 3]);
/// assert_eq!(array[[1, 0]], 4.0);
/// # Ok::<(), demix::formats::npy::NpyError>(())
/// ```
pub fn write_npy_header(w: &mut impl Write, descr: &str, shape: &[usize]) -> Result<(), NpyError> {
    let shape = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64,
    // ending in a newline.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    header.push('\n');
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(header.len() as u16).to_le_bytes())?;
    w.write_all(header.as_bytes())?;
    Ok(())
}

/// Reads one `.npy` array.
///
/// # Errors
/// [`NpyError::Format`] for a malformed header or an unsupported type, [`NpyError::Io`] for
/// short data.
pub fn read_npy(r: &mut impl Read) -> Result<NpyArray, NpyError> {
    let bad = |m: &str| NpyError::Format(m.to_string());
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let header_len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(NpyError::Format(format!("version {v} is unknown"))),
    };
    if header_len > 1 << 20 {
        return Err(bad("header longer than 1 MiB"));
    }
    let mut header = vec![0u8; header_len];
    r.read_exact(&mut header)?;
    let header = String::from_utf8_lossy(&header);
    let descr = dict_value(&header, "descr").ok_or_else(|| bad("no 'descr'"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(&header, "fortran_order").ok_or_else(|| bad("no 'fortran_order'"))?;
    let fortran = fortran.starts_with("True");
    let shape_text = dict_value(&header, "shape").ok_or_else(|| bad("no 'shape'"))?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("a malformed shape")))
        .collect::<Result<_, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad("a shape too large"))?;
    fn shaped<T>(shape: &[usize], fortran: bool, v: Vec<T>) -> Result<ArrayD<T>, NpyError> {
        let dim = IxDyn(shape);
        let array = if fortran {
            ArrayD::from_shape_vec(dim.f(), v)
        } else {
            ArrayD::from_shape_vec(dim, v)
        };
        array.map_err(|e| NpyError::Format(e.to_string()))
    }
    fn read_values<const N: usize, T>(
        r: &mut impl Read,
        count: usize,
        from: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, NpyError> {
        let len = count
            .checked_mul(N)
            .ok_or_else(|| NpyError::Format("a shape too large".into()))?;
        // Grows with the bytes actually read, whatever the header declares.
        let mut bytes = Vec::new();
        r.take(len as u64).read_to_end(&mut bytes)?;
        if bytes.len() != len {
            return Err(NpyError::Format("the data ends early".into()));
        }
        Ok(bytes
            .chunks_exact(N)
            .map(|c| from(c.try_into().expect("chunks of N")))
            .collect())
    }
    match descr {
        "<f4" => Ok(NpyArray::F32(shaped(
            &shape,
            fortran,
            read_values(r, count, f32::from_le_bytes)?,
        )?)),
        "<f8" => Ok(NpyArray::F64(shaped(
            &shape,
            fortran,
            read_values(r, count, f64::from_le_bytes)?,
        )?)),
        "<i8" => Ok(NpyArray::I64(shaped(
            &shape,
            fortran,
            read_values(r, count, i64::from_le_bytes)?,
        )?)),
        "<i4" => {
            let v = read_values(r, count, i32::from_le_bytes)?;
            Ok(NpyArray::I64(shaped(
                &shape,
                fortran,
                v.into_iter().map(i64::from).collect(),
            )?))
        }
        d if d.starts_with("<U") && shape.is_empty() => {
            let n: usize = d[2..].parse().map_err(|_| bad("a malformed string type"))?;
            let chars = read_values(r, n, u32::from_le_bytes)?;
            Ok(NpyArray::Str(
                chars
                    .into_iter()
                    .take_while(|&c| c != 0)
                    .map(|c| char::from_u32(c).unwrap_or('\u{FFFD}'))
                    .collect(),
            ))
        }
        other => Err(NpyError::Format(format!(
            "type '{}' (supported: float32, float64, int32, int64, and scalar strings)",
            excerpt(other, 40)
        ))),
    }
}

/// The text after `'key':` in a header dict, up to the next top-level comma.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

/// Writes named arrays as an uncompressed `.npz` archive (as `np.savez`): `np.load(path)`
/// gives back each array under its name.
///
/// # Errors
/// [`NpyError::Io`] or [`NpyError::Zip`] if writing fails.
pub fn write_npz<'a>(
    w: impl Write + Seek,
    arrays: impl IntoIterator<Item = (&'a str, &'a NpyArray)>,
) -> Result<(), NpyError> {
    let mut zip = zip::ZipWriter::new(w);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, array) in arrays {
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| NpyError::Zip(e.to_string()))?;
        write_npy(&mut zip, array)?;
    }
    zip.finish().map_err(|e| NpyError::Zip(e.to_string()))?;
    Ok(())
}

/// The largest member a `.npz` archive may declare (uncompressed): 1 GiB.
pub const MAX_NPZ_MEMBER: u64 = 1 << 30;

/// Reads every array of a `.npz` archive, by name (without `.npy`).
///
/// # Errors
/// [`NpyError::Zip`] for a file that is not a zip archive or a member whose CRC-32 does not
/// match, [`NpyError::Format`] for members that are not supported arrays or declare more
/// than [`MAX_NPZ_MEMBER`] bytes.
pub fn read_npz(r: impl Read + Seek) -> Result<BTreeMap<String, NpyArray>, NpyError> {
    let mut zip = zip::ZipArchive::new(r).map_err(|e| NpyError::Zip(e.to_string()))?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).map_err(|e| NpyError::Zip(e.to_string()))?;
        let name = file.name().trim_end_matches(".npy").to_string();
        // Before inflating: a small archive may declare a huge member.
        if file.size() > MAX_NPZ_MEMBER {
            return Err(NpyError::Format(format!(
                "member '{}' declares {} bytes, more than the {MAX_NPZ_MEMBER} an archive \
                 member may hold",
                excerpt(&name, 40),
                file.size()
            )));
        }
        let mut member = (&mut file).take(MAX_NPZ_MEMBER);
        let array = read_npy(&mut member)?;
        // Reading to the end makes the archive check the member's CRC-32.
        io::copy(&mut member, &mut io::sink())
            .map_err(|e| NpyError::Zip(format!("member '{}': {e}", excerpt(&name, 40))))?;
        out.insert(name, array);
    }
    Ok(out)
}

impl From<NpyError> for io::Error {
    /// The I/O error itself, or the other error as an I/O error of kind `Other`.
    fn from(e: NpyError) -> io::Error {
        match e {
            NpyError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// Writes `.npy` to `path` atomically (temporary name, then rename).
///
/// # Errors
/// [`crate::Error::Write`] if the file cannot be written.
pub fn save_npy(path: &Path, array: &NpyArray) -> crate::Result<()> {
    crate::atomic::write_atomically(path, |file| write_npy(file, array).map_err(io::Error::from))
}

/// Writes `.npz` to `path` atomically (temporary name, then rename).
///
/// # Errors
/// [`crate::Error::Write`] if the file cannot be written.
pub fn save_npz<'a>(
    path: &Path,
    arrays: impl IntoIterator<Item = (&'a str, &'a NpyArray)>,
) -> crate::Result<()> {
    crate::atomic::write_atomically(path, |file| {
        write_npz(file, arrays).map_err(io::Error::from)
    })
}

/// Reads every array of the `.npz` file at `path`.
///
/// # Errors
/// [`NpyError`] for unreadable or malformed files.
pub fn load_npz(path: &Path) -> Result<BTreeMap<String, NpyArray>, NpyError> {
    read_npz(io::BufReader::new(fs::File::open(path)?))
}

/// Reads the `.npy` file at `path`.
///
/// # Errors
/// [`NpyError`] for unreadable or malformed files.
pub fn load_npy(path: &Path) -> Result<NpyArray, NpyError> {
    read_npy(&mut io::BufReader::new(fs::File::open(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn every_type_round_trips_through_npz() {
        let arrays = vec![
            (
                "w",
                NpyArray::F32(array![[1.5f32, -2.0, 3.25], [0.0, 1e-30, 7.0]].into_dyn()),
            ),
            ("h", NpyArray::F64(array![1.0, 2.0].into_dyn())),
            ("n_fft", NpyArray::scalar_i64(2048)),
            ("rate", NpyArray::scalar_f64(44_100.0)),
            ("name", NpyArray::Str("piano ♩".into())),
            ("empty", NpyArray::Str(String::new())),
        ];
        let mut buf = io::Cursor::new(Vec::new());
        write_npz(&mut buf, arrays.iter().map(|(n, a)| (*n, a))).unwrap();
        buf.set_position(0);
        let back = read_npz(buf).unwrap();
        assert_eq!(back.len(), arrays.len());
        for (name, array) in &arrays {
            assert_eq!(&back[*name], array, "{name}");
        }
    }

    #[test]
    fn headers_are_padded_to_64_bytes() {
        let mut bytes = Vec::new();
        write_npy(&mut bytes, &NpyArray::scalar_i64(1)).unwrap();
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(bytes[10 + header_len - 1], b'\n');
    }

    #[test]
    fn fortran_order_is_read_into_the_right_places() {
        let header = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for v in [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let a = read_npy(&mut bytes.as_slice()).unwrap();
        assert_eq!(
            a,
            NpyArray::F64(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn())
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_npy(&mut &b"not numpy at all"[..]).is_err());
        assert!(read_npz(io::Cursor::new(b"PK\x03\x04 broken".to_vec())).is_err());
        let header = "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 16]);
        assert!(matches!(
            read_npy(&mut bytes.as_slice()),
            Err(NpyError::Format(_))
        ));
    }

    fn header_only(descr: &str, shape: &str) -> Vec<u8> {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 16]);
        bytes
    }

    #[test]
    fn a_huge_declared_shape_is_an_error_before_any_allocation() {
        // 2^36 floats (256 GiB) declared, 16 bytes present: an error, not an abort.
        let bytes = header_only("<f4", "(68719476736,)");
        assert!(matches!(
            read_npy(&mut bytes.as_slice()),
            Err(NpyError::Format(m)) if m.contains("ends early")
        ));
        // Element counts whose byte size overflows, for numbers and strings.
        for (descr, shape) in [
            ("<f8", "(2305843009213693952, 2)"),
            ("<U4611686018427387904", "()"),
        ] {
            let bytes = header_only(descr, shape);
            assert!(
                matches!(read_npy(&mut bytes.as_slice()), Err(NpyError::Format(_))),
                "{descr} {shape}"
            );
        }
    }
}
