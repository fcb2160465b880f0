//! Decoding through `read_audio` / `decode`: every WAV sample format, written by hand so each
//! header field is controlled; FLAC from `flacenc`; and the write → read round trip of
//! `write_wav`.

use std::io::Cursor;

use demix::Error;
use demix::audio::{Audio, OutputFormat, decode, read_audio, write_wav};

use crate::common::{TestRng, flac_bytes, quantize};

/// The layouts of the WAV `fmt ` chunk that are tested.
#[derive(Debug, Clone, Copy)]
enum WavFormat {
    /// `WAVE_FORMAT_PCM` (1): unsigned 8-bit or signed 16/24/32-bit integers.
    Pcm,
    /// `WAVE_FORMAT_IEEE_FLOAT` (3): 32- or 64-bit floats.
    Float,
    /// `WAVE_FORMAT_EXTENSIBLE` (0xFFFE) with the PCM subformat GUID, and the number of valid
    /// (most significant) bits in each container.
    ExtensiblePcm { valid_bits: u16 },
    /// `WAVE_FORMAT_EXTENSIBLE` with the IEEE float subformat GUID.
    ExtensibleFloat,
}

/// A complete WAV file: RIFF header, `fmt ` chunk for `format`, and a `data` chunk holding
/// `data` (interleaved samples, already encoded), whose declared length is `declared_len` when
/// given (to make a file that claims more data than it has).
fn wav_file(
    format: WavFormat,
    channels: u16,
    rate: u32,
    bits: u16,
    data: &[u8],
    declared_len: Option<u32>,
) -> Vec<u8> {
    let block_align = channels * (bits / 8);
    let mut fmt = Vec::new();
    let tag: u16 = match format {
        WavFormat::Pcm => 1,
        WavFormat::Float => 3,
        WavFormat::ExtensiblePcm { .. } | WavFormat::ExtensibleFloat => 0xFFFE,
    };
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    fmt.extend_from_slice(&block_align.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    match format {
        WavFormat::Pcm => {}
        // WAVEFORMATEX with an empty extension, as most float writers produce.
        WavFormat::Float => fmt.extend_from_slice(&0u16.to_le_bytes()),
        WavFormat::ExtensiblePcm { .. } | WavFormat::ExtensibleFloat => {
            let (valid_bits, subformat) = match format {
                WavFormat::ExtensiblePcm { valid_bits } => (valid_bits, 1u8),
                _ => (bits, 3u8),
            };
            fmt.extend_from_slice(&22u16.to_le_bytes());
            fmt.extend_from_slice(&valid_bits.to_le_bytes());
            // One speaker bit per channel, in the standard order (FL, FR, FC, LFE, BL, BR, ...).
            let mask: u32 = (1u32 << channels) - 1;
            fmt.extend_from_slice(&mask.to_le_bytes());
            // KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT: {0000000X-0000-0010-8000-00AA00389B71}.
            fmt.extend_from_slice(&[
                subformat, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00,
                0x38, 0x9B, 0x71,
            ]);
        }
    }

    // A file cut short still declares its full length, in the RIFF header as in the data chunk.
    let data_len = declared_len.unwrap_or(data.len() as u32);
    let riff_len = 4 + (8 + fmt.len() as u32) + (8 + data_len);
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_len.to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    out.extend_from_slice(&fmt);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Interleaves planar integer samples, each encoded little-endian in `bits / 8` bytes
/// (8-bit samples are unsigned, offset by 128, as WAV stores them).
fn encode_ints(planar: &[Vec<i32>], bits: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..planar[0].len() {
        for channel in planar {
            let v = channel[i];
            match bits {
                8 => out.push((v + 128) as u8),
                16 => out.extend_from_slice(&(v as i16).to_le_bytes()),
                24 => out.extend_from_slice(&v.to_le_bytes()[..3]),
                32 => out.extend_from_slice(&v.to_le_bytes()),
                _ => unreachable!("{bits} bits"),
            }
        }
    }
    out
}

/// Random `bits`-bit integers, with the extremes and zero at the start of every channel, and a
/// different signal in every channel so that a channel mix-up shows.
fn random_ints(rng: &mut TestRng, channels: usize, frames: usize, bits: u32) -> Vec<Vec<i32>> {
    let max = (1i64 << (bits - 1)) - 1;
    let min = -(1i64 << (bits - 1));
    (0..channels)
        .map(|c| {
            let mut v: Vec<i32> = (0..frames)
                .map(|_| (min + (rng.next_u64() % (1u64 << bits)) as i64) as i32)
                .collect();
            v[0] = min as i32;
            v[1] = max as i32;
            v[2] = 0;
            v[3] = c as i32;
            v
        })
        .collect()
}

fn decode_bytes(bytes: Vec<u8>, extension: &str) -> demix::Result<Audio> {
    decode(Box::new(Cursor::new(bytes)), Some(extension))
}

/// The layouts tested for every format: (channels, sample rate).
const LAYOUTS: [(u16, u32); 3] = [(1, 8000), (2, 44100), (6, 96000)];
/// Frames per test file: several packets, and not a multiple of any packet size.
const FRAMES: usize = 5003;

/// Writes random integers of `valid_bits` bits, left-justified in `bits`-bit containers, as
/// `format`, and checks the decoded samples are `v / 2^(valid_bits - 1)` within `tolerance`.
fn check_int_wav(format: WavFormat, bits: u16, valid_bits: u16, tolerance: f64) {
    let mut rng = TestRng::new(u64::from(bits) * 1000 + u64::from(valid_bits));
    for (channels, rate) in LAYOUTS {
        let values = random_ints(
            &mut rng,
            usize::from(channels),
            FRAMES,
            u32::from(valid_bits),
        );
        let containers: Vec<Vec<i32>> = values
            .iter()
            .map(|c| c.iter().map(|&v| v << (bits - valid_bits)).collect())
            .collect();
        let bytes = wav_file(
            format,
            channels,
            rate,
            bits,
            &encode_ints(&containers, bits),
            None,
        );
        let audio = decode_bytes(bytes, "wav")
            .unwrap_or_else(|e| panic!("{format:?} {bits}-bit, {channels} ch: {e}"));
        assert_eq!(audio.sample_rate, rate, "{format:?} {bits}-bit");
        assert_eq!(audio.num_channels(), usize::from(channels));
        assert_eq!(audio.len(), FRAMES);
        let scale = f64::from(1u32 << (valid_bits - 1));
        for (c, (got, want)) in audio.channels.iter().zip(&values).enumerate() {
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                let expected = f64::from(w) / scale;
                assert!(
                    (f64::from(g) - expected).abs() <= tolerance,
                    "{format:?} {bits}-bit ({valid_bits} valid), {channels} ch at {rate} Hz: \
                     channel {c} sample {i} is {g}, expected {expected}"
                );
            }
        }
    }
}

#[test]
fn wav_8_bit_unsigned_decodes_centred_on_128() {
    // (v - 128) / 128 is exact in f32: 0 -> -1.0, 255 -> 127/128.
    check_int_wav(WavFormat::Pcm, 8, 8, 0.0);
}

#[test]
fn wav_16_bit_decodes_as_value_over_32768() {
    check_int_wav(WavFormat::Pcm, 16, 16, 0.0);
}

#[test]
fn wav_24_bit_decodes_as_value_over_2_pow_23() {
    check_int_wav(WavFormat::Pcm, 24, 24, 0.0);
}

#[test]
fn wav_32_bit_integer_decodes_within_f32_precision() {
    // 32-bit values do not all fit in f32's 24-bit mantissa: half an ulp below 1.0 is 2^-25.
    check_int_wav(WavFormat::Pcm, 32, 32, 2f64.powi(-25));
}

#[test]
fn wav_extensible_pcm_decodes_every_container_size() {
    for bits in [8, 16, 24] {
        check_int_wav(
            WavFormat::ExtensiblePcm { valid_bits: bits },
            bits,
            bits,
            0.0,
        );
    }
    check_int_wav(
        WavFormat::ExtensiblePcm { valid_bits: 32 },
        32,
        32,
        2f64.powi(-25),
    );
}

#[test]
fn wav_extensible_pcm_with_fewer_valid_bits_keeps_the_container_scale() {
    // 20 valid bits left-justified in 24-bit containers, as 20-bit recorders write them.
    check_int_wav(WavFormat::ExtensiblePcm { valid_bits: 20 }, 24, 20, 0.0);
}

/// Random floats in [-1, 1) plus values a float file may hold: beyond full scale, tiny,
/// subnormal, signed zero.
fn random_floats(rng: &mut TestRng, channels: usize, frames: usize) -> Vec<Vec<f64>> {
    (0..channels)
        .map(|c| {
            let mut v: Vec<f64> = (0..frames).map(|_| rng.uniform() * 2.0 - 1.0).collect();
            let special = [1.0, -1.0, 1.5, -3.25, 1e-30, 1e-40, -0.0, c as f64];
            v[..special.len()].copy_from_slice(&special);
            v
        })
        .collect()
}

fn encode_floats(planar: &[Vec<f64>], bits: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..planar[0].len() {
        for channel in planar {
            match bits {
                32 => out.extend_from_slice(&(channel[i] as f32).to_le_bytes()),
                64 => out.extend_from_slice(&channel[i].to_le_bytes()),
                _ => unreachable!("{bits} bits"),
            }
        }
    }
    out
}

/// Writes random floats as `format` with `bits` bits and checks they decode to the nearest
/// f32 (exactly the stored value for 32-bit files), out-of-range values included.
fn check_float_wav(format: WavFormat, bits: u16) {
    let mut rng = TestRng::new(u64::from(bits));
    for (channels, rate) in LAYOUTS {
        let values = random_floats(&mut rng, usize::from(channels), FRAMES);
        let bytes = wav_file(
            format,
            channels,
            rate,
            bits,
            &encode_floats(&values, bits),
            None,
        );
        let audio = decode_bytes(bytes, "wav")
            .unwrap_or_else(|e| panic!("{format:?} {bits}-bit, {channels} ch: {e}"));
        assert_eq!(audio.sample_rate, rate);
        assert_eq!(audio.num_channels(), usize::from(channels));
        assert_eq!(audio.len(), FRAMES);
        for (c, (got, want)) in audio.channels.iter().zip(&values).enumerate() {
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                // Rounding an f64 to f32 moves it by at most half an ulp of the result (and
                // by half the smallest subnormal in the subnormal range).
                let tolerance =
                    f64::from(f32::EPSILON) / 2.0 * w.abs() + f64::from(f32::from_bits(1)) / 2.0;
                assert!(
                    (f64::from(g) - w).abs() <= tolerance,
                    "{format:?} {bits}-bit, {channels} ch at {rate} Hz: channel {c} sample {i} \
                     is {g:e}, expected {w:e}"
                );
                if bits == 32 {
                    assert_eq!(g.to_bits(), (w as f32).to_bits(), "bit-exact f32");
                }
            }
        }
    }
}

