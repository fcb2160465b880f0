//! Decoding any format symphonia's enabled features know into planar `f32`.

use std::fs;
use std::io;
use std::path::Path;

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use super::Audio;
use crate::error::{Error, Result};

/// Reads and decodes an audio file (WAV, FLAC, and the other formats listed in the README).
///
/// # Errors
/// [`Error::NotFound`], [`Error::IsDirectory`], [`Error::EmptyFile`] and [`Error::Read`] for the
/// file itself; [`Error::Unsupported`], [`Error::Corrupt`], [`Error::Truncated`] and
/// [`Error::NoAudio`] for its content.
///
/// ```
/// let audio = demix::audio::read_audio("samples/mix.flac")?;
/// assert_eq!((audio.num_channels(), audio.sample_rate), (2, 44_100));
/// assert!((audio.duration_secs() - 6.0).abs() < 0.01);
/// # Ok::<(), demix::Error>(())
/// ```
pub fn read_audio(path: impl AsRef<Path>) -> Result<Audio> {
    let path = path.as_ref();
    let file = open_file(path)?;
    let extension = path.extension().and_then(|e| e.to_str());
    decode(Box::new(file), extension)
}

/// Opens an audio file for decoding, with the file-system errors of [`read_audio`].
fn open_file(path: &Path) -> Result<fs::File> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound,
        _ => Error::Read(e),
    })?;
    if meta.is_dir() {
        return Err(Error::IsDirectory);
    }
    if meta.len() == 0 {
        return Err(Error::EmptyFile);
    }
    fs::File::open(path).map_err(Error::Read)
}

/// Decodes audio from any symphonia media source (a file, or an `io::Cursor` over bytes).
///
/// `extension` is a hint for the format probe (`"wav"`, `"flac"`); the content decides.
///
/// # Errors
/// As [`read_audio`], except for the file-system errors.
///
/// ```
/// # fn wav_bytes() -> Vec<u8> {
/// #     let mut out = std::io::Cursor::new(Vec::new());
/// #     let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16,
/// #                                 sample_format: hound::SampleFormat::Int };
/// #     let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
/// #     for i in 0..800 { w.write_sample((i % 100) as i16 * 100).unwrap(); }
/// #     w.finalize().unwrap();
/// #     out.into_inner()
/// # }
/// let bytes: Vec<u8> = wav_bytes(); // a 16-bit mono WAV file in memory
/// let audio = demix::audio::decode(Box::new(std::io::Cursor::new(bytes)), Some("wav"))?;
/// assert_eq!((audio.sample_rate, audio.num_channels(), audio.len()), (8000, 1, 800));
/// # Ok::<(), demix::Error>(())
/// ```
pub fn decode(source: Box<dyn MediaSource>, extension: Option<&str>) -> Result<Audio> {
    let mut reader = AudioReader::from_source(source, extension)?;
    let reserve = reader.reserve;
    // One reservation per channel (`vec![v; n]` clones, and a clone keeps no capacity).
    let mut channels: Vec<Vec<f32>> = (0..reader.num_channels())
        .map(|_| Vec::with_capacity(reserve))
        .collect();
    while reader.read(&mut channels, usize::MAX)? > 0 {}
    Audio::new(reader.sample_rate(), channels)
}

/// A decoder that delivers a recording block by block, so that it need never be held whole:
/// what [`read_audio`] does, with the same checks, the length ones made when the stream ends.
///
/// ```
/// let mut reader = demix::audio::AudioReader::open("samples/mix.flac")?;
/// let mut block = vec![Vec::new(); reader.num_channels()];
/// let mut frames = 0;
/// loop {
///     block.iter_mut().for_each(Vec::clear);
///     let n = reader.read(&mut block, 4096)?;
///     if n == 0 { break; }
///     frames += n;
/// }
/// assert_eq!(frames, 264_600);
/// # Ok::<(), demix::Error>(())
/// ```
pub struct AudioReader {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    expected_frames: Option<u64>,
    /// The declared length in time-base units, the units of packet timestamps.
    declared_end: Option<u64>,
    sample_rate: u32,
    /// The last decoded packet, planar, and how much of it was delivered.
    packet: Vec<Vec<f32>>,
    delivered: usize,
    failed_packets: usize,
    first_failure: String,
    /// Where the last packet the demuxer delivered ends: a stream that reached its declared
    /// end but decoded fewer frames had damaged data skipped in the middle; it is not truncated.
    stream_end: u64,
    decoded: u64,
    ended: bool,
    reserve: usize,
}

