//! Hostile input to the decoder, then the STFT: headers that claim huge sizes or channel
//! counts, and thousands of seeded mutations and truncations of valid WAV and FLAC files. None
//! may panic, and none may make a giant allocation. (The cargo-fuzz target in `fuzz/` runs the
//! same decode → STFT path on generated input; this test is its stable-Rust counterpart.)

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};

use demix::Error;
use demix::audio::{Audio, decode};
use demix::spectral::{Stft, StftParams};

use crate::alloc::largest_allocation;
use crate::common::{TestRng, flac_bytes, quantize};

/// No single allocation may be larger than this while decoding a hostile file of a few KiB
/// (the fixed part of symphonia's and the STFT's buffers is well below it).
const GIANT: usize = 16 << 20;

/// A 16-bit PCM WAV file of `frames` frames of noise, with the RIFF and data sizes and the
/// channel count as declared (not necessarily as written).
fn wav(channels: u16, frames: usize, declared_data: Option<u32>) -> Vec<u8> {
    let mut rng = TestRng::new(7);
    let data: Vec<u8> = (0..frames * usize::from(channels))
        .flat_map(|_| ((rng.signed() * 8000.0) as i16).to_le_bytes())
        .collect();
    let block_align = 2 * channels;
    let data_len = declared_data.unwrap_or(data.len() as u32);
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&(8000 * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// A FLAC file of half a second of stereo noise at 8 kHz.
fn flac() -> Vec<u8> {
    let mut rng = TestRng::new(11);
    let channels: Vec<Vec<i32>> = (0..2)
        .map(|_| {
            let x: Vec<f32> = (0..4000).map(|_| 0.3 * rng.signed()).collect();
            quantize(&x, 16)
        })
        .collect();
    flac_bytes(&channels, 16, 8000)
}

/// Decodes `bytes`, and if that works, computes the STFT of every channel, as the fuzz target
/// does; returns the decode result and the largest allocation made.
fn decode_then_stft(bytes: &[u8], extension: &str) -> (Result<Audio, Error>, usize) {
    largest_allocation(|| {
        let audio = decode(Box::new(Cursor::new(bytes.to_vec())), Some(extension))?;
        let stft = Stft::new(&StftParams::new(256)).expect("valid");
        for channel in &audio.channels {
            let spectrum = stft.magnitude(channel);
            assert_eq!(spectrum.nrows(), stft.n_frames(channel.len()));
        }
        Ok(audio)
    })
}

#[test]
fn wav_whose_header_claims_4_gib_of_data_is_truncated_without_a_giant_allocation() {
    let bytes = wav(8, 1000, Some(u32::MAX - 100));
    let (result, largest) = decode_then_stft(&bytes, "wav");
    assert!(
        matches!(result, Err(Error::Truncated { decoded: 1000, .. })),
        "{result:?}"
    );
    assert!(largest < GIANT, "largest allocation {largest} bytes");
}

#[test]
fn wav_whose_header_claims_65535_channels_fails_without_a_giant_allocation() {
    let mut bytes = wav(1, 1000, Some(u32::MAX - 100));
    // Channels at byte 22, block align at 32.
    bytes[22..24].copy_from_slice(&u16::MAX.to_le_bytes());
    bytes[32..34].copy_from_slice(&u16::MAX.to_le_bytes());
    let (result, largest) = decode_then_stft(&bytes, "wav");
    assert!(result.is_err(), "{:?}", result.map(|a| a.num_channels()));
    assert!(largest < GIANT, "largest allocation {largest} bytes");
}

#[test]
fn wav_with_a_chunk_that_claims_4_gib_fails_without_a_giant_allocation() {
    // A LIST chunk declaring almost 4 GiB, before the fmt chunk.
    let good = wav(2, 1000, None);
    let mut bytes = good[..12].to_vec();
    bytes.extend_from_slice(b"LIST");
    bytes.extend_from_slice(&(u32::MAX - 8).to_le_bytes());
    bytes.extend_from_slice(b"INFOISFT");
    bytes.extend_from_slice(&good[12..]);
    let (result, largest) = decode_then_stft(&bytes, "wav");
    assert!(result.is_err(), "{:?}", result.map(|a| a.len()));
    assert!(largest < GIANT, "largest allocation {largest} bytes");
}

#[test]
fn flac_whose_streaminfo_claims_2_pow_36_samples_is_truncated_without_a_giant_allocation() {
    let mut bytes = flac();
    // STREAMINFO starts at byte 8; its 36-bit sample count takes the low 4 bits of byte 21
    // and bytes 22..26.
    bytes[21] |= 0x0F;
    bytes[22..26].fill(0xFF);
    let (result, largest) = decode_then_stft(&bytes, "flac");
    assert!(matches!(result, Err(Error::Truncated { .. })), "{result:?}");
    assert!(largest < GIANT, "largest allocation {largest} bytes");
}

#[test]
fn bytes_of_another_kind_are_unsupported() {
    for (bytes, ext) in [
        (
            &b"%PDF-1.7 not audio at all, but named as if it were"[..],
            "wav",
        ),
        (&b"RIFF\x10\0\0\0AVI LIST\0\0\0\0"[..], "wav"),
        (&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], "flac"),
    ] {
        let (result, _) = decode_then_stft(bytes, ext);
        assert!(matches!(result, Err(Error::Unsupported(_))), "{result:?}");
    }
}

/// One seeded mutation of `valid`: flipped bits, overwritten bytes, a cut, an insertion, a
/// 32-bit field set to an extreme, or several of them.
pub(crate) fn mutate(valid: &[u8], rng: &mut TestRng) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    let rounds = 1 + rng.next_u64() % 3;
    for _ in 0..rounds {
        // Mostly in the first 64 bytes, where the headers are.
        let len = bytes.len().max(1);
        let at = if rng.next_u64().is_multiple_of(2) {
            (rng.next_u64() % 64) as usize % len
        } else {
            (rng.next_u64() as usize) % len
        };
        match rng.next_u64() % 6 {
            0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << (rng.next_u64() % 8);
                }
            }
            1 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b = rng.next_u64() as u8;
                }
            }
            2 => bytes.truncate(at),
            3 => {
                let extra: Vec<u8> = (0..rng.next_u64() % 16)
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                bytes.splice(at..at, extra);
            }
            4 => {
                let value: u32 = match rng.next_u64() % 3 {
                    0 => u32::MAX,
                    1 => 0,
                    _ => 1 << (rng.next_u64() % 32),
                };
                let end = (at + 4).min(bytes.len());
                let n = end - at;
                bytes[at..end].copy_from_slice(&value.to_le_bytes()[..n]);
            }
            _ => {
                let end = (at + 1 + (rng.next_u64() % 32) as usize).min(bytes.len());
                bytes[at..end].fill(if rng.next_u64().is_multiple_of(2) {
                    0
                } else {
                    0xFF
                });
            }
        }
    }
    bytes
}