#[test]
fn wav_32_bit_float_decodes_bit_exact_including_values_beyond_full_scale() {
    check_float_wav(WavFormat::Float, 32);
}

#[test]
fn wav_64_bit_float_decodes_to_the_nearest_f32() {
    check_float_wav(WavFormat::Float, 64);
}

#[test]
fn wav_extensible_float_decodes_32_and_64_bit() {
    check_float_wav(WavFormat::ExtensibleFloat, 32);
    check_float_wav(WavFormat::ExtensibleFloat, 64);
}

#[test]
fn read_audio_of_a_file_equals_decode_of_its_bytes() {
    let values = random_ints(&mut TestRng::new(7), 2, FRAMES, 16);
    let bytes = wav_file(
        WavFormat::Pcm,
        2,
        22050,
        16,
        &encode_ints(&values, 16),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pair.wav");
    std::fs::write(&path, &bytes).unwrap();
    let from_file = read_audio(&path).unwrap();
    assert_eq!(from_file, decode_bytes(bytes, "wav").unwrap());
    assert_eq!(
        (from_file.sample_rate, from_file.num_channels()),
        (22050, 2)
    );
}

#[test]
fn read_audio_names_the_file_system_problem() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read_audio(dir.path().join("absent.wav")),
        Err(Error::NotFound)
    ));
    assert!(matches!(read_audio(dir.path()), Err(Error::IsDirectory)));
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(read_audio(&empty), Err(Error::EmptyFile)));
}

