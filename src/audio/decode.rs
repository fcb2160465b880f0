//! Decoding any format symphonia's enabled features know into planar `f32`.

use std::fs;
use std::io;
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
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
    let file = fs::File::open(path).map_err(Error::Read)?;
    let extension = path.extension().and_then(|e| e.to_str());
    decode(Box::new(file), extension)
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
    // symphonia can panic on malformed data (fuzzing found an arithmetic overflow in its WAV
    // `fmt ` parser, which panics where overflow checks are on): that is corrupt input too.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_unguarded(source, extension)
    }))
    .unwrap_or_else(|payload| {
        let what = crate::error::panic_message(&*payload).unwrap_or_default();
        Err(Error::Corrupt(format!(
            "the decoder failed on malformed data ({what})"
        )))
    })
}

fn decode_unguarded(source: Box<dyn MediaSource>, extension: Option<&str>) -> Result<Audio> {
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(ext);
    }
    let byte_len = source.byte_len();
    let stream = MediaSourceStream::new(source, Default::default());
    let mut format = symphonia::default::get_probe()
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
    // The declared length in time-base units, the units of packet timestamps.
    let declared_end = track.duration.map(|d| d.get());
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(Error::NoAudio)?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| Error::Unsupported(e.to_string()))?;

    let mut sample_rate = params.sample_rate;
    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut packet_buf: Vec<Vec<f32>> = Vec::new();
    let mut failed_packets = 0usize;
    let mut first_failure = String::new();
    // Where the last packet the demuxer delivered ends: a stream that reached its declared end
    // but decoded fewer frames had damaged data skipped in the middle; it is not truncated.
    let mut stream_end = 0u64;

    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            // End of stream; a cut-off stream is caught by the length check below.
            Ok(None) | Err(SymphoniaError::ResetRequired) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::IoError(e)) => return Err(Error::Read(e)),
            Err(other) => return Err(Error::Corrupt(other.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let packet_end = u64::try_from(packet.pts.get())
            .unwrap_or(0)
            .saturating_add(packet.dur.get());
        stream_end = stream_end.max(packet_end);
        match decoder.decode(&packet) {
            Ok(buf) => {
                let spec = buf.spec();
                let n_channels = spec.channels().count();
                if channels.is_empty() {
                    if n_channels == 0 {
                        return Err(Error::NoAudio);
                    }
                    sample_rate = Some(spec.rate());
                    let reserve = initial_capacity(expected_frames, byte_len, n_channels);
                    channels = vec![Vec::with_capacity(reserve); n_channels];
                } else if n_channels != channels.len() || Some(spec.rate()) != sample_rate {
                    return Err(Error::Corrupt(
                        "the channel count or sample rate changes mid-stream".into(),
                    ));
                }
                buf.copy_to_vecs_planar(&mut packet_buf);
                for (dst, src) in channels.iter_mut().zip(&packet_buf) {
                    dst.extend_from_slice(src);
                }
            }
            // A packet that fails to decode is skipped and counted; the file is then reported
            // as corrupt rather than returned with a hole in it.
            Err(SymphoniaError::DecodeError(what)) => {
                failed_packets += 1;
                if first_failure.is_empty() {
                    first_failure = what.to_string();
                }
            }
            Err(SymphoniaError::IoError(e)) => {
                failed_packets += 1;
                if first_failure.is_empty() {
                    first_failure = e.to_string();
                }
            }
            Err(other) => return Err(Error::Corrupt(other.to_string())),
        }
    }

    let decoded = channels.first().map_or(0, Vec::len) as u64;
    let reached_end = declared_end.is_some_and(|end| stream_end >= end);
    if let Some(expected) = expected_frames
        && decoded < expected
        && !reached_end
    {
        return Err(Error::Truncated { expected, decoded });
    }
    if failed_packets > 0 {
        return Err(Error::Corrupt(format!(
            "{failed_packets} packet(s) could not be decoded (first: {first_failure})"
        )));
    }
    if let Some(expected) = expected_frames
        && decoded < expected
    {
        return Err(Error::Corrupt(format!(
            "{} of the {expected} frames the header declares are missing: damaged data \
                 in the middle of the stream was skipped",
            expected - decoded
        )));
    }
    if channels.is_empty() {
        return Err(Error::Corrupt("no audio could be decoded".into()));
    }
    let sample_rate = sample_rate.filter(|&r| r > 0).ok_or(Error::Corrupt(
        "the stream does not state its sample rate".into(),
    ))?;
    Audio::new(sample_rate, channels)
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
