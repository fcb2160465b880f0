//! PNG encoding of 8-bit RGB images: one IDAT chunk, zlib-compressed, every row with the
//! "Sub" filter (which turns the flat areas of charts into runs of zeros).

use std::io::{self, Write};
use std::path::Path;

use super::Image;

/// Encodes `image` as a PNG file.
///
/// # Errors
/// Whatever writing to `w` fails with.
///
/// ```
/// use demix::formats::plot::{encode_png, Image};
/// let mut bytes = Vec::new();
/// encode_png(&mut bytes, &Image::new(3, 2, [255, 0, 0]))?;
/// assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn encode_png(w: &mut impl Write, image: &Image) -> io::Result<()> {
    let (width, height) = (image.width(), image.height());
    let to_u32 = |v: usize| u32::try_from(v).map_err(|_| io::Error::other("image too large"));
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&to_u32(width)?.to_be_bytes());
    ihdr.extend_from_slice(&to_u32(height)?.to_be_bytes());
    // 8 bits, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);

    let mut raw = Vec::with_capacity(height * (1 + 3 * width));
    for row in image.rows() {
        raw.push(1); // Sub
        let mut prev = [0u8; 3];
        for px in row {
            for c in 0..3 {
                raw.push(px[c].wrapping_sub(prev[c]));
            }
            prev = *px;
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&raw)?;
    let idat = z.finish()?;

    w.write_all(b"\x89PNG\r\n\x1a\n")?;
    chunk(w, b"IHDR", &ihdr)?;
    chunk(w, b"IDAT", &idat)?;
    chunk(w, b"IEND", &[])
}

fn chunk(w: &mut impl Write, kind: &[u8; 4], data: &[u8]) -> io::Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| io::Error::other("PNG chunk too large"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(kind)?;
    w.write_all(data)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    w.write_all(&crc.finalize().to_be_bytes())
}

/// Writes `image` as a PNG file at `path` atomically (temporary name, then rename).
///
/// # Errors
/// [`crate::Error::Write`] if the file cannot be written.
pub fn save_png(path: &Path, image: &Image) -> crate::Result<()> {
    crate::atomic::write_atomically(path, |file| encode_png(file, image))
}