#[test]
fn seeded_mutations_of_valid_wav_and_flac_never_panic_nor_allocate_giant_buffers() {
    let cases = [("wav", wav(2, 2000, None)), ("flac", flac())];
    let per_format = 5000;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for (ext, valid) in &cases {
        let mut rng = TestRng::new(2024);
        for case in 0..per_format {
            let bytes = mutate(valid, &mut rng);
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| decode_then_stft(&bytes, ext)));
            let (result, largest) = match outcome {
                Ok(done) => done,
                Err(_) => panic!(
                    "{ext} case {case} panicked; bytes (hex): {}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ),
            };
            assert!(
                largest < GIANT,
                "{ext} case {case}: allocation of {largest} bytes"
            );
            let kind = match result {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("{e:?}")
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_string(),
            };
            *outcomes.entry(format!("{ext} {kind}")).or_default() += 1;
        }
    }
    // The mutations reach every outcome: clean decodes and each kind of error.
    for ext in ["wav", "flac"] {
        for kind in ["ok", "Corrupt", "Truncated", "Unsupported"] {
            assert!(
                outcomes.contains_key(&format!("{ext} {kind}")),
                "no {ext} case ended {kind}: {outcomes:?}"
            );
        }
    }
}

/// Found by `scripts/fuzz.sh`: a WAV `fmt ` chunk with 65527 channels of 16 bits makes
/// symphonia 0.6.1 compute the block align in 16 bits, which overflows: a panic where overflow
/// checks are on (the fuzzer's build, debug builds), a wrapped value in release builds.
/// Either way decoding must end in an error, not a panic.
#[test]
fn regression_wav_channel_count_that_overflows_symphonias_block_align_is_an_error() {
    let hex =
        "524946462400000057415645666d7420100000000100f7ff3f1f0000803e00003b0010006461746100000000";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let (result, largest) = decode_then_stft(&bytes, "wav");
    assert!(result.is_err(), "{:?}", result.map(|a| a.num_channels()));
    assert!(largest < GIANT);
}