#[test]
fn wav_whose_data_chunk_claims_more_bytes_than_present_is_truncated() {
    let values = random_ints(&mut TestRng::new(8), 1, 4000, 16);
    let data = encode_ints(&values, 16);
    let bytes = wav_file(WavFormat::Pcm, 1, 8000, 16, &data, Some(2 * 8000));
    match decode_bytes(bytes, "wav") {
        Err(Error::Truncated { expected, decoded }) => {
            assert_eq!(expected, 8000);
            assert!(decoded < 8000, "decoded {decoded}");
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

/// Quantized test signal for FLAC: a tone plus noise, a different one per channel.
fn flac_signal(channels: usize, frames: usize, rate: u32, bits: u32) -> Vec<Vec<i32>> {
    let mut rng = TestRng::new(u64::from(bits) + u64::from(rate));
    (0..channels)
        .map(|c| {
            let f = 220.0 * (c + 1) as f32;
            let x: Vec<f32> = (0..frames)
                .map(|i| {
                    let t = i as f32 / rate as f32;
                    0.6 * (2.0 * std::f32::consts::PI * f * t).sin() + 0.3 * rng.signed()
                })
                .collect();
            quantize(&x, bits)
        })
        .collect()
}

fn check_flac(bits: u32) {
    for (channels, rate) in LAYOUTS {
        // Not a multiple of the 4096-sample block size, so the last block is short.
        let frames = 10_001;
        let values = flac_signal(usize::from(channels), frames, rate, bits);
        let bytes = flac_bytes(&values, bits as usize, rate);
        let audio = decode_bytes(bytes, "flac")
            .unwrap_or_else(|e| panic!("{bits}-bit FLAC, {channels} ch: {e}"));
        assert_eq!(audio.sample_rate, rate);
        assert_eq!(audio.num_channels(), usize::from(channels));
        assert_eq!(audio.len(), frames);
        let scale = (1i64 << (bits - 1)) as f32;
        for (c, (got, want)) in audio.channels.iter().zip(&values).enumerate() {
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                assert_eq!(
                    g,
                    w as f32 / scale,
                    "{bits}-bit FLAC, {channels} ch: channel {c} sample {i}"
                );
            }
        }
    }
}

#[test]
fn flac_16_bit_decodes_exactly_to_the_quantized_values() {
    check_flac(16);
}

#[test]
fn flac_24_bit_decodes_exactly_to_the_quantized_values() {
    check_flac(24);
}

#[test]
fn flac_cut_anywhere_in_its_frames_is_truncated() {
    let values = flac_signal(2, 20_000, 8000, 16);
    let bytes = flac_bytes(&values, 16, 8000);
    let len = bytes.len();
    for cut in [len / 5, len / 2, len * 9 / 10, len - 3, len - 1] {
        match decode_bytes(bytes[..cut].to_vec(), "flac") {
            Err(Error::Truncated { expected, decoded }) => {
                assert_eq!(expected, 20_000);
                assert!(decoded < 20_000, "cut at {cut} of {len}: decoded {decoded}");
            }
            other => panic!("cut at {cut} of {len}: expected Truncated, got {other:?}"),
        }
    }
}

/// Regression: a FLAC file with damaged frames in the middle was reported as truncated ("the
/// header declares 8000 frames but only 3904 could be decoded"), since the demuxer drops a frame
/// whose checksum fails; the file is complete, and corrupt.
#[test]
fn flac_with_damaged_frames_in_the_middle_is_corrupt_not_truncated() {
    let values = flac_signal(2, 20_000, 8000, 16);
    let bytes = flac_bytes(&values, 16, 8000);
    let len = bytes.len();
    for at in [len / 4, len / 2, len * 3 / 4] {
        let mut damaged = bytes.clone();
        for i in (at..at + 64).step_by(8) {
            damaged[i] ^= 0xA5;
        }
        match decode_bytes(damaged, "flac") {
            Err(Error::Corrupt(what)) => assert!(!what.is_empty()),
            other => panic!("damage at {at} of {len}: expected Corrupt, got {other:?}"),
        }
    }
}

/// A test signal for the writer: in range, with exact full-scale negatives, plus samples
/// beyond full scale at known places. Returns the signal and the number of out-of-range samples.
fn writer_signal(channels: usize, frames: usize) -> (Vec<Vec<f32>>, u64) {
    let mut rng = TestRng::new(11);
    let mut out_of_range = 0;
    let signal = (0..channels)
        .map(|c| {
            let mut v: Vec<f32> = (0..frames).map(|_| 0.99 * rng.signed()).collect();
            // -1.0 is the most negative integer sample, so it fits; +1.0 does not.
            v[0] = -1.0;
            v[1] = 0.0;
            let beyond = [1.0, 1.5, -1.25, 2.0 + c as f32, -7.0];
            v[10..10 + beyond.len()].copy_from_slice(&beyond);
            out_of_range += beyond.len() as u64;
            v
        })
        .collect();
    (signal, out_of_range)
}

#[test]
fn write_wav_integer_formats_round_trip_through_hound_and_count_clipped_samples() {
    let dir = tempfile::tempdir().unwrap();
    for (format, bits) in [(OutputFormat::Int16, 16u32), (OutputFormat::Int24, 24)] {
        let (signal, out_of_range) = writer_signal(2, 3001);
        let audio = Audio::new(44100, signal.clone()).unwrap();
        let path = dir.path().join(format!("int{bits}.wav"));
        let report = write_wav(&path, &audio, format).unwrap();
        assert_eq!(report.clipped, out_of_range, "{format:?}");
        assert_eq!(report.peak, 7.0, "{format:?}");

        let mut reader = hound::WavReader::open(&path).unwrap();
        let spec = reader.spec();
        assert_eq!(spec.sample_format, hound::SampleFormat::Int);
        assert_eq!(u32::from(spec.bits_per_sample), bits);
        assert_eq!((spec.channels, spec.sample_rate), (2, 44100));
        let samples: Vec<i32> = reader.samples::<i32>().map(Result::unwrap).collect();
        assert_eq!(samples.len(), 2 * 3001);
        // quantize() rounds and limits to [-2^(bits-1), 2^(bits-1) - 1], as the writer must.
        let expected: Vec<Vec<i32>> = signal.iter().map(|c| quantize(c, bits)).collect();
        for (i, frame) in samples.chunks(2).enumerate() {
            assert_eq!(
                frame,
                [expected[0][i], expected[1][i]],
                "{format:?} frame {i}"
            );
        }

        // And the library reads back what it wrote.
        let back = read_audio(&path).unwrap();
        let scale = (1i64 << (bits - 1)) as f32;
        for (got, want) in back.channels.iter().zip(&expected) {
            assert!(got.iter().zip(want).all(|(&g, &w)| g == w as f32 / scale));
        }
    }
}

#[test]
fn write_wav_float32_round_trips_exactly_without_clipping() {
    let dir = tempfile::tempdir().unwrap();
    let (signal, _) = writer_signal(3, 2999);
    let audio = Audio::new(96000, signal.clone()).unwrap();
    let path = dir.path().join("float.wav");
    let report = write_wav(&path, &audio, OutputFormat::Float32).unwrap();
    assert_eq!(report.clipped, 0);
    assert_eq!(report.peak, 7.0);

    let mut reader = hound::WavReader::open(&path).unwrap();
    let spec = reader.spec();
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    assert_eq!(spec.bits_per_sample, 32);
    assert_eq!((spec.channels, spec.sample_rate), (3, 96000));
    let samples: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    assert_eq!(samples.len(), 3 * 2999);
    for (i, frame) in samples.chunks(3).enumerate() {
        let want = [signal[0][i], signal[1][i], signal[2][i]];
        assert_eq!(frame, want, "frame {i}");
    }
    assert_eq!(read_audio(&path).unwrap(), audio);
}

#[test]
fn write_wav_leaves_no_temporary_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let audio = Audio::new(8000, vec![vec![0.25; 100]]).unwrap();
    write_wav(dir.path().join("a.wav"), &audio, OutputFormat::Int16).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.wav"]);
}
