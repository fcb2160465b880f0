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

/// Six seconds of stereo at 8 kHz: two gated tones over noise, 750 frames of hop 64.
fn long_mix() -> demix::audio::Audio {
    let rate = 8000;
    let mut rng = crate::common::TestRng::new(7);
    let channels = (0..2)
        .map(|c| {
            (0..6 * rate)
                .map(|i| {
                    let t = i as f32 / rate as f32;
                    let tone = |f: f32| (2.0 * std::f32::consts::PI * f * t).sin();
                    let gate = |p: f32| if (t * p).fract() < 0.5 { 1.0 } else { 0.1 };
                    0.3 * tone(330.0) * gate(1.3) * (1.0 - 0.3 * c as f32)
                        + 0.2 * tone(1250.0) * gate(0.7)
                        + 0.01 * (rng.uniform() as f32 - 0.5)
                })
                .collect()
        })
        .collect();
    demix::audio::Audio::new(rate as u32, channels).unwrap()
}

/// `demix separate` of `long.wav` into `out/long/` as float WAV, with the small STFT, the
/// short fit and the 256-frame blocks the in-memory references of these tests use.
const STREAM_ARGS: [&str; 14] = [
    "separate",
    "long.wav",
    "-o",
    "out",
    "--force",
    "--float32",
    "--n-fft",
    "256",
    "--hop",
    "64",
    "--iter",
    "30",
    "--max-frames",
    "256",
];

/// The stems `demix separate` streamed from the file, as written in float WAV.
fn streamed_stems(dir: &Path, extra: &[&str]) -> Vec<demix::audio::Audio> {
    let mut args = STREAM_ARGS.to_vec();
    args.extend_from_slice(extra);
    let out = crate::common::demix(dir, &args);
    assert_ok(&out);
    let mut names: Vec<_> = fs::read_dir(dir.join("out/long"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names.iter().map(|p| read_audio(p).unwrap()).collect()
}

#[test]
fn a_recording_streamed_in_blocks_gives_the_stems_of_the_one_held_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let audio = long_mix();
    write_wav(dir.path().join("long.wav"), &audio, OutputFormat::Float32).unwrap();
    // 750 frames in blocks of 256: three blocks of activations, templates from a sample.
    for (extra, k, smoothness, groups) in [
        (&["-k", "3"][..], 3, 0.0, None),
        (&["-k", "4", "--smoothness", "0.1"][..], 4, 0.1, None),
        (&["-k", "4", "--sources", "2"][..], 4, 0.0, Some(2)),
    ] {
        let params = demix::SeparateParams {
            stft: demix::spectral::StftParams::new(256).with_hop(64),
            nmf: demix::NmfParams::new(k)
                .with_max_iter(30)
                .with_smoothness(smoothness),
            groups,
            max_frames: 256,
            ..Default::default()
        };
        let in_memory = params.check().unwrap().separate(&audio).unwrap();
        let streamed = streamed_stems(dir.path(), extra);
        assert_eq!(streamed.len(), in_memory.len(), "{extra:?}");
        for (s, m) in streamed.iter().zip(&in_memory) {
            assert_eq!(
                s, m,
                "{extra:?}: the streamed stems are bit for bit those in memory"
            );
        }
        let one_thread = {
            let mut args = vec!["--threads", "1"];
            args.extend_from_slice(extra);
            streamed_stems(dir.path(), &args)
        };
        assert_eq!(one_thread, streamed, "{extra:?}: one thread or all");
    }
}

#[test]
fn a_single_run_reports_its_parameters_fit_time_memory_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["x.wav"], &["--flac", "--json", "run.json"]);
    assert_ok(&out);
    let text = fs::read_to_string(dir.path().join("out/demix-report.json")).unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("run.json")).unwrap(),
        text
    );
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["command"], "separate");
    let file = &report["files"][0];
    assert_eq!(report["files"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&file["input"], &file["status"]),
        (&"x.wav".into(), &"ok".into())
    );
    assert_eq!(file["params"]["components"], 2);
    assert_eq!(file["params"]["container"], "flac");
    assert_eq!(file["components"], 2);
    assert!(file["iterations"].as_u64().unwrap() > 0);
    assert!(file["final_cost"].as_f64().unwrap().is_finite());
    assert!(file["seconds"].as_f64().unwrap() > 0.0);
    let outputs: Vec<(&str, u64)> = file["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["path"].as_str().unwrap(), o["bytes"].as_u64().unwrap()))
        .collect();
    assert_eq!(outputs.len(), 2);
    for (path, bytes) in outputs {
        assert!(
            path.starts_with("x/source") && path.ends_with(".flac"),
            "{path}"
        );
        assert_eq!(
            fs::metadata(dir.path().join("out").join(path))
                .unwrap()
                .len(),
            bytes
        );
    }
    let run = &report["run"];
    assert!(run["seconds"].as_f64().unwrap() > 0.0);
    assert!(run["threads"].as_u64().unwrap() >= 1);
    if cfg!(target_os = "linux") {
        // At least the binary and its buffers, at most the machine.
        let peak = run["peak_memory_bytes"].as_u64().unwrap();
        assert!(peak > 1 << 20 && peak < 1 << 40, "{peak}");
    }
    // --json refuses an existing file (unless --force), before any work.
    let again = separate(dir.path(), &["x.wav"], &["--json", "run.json"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("run.json: already exists"));
}

#[test]
fn a_failed_single_run_leaves_out_empty_but_writes_its_json_report() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("bad.wav"), b"RIFF but not audio").unwrap();
    let out = separate(dir.path(), &["bad.wav"], &["--json", "run.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !dir.path().join("out").exists()
            || fs::read_dir(dir.path().join("out")).unwrap().count() == 0
    );
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(report["files"][0]["status"], "failed");
    assert!(report["files"][0]["error"].as_str().unwrap().len() > 5);
}

