//! WAV output with hound: streaming, with clipping counted rather than hidden.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::Audio;
use crate::error::{Error, Result};

/// The sample format of written WAV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// 16-bit integer PCM (the default).
    #[default]
    Int16,
    /// 24-bit integer PCM.
    Int24,
    /// 32-bit IEEE float: never clips.
    Float32,
}

impl OutputFormat {
    /// Largest integer sample value, or `None` for float output.
    pub(super) fn full_scale(self) -> Option<f32> {
        match self {
            OutputFormat::Int16 => Some(32768.0),
            OutputFormat::Int24 => Some(8_388_608.0),
            OutputFormat::Float32 => None,
        }
    }

    fn spec(self, channels: usize, sample_rate: u32) -> hound::WavSpec {
        let (bits_per_sample, sample_format) = match self {
            OutputFormat::Int16 => (16, hound::SampleFormat::Int),
            OutputFormat::Int24 => (24, hound::SampleFormat::Int),
            OutputFormat::Float32 => (32, hound::SampleFormat::Float),
        };
        hound::WavSpec {
            channels: channels as u16,
            sample_rate,
            bits_per_sample,
            sample_format,
        }
    }
}

/// The kind of audio file written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Container {
    /// WAV (the default): any [`OutputFormat`], at most 4 GiB per file.
    #[default]
    Wav,
    /// FLAC, lossless and compressed: 16- or 24-bit, at most 8 channels.
    Flac,
}

impl Container {
    /// The file name extension, `wav` or `flac`.
    pub fn extension(self) -> &'static str {
        match self {
            Container::Wav => "wav",
            Container::Flac => "flac",
        }
    }
}

/// The largest WAV file: its sizes are 32-bit fields.
pub const WAV_MAX_BYTES: u64 = u32::MAX as u64;

/// The size in bytes of a WAV file of `frames` frames of `channels` channels in `format`
/// (hound's 44-byte header, or 68 bytes with the extensible format of 24-bit and more than two
/// channels); compare with [`WAV_MAX_BYTES`].
pub fn wav_size(frames: u64, channels: usize, format: OutputFormat) -> u64 {
    let bytes = match format {
        OutputFormat::Int16 => 2,
        OutputFormat::Int24 => 3,
        OutputFormat::Float32 => 4,
    };
    let header = 68;
    frames
        .saturating_mul(channels as u64)
        .saturating_mul(bytes)
        .saturating_add(header)
}

/// A stem file being written, WAV or FLAC.
pub enum StemWriter {
    /// A WAV file.
    Wav(WavStreamWriter),
    /// A FLAC file (boxed: its encoder state is much larger than a WAV writer).
    Flac(Box<super::FlacStreamWriter>),
}

impl StemWriter {
    /// Creates (truncates) `path` as a `container` file.
    ///
    /// # Errors
    /// As [`WavStreamWriter::create`] and [`super::FlacStreamWriter::create`].
    pub fn create(
        path: impl AsRef<Path>,
        channels: usize,
        sample_rate: u32,
        format: OutputFormat,
        container: Container,
    ) -> Result<StemWriter> {
        Ok(match container {
            Container::Wav => StemWriter::Wav(WavStreamWriter::create(
                path,
                channels,
                sample_rate,
                format,
            )?),
            Container::Flac => StemWriter::Flac(Box::new(super::FlacStreamWriter::create(
                path,
                channels,
                sample_rate,
                format,
            )?)),
        })
    }

    /// Appends one block: `block[c]` holds channel `c`, all of the same length.
    ///
    /// # Errors
    /// [`Error::Write`] if writing fails.
    pub fn write(&mut self, block: &[&[f32]]) -> Result<()> {
        match self {
            StemWriter::Wav(w) => w.write(block),
            StemWriter::Flac(w) => w.write(block),
        }
    }

    /// Finishes the file; returns what happened to out-of-range samples.
    ///
    /// # Errors
    /// [`Error::Write`] if the final write fails.
    pub fn finish(self) -> Result<ClipReport> {
        match self {
            StemWriter::Wav(w) => w.finish(),
            StemWriter::Flac(w) => w.finish(),
        }
    }
}

/// What happened to samples beyond full scale in integer output.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClipReport {
    /// Samples (counting each channel) that were limited to full scale.
    pub clipped: u64,
    /// The largest absolute sample value before limiting.
    pub peak: f32,
}

/// A WAV writer fed planar blocks of samples, which counts (and limits) samples that do not fit
/// the integer format.
pub struct WavStreamWriter {
    writer: hound::WavWriter<BufWriter<fs::File>>,
    format: OutputFormat,
    channels: usize,
    report: ClipReport,
    path: PathBuf,
    /// Each channel of the block being written, quantized (integer formats).
    quantized: Vec<Vec<i32>>,
}

impl WavStreamWriter {
    /// Creates (truncates) `path` for `channels` channels at `sample_rate`.
    ///
    /// # Errors
    /// [`Error::Write`] if the file cannot be created.
    pub fn create(
        path: impl AsRef<Path>,
        channels: usize,
        sample_rate: u32,
        format: OutputFormat,
    ) -> Result<WavStreamWriter> {
        let path = path.as_ref().to_path_buf();
        let writer = hound::WavWriter::create(&path, format.spec(channels, sample_rate))
            .map_err(|e| Error::write(&path, hound_to_io(e)))?;
        Ok(WavStreamWriter {
            writer,
            format,
            channels,
            report: ClipReport::default(),
            path,
            quantized: Vec::new(),
        })
    }

