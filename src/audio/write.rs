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
    fn full_scale(self) -> Option<f32> {
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
        let mut peak = self.report.peak;
        let mut clipped = 0u64;
        let path = &self.path;
        let fail = |e: hound::Error| Error::write(path, hound_to_io(e));
        match self.format.full_scale() {
            None => {
                for i in 0..frames {
                    for channel in block {
                        peak = peak.max(channel[i].abs());
                        self.writer.write_sample(channel[i]).map_err(fail)?;
                    }
                }
            }
            Some(scale) => {
                let (lo, hi) = (-scale, scale - 1.0);
                let mut quantize = |x: f32| {
                    peak = peak.max(x.abs());
                    let q = (x * scale).round();
                    if q > hi || q < lo {
                        clipped += 1;
                    }
                    q.clamp(lo, hi) as i32
                };
                if self.format == OutputFormat::Int16 {
                    let mut w = self.writer.get_i16_writer((frames * block.len()) as u32);
                    for i in 0..frames {
                        for channel in block {
                            w.write_sample(quantize(channel[i]) as i16);
                        }
                    }
                    w.flush().map_err(fail)?;
                } else {
                    for i in 0..frames {
                        for channel in block {
                            self.writer
                                .write_sample(quantize(channel[i]))
                                .map_err(fail)?;
                        }
                    }
                }
            }
        }
        self.report.peak = peak;
        self.report.clipped += clipped;
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

fn hound_to_io(e: hound::Error) -> std::io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}