/// `demix separate - ARGS...` in `dir` with `input` piped into standard input.
fn separate_stdin(dir: &Path, input: &[u8], args: &[&str]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_demix"))
        .current_dir(dir)
        .args(["separate", "-", "-o", "out"])
        .args(crate::common::FAST)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn standard_input_is_separated_as_the_same_file_would_be() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    assert_ok(&separate(dir.path(), &["x.wav"], &[]));
    let wav = fs::read(dir.path().join("x.wav")).unwrap();
    // As ffmpeg writes WAV to a pipe: the RIFF and data sizes unknown (0xFFFFFFFF).
    let mut piped = wav.clone();
    let data = piped.windows(4).position(|w| w == b"data").unwrap();
    piped[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    piped[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let audio = read_audio(dir.path().join("x.wav")).unwrap();
    let ints: Vec<Vec<i32>> = audio
        .channels
        .iter()
        .map(|c| crate::common::quantize(c, 16))
        .collect();
    let flac = crate::common::flac_bytes(&ints, 16, audio.sample_rate);
    for (input, name) in [(&wav, "plain"), (&piped, "piped"), (&flac, "flac")] {
        let out = separate_stdin(dir.path(), input, &["--name", name]);
        assert_ok(&out);
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .starts_with(&format!("-: 2 sources in out/{name}"))
        );
        for s in ["source1.wav", "source2.wav"] {
            assert_eq!(
                read_audio(dir.path().join("out").join(name).join(s)).unwrap(),
                read_audio(dir.path().join("out/x").join(s)).unwrap(),
                "{name}: {s}"
            );
        }
    }
    // The copy of standard input is gone; the report names the input `-`.
    let mut names: Vec<String> = fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["demix-report.json", "flac", "piped", "plain", "x"]);
    let report = fs::read_to_string(dir.path().join("out/demix-report.json")).unwrap();
    assert!(report.contains("\"input\": \"-\""), "{report}");
}

#[test]
fn standard_input_must_be_the_only_input_and_garbage_on_it_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "x.wav");
    let out = separate(dir.path(), &["-", "x.wav"], &[]);
    crate::common::assert_usage_error(&out, &["- (standard input) must be the only input"]);
    let out = separate(dir.path(), &["x.wav"], &["--name", "y"]);
    crate::common::assert_usage_error(&out, &["--name"]);
    let out = separate_stdin(dir.path(), b"not audio at all", &["--name", "bad"]);
    crate::common::assert_fails(&out, &["-: ", "unsupported"]);
    assert_eq!(fs::read_dir(dir.path().join("out")).unwrap().count(), 0);
    let out = separate_stdin(dir.path(), b"", &[]);
    crate::common::assert_fails(&out, &["-: ", "empty"]);
}