    /// Appends one block: `block[c]` holds channel `c`, all of the same length.
    ///
    /// # Errors
    /// [`Error::Write`] if writing fails.
    ///
    /// # Panics
    /// If the number of channels differs from the one given at creation.
    pub fn write(&mut self, block: &[&[f32]]) -> Result<()> {
        assert_eq!(block.len(), self.channels, "channel count of the block");
        let frames = block.first().map_or(0, |c| c.len());
        let path = &self.path;
        let fail = |e: hound::Error| Error::write(path, hound_to_io(e));
        match self.format.full_scale() {
            None => {
                for channel in block {
                    self.report.peak = self.report.peak.max(peak(channel));
                }
                for i in 0..frames {
                    for channel in block {
                        self.writer.write_sample(channel[i]).map_err(fail)?;
                    }
                }
            }
            Some(scale) => {
                quantize_block(block, scale, &mut self.quantized, &mut self.report);
                let quantized = &self.quantized;
                if self.format == OutputFormat::Int16 {
                    let mut w = self.writer.get_i16_writer((frames * block.len()) as u32);
                    for i in 0..frames {
                        for q in quantized {
                            w.write_sample(q[i] as i16);
                        }
                    }
                    w.flush().map_err(fail)?;
                } else {
                    for i in 0..frames {
                        for q in quantized {
                            self.writer.write_sample(q[i]).map_err(fail)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Finishes the header and flushes; returns what happened to out-of-range samples.
    ///
    /// # Errors
    /// [`Error::Write`] if the final write fails.
    pub fn finish(self) -> Result<ClipReport> {
        let path = self.path;
        self.writer
            .finalize()
            .map_err(|e| Error::write(&path, hound_to_io(e)))?;
        Ok(self.report)
    }
}

/// Writes `audio` as a WAV file, atomically: to a temporary name in the same folder, renamed
/// to `path` when complete.
///
/// # Errors
/// [`Error::Write`] if the file cannot be written or renamed.
///
/// ```
/// use demix::audio::{Audio, OutputFormat, write_wav, read_audio};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("tone.wav");
/// let tone: Vec<f32> = (0..800).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
/// let report = write_wav(&path, &Audio::new(8000, vec![tone])?, OutputFormat::Float32)?;
/// assert_eq!(report.clipped, 0);
/// assert_eq!(read_audio(&path)?.len(), 800);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_wav(
    path: impl AsRef<Path>,
    audio: &Audio,
    format: OutputFormat,
) -> Result<ClipReport> {
    let path = path.as_ref();
    let tmp = crate::atomic::temp_name(path);
    let result = (|| {
        let mut writer =
            WavStreamWriter::create(&tmp, audio.num_channels(), audio.sample_rate, format)?;
        let planes: Vec<&[f32]> = audio.channels.iter().map(Vec::as_slice).collect();
        writer.write(&planes)?;
        let report = writer.finish()?;
        fs::rename(&tmp, path).map_err(|e| Error::write(path, e))?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Lanes of the vectorised loops below: peaks and counts are kept per lane.
const LANES: usize = 16;

/// The largest absolute value of `x` (0 for none).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn peak(x: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for chunk in chunks {
        for (p, &v) in lanes.iter_mut().zip(chunk) {
            *p = p.max(v.abs());
        }
    }
    tail.iter()
        .fold(lanes.iter().fold(0f32, |m, &p| m.max(p)), |m, &v| {
            m.max(v.abs())
        })
}

/// Quantises every channel of `block` into `quantized` (one buffer per channel, resized to
/// the block), adding the peak and the clipped samples to `report`.
pub(super) fn quantize_block(
    block: &[&[f32]],
    scale: f32,
    quantized: &mut Vec<Vec<i32>>,
    report: &mut ClipReport,
) {
    let frames = block.first().map_or(0, |c| c.len());
    quantized.resize(block.len(), Vec::new());
    for (q, channel) in quantized.iter_mut().zip(block) {
        q.resize(frames, 0);
        let (p, clipped) = quantize(channel, scale, q);
        report.peak = report.peak.max(p);
        report.clipped += clipped;
    }
}

/// `x` scaled by `scale` (full scale) and rounded into `out`, limited to `-scale..scale - 1`;
/// returns the largest absolute value of `x` and how many samples were limited.
fn quantize(x: &[f32], scale: f32, out: &mut [i32]) -> (f32, u64) {
    // Per-lane counts are 32-bit, so they are summed every so many samples.
    const PART: usize = 1 << 24;
    x.chunks(PART)
        .zip(out.chunks_mut(PART))
        .fold((0f32, 0u64), |(peak, clipped), (x, out)| {
            let (p, c) = quantize_part(x, scale, out);
            (peak.max(p), clipped + c)
        })
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn quantize_part(x: &[f32], scale: f32, out: &mut [i32]) -> (f32, u64) {
    let (lo, hi) = (-scale, scale - 1.0);
    let mut peaks = [0f32; LANES];
    let mut clipped = [0u32; LANES];
    let out = &mut out[..x.len()];
    let (chunks, x_tail) = x.as_chunks::<LANES>();
    let (out_chunks, out_tail) = out.as_chunks_mut::<LANES>();
    let one = |x: f32, out: &mut i32, peak: &mut f32, clipped: &mut u32| {
        *peak = peak.max(x.abs());
        let q = (x * scale).round();
        *clipped += u32::from(q > hi || q < lo);
        *out = q.clamp(lo, hi) as i32;
    };
    for (chunk, out) in chunks.iter().zip(out_chunks) {
        for j in 0..LANES {
            one(chunk[j], &mut out[j], &mut peaks[j], &mut clipped[j]);
        }
    }
    for (&x, out) in x_tail.iter().zip(out_tail) {
        one(x, out, &mut peaks[0], &mut clipped[0]);
    }
    let total = clipped.iter().map(|&c| u64::from(c)).sum();
    (peaks.iter().fold(0f32, |m, &p| m.max(p)), total)
}

fn hound_to_io(e: hound::Error) -> std::io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}