impl AudioReader {
    /// Opens an audio file; the first packet is decoded, so that the channel count and sample
    /// rate are known.
    ///
    /// # Errors
    /// As [`read_audio`].
    pub fn open(path: impl AsRef<Path>) -> Result<AudioReader> {
        let path = path.as_ref();
        let file = open_file(path)?;
        let extension = path.extension().and_then(|e| e.to_str());
        AudioReader::from_source(Box::new(file), extension)
    }

    /// Opens any symphonia media source, as [`decode`].
    ///
    /// # Errors
    /// As [`decode`].
    pub fn from_source(
        source: Box<dyn MediaSource>,
        extension: Option<&str>,
    ) -> Result<AudioReader> {
        guarded(|| AudioReader::open_unguarded(source, extension))
    }

    /// Samples per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of channels.
    pub fn num_channels(&self) -> usize {
        self.packet.len()
    }

    /// The length the header declares, in frames, if it does.
    pub fn declared_frames(&self) -> Option<u64> {
        self.expected_frames
    }

    /// Appends up to `max_frames` frames to `out` (one `Vec` per channel); returns how many,
    /// 0 at the end of the stream, once its length checks passed.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::Corrupt`] and [`Error::Truncated`], as [`read_audio`].
    ///
    /// # Panics
    /// If `out` does not have one `Vec` per channel.
    pub fn read(&mut self, out: &mut [Vec<f32>], max_frames: usize) -> Result<usize> {
        assert_eq!(out.len(), self.packet.len(), "one Vec per channel");
        let mut total = 0;
        while total < max_frames {
            let available = self.packet.first().map_or(0, Vec::len) - self.delivered;
            if available == 0 {
                if self.ended || !guarded(|| self.next_packet())? {
                    break;
                }
                continue;
            }
            let n = available.min(max_frames - total);
            for (dst, src) in out.iter_mut().zip(&self.packet) {
                dst.extend_from_slice(&src[self.delivered..self.delivered + n]);
            }
            self.delivered += n;
            total += n;
        }
        Ok(total)
    }

