//! FLAC output with flacenc (pure Rust), streamed: each block of 4096 frames is encoded and
//! written as it fills, and the header (length, MD5) is rewritten when the stream ends.

use std::fs;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, Stream, StreamInfo};
use flacenc::config;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Context, Fill, FrameBuf};

use super::write::quantize_block;
use super::{ClipReport, OutputFormat};
use crate::error::{Error, Result};

/// Most channels a FLAC stream holds.
pub const FLAC_MAX_CHANNELS: usize = 8;

/// Highest sample rate the FLAC header records (a 20-bit field).
pub const FLAC_MAX_SAMPLE_RATE: u32 = (1 << 20) - 1;

/// A FLAC writer fed planar blocks of samples, which counts (and limits) samples beyond full
/// scale as [`super::WavStreamWriter`] does. Memory stays at one FLAC block whatever the length.
pub struct FlacStreamWriter {
    file: BufWriter<fs::File>,
    path: PathBuf,
    channels: usize,
    scale: f32,
    config: Verified<config::Encoder>,
    info: StreamInfo,
    frame: FrameBuf,
    /// The MD5 of the samples, which the header records.
    context: Context,
    /// Interleaved samples not yet making a whole FLAC block.
    pending: Vec<i32>,
    frames_written: usize,
    sink: ByteSink,
    report: ClipReport,
    quantized: Vec<Vec<i32>>,
}

impl FlacStreamWriter {
    /// Creates (truncates) `path` for `channels` channels at `sample_rate`, with 16- or 24-bit
    /// samples.
    ///
    /// # Errors
    /// [`Error::OutputFormat`] for float samples, more than [`FLAC_MAX_CHANNELS`] channels or a
    /// rate above [`FLAC_MAX_SAMPLE_RATE`]; [`Error::Write`] if the file cannot be created.
    pub fn create(
        path: impl AsRef<Path>,
        channels: usize,
        sample_rate: u32,
        format: OutputFormat,
    ) -> Result<FlacStreamWriter> {
        let path = path.as_ref().to_path_buf();
        check_flac(channels, sample_rate, format)?;
        let bits = if format == OutputFormat::Int24 {
            24
        } else {
            16
        };
        let scale = format
            .full_scale()
            .expect("check_flac refuses float samples");
        let unsupported =
            |e: flacenc::error::VerifyError| Error::OutputFormat(format!("FLAC: {e}"));
        let config = encoder_config()
            .into_verified()
            .map_err(|(_, e)| unsupported(e))?;
        let mut info =
            StreamInfo::new(sample_rate as usize, channels, bits).map_err(unsupported)?;
        info.set_block_sizes(config.block_size, config.block_size)
            .map_err(unsupported)?;
        let frame = FrameBuf::with_size(channels, config.block_size).map_err(unsupported)?;
        let file = fs::File::create(&path).map_err(|e| Error::write(&path, e))?;
        let mut writer = FlacStreamWriter {
            file: BufWriter::with_capacity(1 << 16, file),
            path,
            channels,
            scale,
            context: Context::new(bits, channels),
            pending: Vec::with_capacity(config.block_size * channels),
            config,
            info,
            frame,
            frames_written: 0,
            sink: ByteSink::new(),
            report: ClipReport::default(),
            quantized: Vec::new(),
        };
        // The header as it will be, with length and MD5 still zero; rewritten by `finish`.
        writer.write_header()?;
        Ok(writer)
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
        quantize_block(block, self.scale, &mut self.quantized, &mut self.report);
        let block_len = self.config.block_size * self.channels;
        for i in 0..frames {
            for q in &self.quantized {
                self.pending.push(q[i]);
            }
            if self.pending.len() == block_len {
                self.encode_pending()?;
            }
        }
        Ok(())
    }

    /// Encodes and writes the pending samples as one FLAC frame.
    fn encode_pending(&mut self) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| {
            Error::write(
                &self.path,
                std::io::Error::other(format!("FLAC encoder: {e}")),
            )
        };
        self.frame
            .fill_interleaved(&self.pending)
            .map_err(|e| fail(&e))?;
        self.context
            .fill_interleaved(&self.pending)
            .map_err(|e| fail(&e))?;
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.frame,
            self.frames_written,
            &self.info,
        )
        .map_err(|e| fail(&e))?;
        self.info.update_frame_info(&frame);
        self.sink.clear();
        frame.write(&mut self.sink).map_err(|e| fail(&e))?;
        self.file
            .write_all(self.sink.as_slice())
            .map_err(|e| Error::write(&self.path, e))?;
        self.frames_written += 1;
        self.pending.clear();
        Ok(())
    }

    /// `fLaC` and the STREAMINFO block (42 bytes), at the current position.
    fn write_header(&mut self) -> Result<()> {
        let stream = Stream::with_stream_info(self.info.clone());
        self.sink.clear();
        stream.write(&mut self.sink).map_err(|e| {
            Error::write(
                &self.path,
                std::io::Error::other(format!("FLAC header: {e}")),
            )
        })?;
        self.file
            .write_all(self.sink.as_slice())
            .map_err(|e| Error::write(&self.path, e))
    }

    /// Encodes the last, shorter block, rewrites the header with the length and MD5, and
    /// flushes; returns what happened to out-of-range samples.
    ///
    /// # Errors
    /// [`Error::Write`] if a write fails.
    pub fn finish(mut self) -> Result<ClipReport> {
        if !self.pending.is_empty() {
            self.encode_pending()?;
        }
        let total = self.context.total_samples();
        self.info.set_total_samples(total);
        self.info.set_md5_digest(&self.context.md5_digest());
        // The FLAC format leaves the short last block out of the minimum block size (flacenc
        // counts it, which makes decoders take the stream for one of variable block sizes).
        let block_size = self.config.block_size;
        self.info
            .set_block_sizes(block_size, block_size)
            .map_err(|e| Error::write(&self.path, std::io::Error::other(e.to_string())))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::write(&self.path, e))?;
        self.write_header()?;
        self.file.flush().map_err(|e| Error::write(&self.path, e))?;
        Ok(self.report)
    }
}

/// flacenc's default encoder with a narrower search: the stereo stems are coded as left/right
/// or mid/side (not left/side, right/side) with LPC up to order 8. Measured on a 3-minute stereo
/// stem (`cargo bench --bench io -- write_flac`): see the commit that chose it.
fn encoder_config() -> config::Encoder {
    let mut config = config::Encoder::default();
    config.stereo_coding.use_leftside = false;
    config.stereo_coding.use_rightside = false;
    config.subframe_coding.use_lpc = false;
    config
}

/// Whether FLAC can hold `channels` channels at `sample_rate` in `format`.
///
/// # Errors
/// [`Error::OutputFormat`] naming what FLAC cannot hold.
pub fn check_flac(channels: usize, sample_rate: u32, format: OutputFormat) -> Result<()> {
    if format == OutputFormat::Float32 {
        return Err(Error::OutputFormat(
            "FLAC holds integer samples; write 16- or 24-bit FLAC, or float WAV".into(),
        ));
    }
    if channels == 0 || channels > FLAC_MAX_CHANNELS {
        return Err(Error::OutputFormat(format!(
            "{channels} channels in FLAC, which holds 1 to {FLAC_MAX_CHANNELS}; write WAV"
        )));
    }
    if sample_rate > FLAC_MAX_SAMPLE_RATE {
        return Err(Error::OutputFormat(format!(
            "a sample rate of {sample_rate} Hz in FLAC, which records at most \
             {FLAC_MAX_SAMPLE_RATE} Hz; write WAV"
        )));
    }
    Ok(())
}