#[test]
fn a_stem_past_the_4_gib_of_a_wav_file_is_refused_before_decoding_suggesting_flac() {
    let dir = tempfile::tempdir().unwrap();
    let audio = two_tones(2, 220.0);
    let ints: Vec<Vec<i32>> = audio
        .channels
        .iter()
        .map(|c| crate::common::quantize(c, 16))
        .collect();
    let mut flac = crate::common::flac_bytes(&ints, 16, audio.sample_rate);
    // STREAMINFO's 36-bit total: 2^31 frames of 16-bit stereo, 8 GiB as WAV.
    flac[21] &= 0xf0;
    flac[22..26].copy_from_slice(&(1u32 << 31).to_be_bytes());
    // A PADDING block of 5 MB after STREAMINFO (no longer the last), so that the file is large
    // enough to be believed: 4.3e9 samples in 5 MB are within FLAC's compression of silence.
    flac[4] &= 0x7f;
    let pad = 5 << 20;
    let mut block = vec![0x81, (pad >> 16) as u8, (pad >> 8) as u8, pad as u8];
    block.resize(4 + pad, 0);
    flac.splice(42..42, block);
    fs::write(dir.path().join("huge.flac"), &flac).unwrap();
    let started = std::time::Instant::now();
    let out = separate(dir.path(), &["huge.flac"], &[]);
    crate::common::assert_fails(&out, &["huge.flac", "8.00 GiB", "4 GiB", "--flac"]);
    assert!(started.elapsed().as_secs() < 60);
    assert!(
        !dir.path().join("out").exists()
            || fs::read_dir(dir.path().join("out")).unwrap().count() == 0
    );
    // 800 million frames fit in 16-bit WAV (3.2 GB), not in 24-bit (4.8 GB).
    let mut args = vec!["--int24"];
    flac[22..26].copy_from_slice(&(800_000_000u32).to_be_bytes());
    fs::write(dir.path().join("long.flac"), &flac).unwrap();
    let out = separate(dir.path(), &["long.flac"], &args);
    crate::common::assert_fails(&out, &["long.flac", "4 GiB", "--flac"]);
    let out = separate(dir.path(), &["long.flac"], &[]);
    crate::common::assert_fails(&out, &["long.flac", "truncated"]);
    // As FLAC, the header passes; the file then turns out truncated.
    args.push("--flac");
    let out = separate(dir.path(), &["long.flac"], &args);
    crate::common::assert_fails(&out, &["long.flac", "truncated"]);
}

#[test]
fn the_spatial_filter_streamed_in_blocks_gives_the_stems_held_in_memory() {
    use demix::sources::{Templates, learn};
    let dir = tempfile::tempdir().unwrap();
    let mix = long_mix();
    write_wav(dir.path().join("long.wav"), &mix, OutputFormat::Float32).unwrap();
    let stft = demix::spectral::StftParams::new(256).with_hop(64);
    // Each source from a second of itself, panned: the low tone left, the high one right.
    let tone = |f: f32, gains: [f32; 2]| {
        let x: Vec<f32> = (0..8000)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * f * i as f32 / 8000.0).sin())
            .collect();
        demix::audio::Audio::new(
            8000,
            gains
                .iter()
                .map(|g| x.iter().map(|v| v * g).collect())
                .collect(),
        )
        .unwrap()
    };
    let nmf = demix::sources::learn_params(2)
        .with_restarts(1)
        .with_max_iter(30);
    let templates: Vec<Templates> = [("low", 330.0, [1.0, 0.7]), ("high", 1250.0, [0.5, 1.0])]
        .iter()
        .map(|(name, f, gains)| {
            let t = learn(name, &[tone(*f, *gains)], &stft, &nmf, &mut |_| {}).unwrap();
            assert!(t.spatial.is_some());
            t.save(&dir.path().join(format!("{name}.npz"))).unwrap();
            t
        })
        .collect();
    let params = demix::SeparateParams {
        stft,
        // As the command line fits learned templates (Itakura-Saito: steps of exponent 1.5).
        nmf: demix::separate::template_fit(demix::NmfParams::new(0).with_loss(templates[0].loss))
            .with_max_iter(30),
        templates,
        max_frames: 256,
        ..Default::default()
    };
    let in_memory = params.check().unwrap().separate(&mix).unwrap();
    for iterations in ["1", "2"] {
        let mut args = STREAM_ARGS.to_vec();
        args.extend(["--source", "low.npz", "--source", "high.npz"]);
        let spatial = params.clone();
        let in_memory = if iterations == "1" {
            in_memory.clone()
        } else {
            demix::SeparateParams {
                spatial_iterations: 2,
                ..spatial
            }
            .check()
            .unwrap()
            .separate(&mix)
            .unwrap()
        };
        args.extend(["--spatial-iterations", iterations]);
        assert_ok(&crate::common::demix(dir.path(), &args));
        for (name, m) in ["low", "high"].iter().zip(&in_memory) {
            let s = read_audio(dir.path().join(format!("out/long/{name}.wav"))).unwrap();
            assert_eq!(&s, m, "{name}, {iterations} re-estimation(s)");
        }
    }
}