    fn open_unguarded(
        source: Box<dyn MediaSource>,
        extension: Option<&str>,
    ) -> Result<AudioReader> {
        let mut hint = Hint::new();
        if let Some(ext) = extension {
            hint.with_extension(ext);
        }
        let byte_len = source.byte_len();
        let stream = MediaSourceStream::new(source, Default::default());
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                stream,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymphoniaError::Unsupported(what) => Error::Unsupported(what.to_string()),
                SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Error::Corrupt(format!("the file ends inside its header ({e})"))
                }
                other => Error::Corrupt(other.to_string()),
            })?;

        let track = format
            .default_track(TrackType::Audio)
            .ok_or(Error::NoAudio)?;
        let track_id = track.id;
        let expected_frames = track.num_frames;
        let declared_end = track.duration.map(|d| d.get());
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or(Error::NoAudio)?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| Error::Unsupported(e.to_string()))?;
        let sample_rate = params.sample_rate.unwrap_or(0);
        let mut reader = AudioReader {
            format,
            decoder,
            track_id,
            expected_frames,
            declared_end,
            sample_rate,
            packet: Vec::new(),
            delivered: 0,
            failed_packets: 0,
            first_failure: String::new(),
            stream_end: 0,
            decoded: 0,
            ended: false,
            reserve: 0,
        };
        // The first packet tells the channel count and rate.
        if !reader.next_packet()? {
            return Err(Error::Corrupt("no audio could be decoded".into()));
        }
        if reader.sample_rate == 0 {
            return Err(Error::Corrupt(
                "the stream does not state its sample rate".into(),
            ));
        }
        // What `Audio::new` refuses, refused before any further decoding.
        Audio::new(reader.sample_rate, vec![Vec::new(); reader.num_channels()])?;
        reader.reserve = initial_capacity(expected_frames, byte_len, reader.num_channels());
        Ok(reader)
    }

    /// Decodes the next packet of the track into `packet`; false at the end of the stream,
    /// after the length checks.
    fn next_packet(&mut self) -> Result<bool> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                // End of stream; a cut-off stream is caught by the length check.
                Ok(None) | Err(SymphoniaError::ResetRequired) => return self.end(),
                Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return self.end();
                }
                Err(SymphoniaError::IoError(e)) => return Err(Error::Read(e)),
                Err(other) => return Err(Error::Corrupt(other.to_string())),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let packet_end = u64::try_from(packet.pts.get())
                .unwrap_or(0)
                .saturating_add(packet.dur.get());
            self.stream_end = self.stream_end.max(packet_end);
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    let spec = buf.spec();
                    let n_channels = spec.channels().count();
                    if self.packet.is_empty() {
                        if n_channels == 0 {
                            return Err(Error::NoAudio);
                        }
                        self.sample_rate = spec.rate();
                    } else if n_channels != self.packet.len() || spec.rate() != self.sample_rate {
                        return Err(Error::Corrupt(
                            "the channel count or sample rate changes mid-stream".into(),
                        ));
                    }
                    buf.copy_to_vecs_planar(&mut self.packet);
                    self.delivered = 0;
                    let frames = self.packet.first().map_or(0, Vec::len);
                    self.decoded += frames as u64;
                    if frames > 0 {
                        return Ok(true);
                    }
                }
                // A packet that fails to decode is skipped and counted; the file is then
                // reported as corrupt rather than returned with a hole in it.
                Err(SymphoniaError::DecodeError(what)) => self.failed(what.to_string()),
                Err(SymphoniaError::IoError(e)) => self.failed(e.to_string()),
                Err(other) => return Err(Error::Corrupt(other.to_string())),
            }
        }
    }

    fn failed(&mut self, what: String) {
        self.failed_packets += 1;
        if self.first_failure.is_empty() {
            self.first_failure = what;
        }
    }

    /// The checks at the end of the stream: false when they pass.
    fn end(&mut self) -> Result<bool> {
        self.ended = true;
        let decoded = self.decoded;
        let reached_end = self.declared_end.is_some_and(|end| self.stream_end >= end);
        if let Some(expected) = self.expected_frames
            && decoded < expected
            && !reached_end
        {
            return Err(Error::Truncated { expected, decoded });
        }
        if self.failed_packets > 0 {
            return Err(Error::Corrupt(format!(
                "{} packet(s) could not be decoded (first: {})",
                self.failed_packets, self.first_failure
            )));
        }
        if let Some(expected) = self.expected_frames
            && decoded < expected
        {
            return Err(Error::Corrupt(format!(
                "{} of the {expected} frames the header declares are missing: damaged data \
                 in the middle of the stream was skipped",
                expected - decoded
            )));
        }
        Ok(false)
    }
}

/// Runs `f`, turning a panic of symphonia into corrupt input: it can panic on malformed data
/// (fuzzing found an arithmetic overflow in its WAV `fmt ` parser, which panics where overflow
/// checks are on).
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = crate::error::panic_message(&*payload).unwrap_or_default();
        Err(Error::Corrupt(format!(
            "the decoder failed on malformed data ({what})"
        )))
    })
}

/// Capacity to reserve per channel: the declared length when it is plausible, so a header that
/// claims an absurd size cannot trigger a giant allocation before any audio is read.
///
/// Plausible is at most one sample (of all channels together) per byte of the source, or 1 Mi
/// samples in all when that is more or the source's length is unknown: exact for PCM and FLAC,
/// and for a few kilobytes that claim gigabytes, a few megabytes. A stream longer than what was
/// reserved (very compressible FLAC, low-bitrate MP3) still decodes; its buffers just grow.
fn initial_capacity(expected_frames: Option<u64>, byte_len: Option<u64>, channels: usize) -> usize {
    const MIN_RESERVE: u64 = 1 << 20;
    let plausible = byte_len.unwrap_or(0).max(MIN_RESERVE) / channels.max(1) as u64;
    expected_frames.map_or(0, |n| {
        usize::try_from(n.min(plausible)).unwrap_or(usize::MAX)
    })
}
