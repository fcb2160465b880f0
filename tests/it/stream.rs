//! FLAC output, the report of a single run, standard input, and streamed separation.

use std::fs;
use std::path::Path;

use demix::audio::{OutputFormat, read_audio, write_wav};

use crate::common::{assert_ok, separate, two_tones};

/// Writes a stereo 16-bit test input at `dir/name`.
fn write_input(dir: &Path, name: &str) {
    write_wav(dir.join(name), &two_tones(2, 220.0), OutputFormat::Int16).unwrap();
}

#[test]
fn flac_stems_decode_to_the_samples_of_the_wav_stems() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    for (extra, bits) in [(&[][..], 16), (&["--int24"][..], 24)] {
        let wav = separate(dir.path(), &["x.wav"], &[&["--force"], extra].concat());
        assert_ok(&wav);
        let wavs: Vec<_> = ["source1", "source2"]
            .iter()
            .map(|s| read_audio(dir.path().join(format!("out/x/{s}.wav"))).unwrap())
            .collect();
        let flac = separate(
            dir.path(),
            &["x.wav"],
            &[&["--force", "--flac"], extra].concat(),
        );
        assert_ok(&flac);
        let mut names: Vec<String> = fs::read_dir(dir.path().join("out/x"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["source1.flac", "source2.flac"], "{bits}-bit");
        let input = read_audio(dir.path().join("x.wav")).unwrap();
        let mut sum = vec![vec![0f32; input.len()]; 2];
        for (s, wav) in ["source1", "source2"].iter().zip(&wavs) {
            let path = dir.path().join(format!("out/x/{s}.flac"));
            let bytes = fs::read(&path).unwrap();
            // STREAMINFO: bits per sample (5 bits at byte 20, bit 0 .. byte 21, bits 7-4).
            let bps = (((bytes[20] & 1) << 4) | (bytes[21] >> 4)) + 1;
            assert_eq!(u32::from(bps), bits);
            let flac = read_audio(&path).unwrap();
            assert_eq!(
                &flac, wav,
                "{s}.flac holds the samples of {s}.wav ({bits}-bit)"
            );
            for (acc, c) in sum.iter_mut().zip(&flac.channels) {
                acc.iter_mut().zip(c).for_each(|(a, x)| *a += x);
            }
        }
        // The stems add up to the input, to within the rounding of each stem.
        let step = 2f32.powi(1 - bits as i32);
        for (acc, x) in sum.iter().zip(&input.channels) {
            let worst = acc
                .iter()
                .zip(x)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst <= step + 2f32.powi(-15),
                "sum off by {worst} ({bits}-bit)"
            );
        }
    }
}

#[test]
fn flac_with_float_samples_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["x.wav"], &["--flac", "--float32"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--flac") && stderr.contains("--float32"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists());
}
