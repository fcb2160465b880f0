//! The separation pipeline: quality on a synthetic mixture, stems that add up to the mix,
//! the stereo image, output format and reproducibility.

use std::path::Path;

use demix::audio::{Audio, OutputFormat, read_audio, write_wav};
use demix::nmf::NmfParams;
use demix::separate::{SeparateParams, analyze, separate};

use crate::common::{best_permutation_sdr, gated_harmonic, max_abs_diff};

const RATE: u32 = 22_050;

/// Two sources with one fixed harmonic spectrum each, in different registers, switched on and
/// off in different rhythms (overlapping part of the time).
fn two_source_mixture() -> (Vec<f32>, Vec<f32>) {
    let low: Vec<f64> = (1..=12).map(|n| 0.4 / n as f64).collect();
    let high: Vec<f64> = [1.0, 0.0, 0.5, 0.0, 0.25, 0.0, 0.12]
        .iter()
        .map(|a| a * 0.3)
        .collect();
    let a = gated_harmonic(RATE, 4.0, 110.0, &low, |t| (t % 0.8) < 0.5);
    let b = gated_harmonic(RATE, 4.0, 659.26, &high, |t| ((t + 0.3) % 0.6) < 0.25);
    (a, b)
}

fn mix(sources: &[&[f32]]) -> Vec<f32> {
    (0..sources[0].len())
        .map(|i| sources.iter().map(|s| s[i]).sum())
        .collect()
}

#[test]
fn two_fixed_spectrum_sources_are_separated_above_15_db_with_default_settings() {
    let (a, b) = two_source_mixture();
    let audio = Audio::new(RATE, vec![mix(&[&a, &b])]).unwrap();
    // Default settings (KL, NNDSVDA, 200 iterations, 2048-point frames, mask power 2), with
    // one component per source.
    let params = SeparateParams {
        nmf: NmfParams::new(2),
        ..Default::default()
    };
    let stems = separate(&audio, &params).unwrap();
    let estimates: Vec<Vec<f32>> = stems.into_iter().map(|s| s.channels[0].clone()).collect();
    let scores = best_permutation_sdr(&[a, b], &estimates);
    for (i, sdr) in scores.iter().enumerate() {
        assert!(
            *sdr >= 15.0,
            "source {i}: SDR {sdr:.1} dB (all: {scores:?})"
        );
    }
}

#[test]
fn stems_sum_back_to_the_stereo_input() {
    let (a, b) = two_source_mixture();
    let left = mix(&[&a, &b.iter().map(|x| 0.3 * x).collect::<Vec<_>>()]);
    let right = mix(&[&a.iter().map(|x| 0.2 * x).collect::<Vec<_>>(), &b]);
    let audio = Audio::new(RATE, vec![left, right]).unwrap();
    let params = SeparateParams {
        nmf: NmfParams::new(4).with_max_iter(50),
        ..Default::default()
    };
    let stems = separate(&audio, &params).unwrap();
    assert_eq!(stems.len(), 4);
    for c in 0..2 {
        let sum: Vec<f32> = (0..audio.len())
            .map(|i| stems.iter().map(|s| s.channels[c][i]).sum())
            .collect();
        let err = max_abs_diff(&sum, &audio.channels[c]);
        assert!(err < 1e-4, "channel {c}: max error {err}");
    }
}

#[test]
fn each_stem_keeps_the_stereo_image() {
    // Source a only on the left, source b only on the right.
    let (a, b) = two_source_mixture();
    let audio = Audio::new(RATE, vec![a.clone(), b.clone()]).unwrap();
    let params = SeparateParams {
        nmf: NmfParams::new(2),
        ..Default::default()
    };
    let stems = separate(&audio, &params).unwrap();
    let energy = |x: &[f32]| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    let mut sides: Vec<f64> = stems
        .iter()
        .map(|s| 10.0 * (energy(&s.channels[0]) / energy(&s.channels[1])).log10())
        .collect();
    sides.sort_by(f64::total_cmp);
    // One stem is at least 12 dB louder on the right, the other on the left (a stem rendered
    // from a mono downmix would be balanced; the residue is the separation's own leakage,
    // about as large as in the mono test above).
    assert!(
        sides[0] < -12.0 && sides[1] > 12.0,
        "left/right balance in dB: {sides:?}"
    );
}

#[test]
fn sources_are_named_in_order_of_energy() {
    let (a, b) = two_source_mixture();
    let loud: Vec<f32> = a.iter().map(|x| 2.0 * x).collect();
    let audio = Audio::new(RATE, vec![mix(&[&loud, &b])]).unwrap();
    let params = SeparateParams {
        nmf: NmfParams::new(2),
        ..Default::default()
    };
    let separation = analyze(&audio, &params, &mut |_| {}).unwrap();
    let names: Vec<&str> = separation.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["source1", "source2"]);
    let stems = separation.render_to_memory(&audio).unwrap();
    let energy = |x: &[f32]| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    assert!(energy(&stems[0].channels[0]) > energy(&stems[1].channels[0]));
}

fn demix(args: &[&str]) -> std::process::Output {
    crate::common::demix(std::path::Path::new("."), args)
}

fn write_input(dir: &Path, name: &str, audio: &Audio) -> String {
    let path = dir.join(name);
    write_wav(&path, audio, OutputFormat::Float32).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_command_writes_one_wav_per_source_with_the_input_format() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_source_mixture();
    let channels = [a.clone(), b.clone(), mix(&[&a, &b])];
    let audio = Audio::new(
        RATE,
        channels
            .iter()
            .map(|c| c.iter().map(|x| 0.5 * x).collect())
            .collect(),
    )
    .unwrap();
    let input = write_input(dir.path(), "three channels.wav", &audio);
    let out = dir.path().join("out");
    let result = demix(&[
        "separate",
        &input,
        "-k",
        "3",
        "--iter",
        "30",
        "--float32",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let track = out.join("three channels");
    let mut names: Vec<String> = std::fs::read_dir(&track)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["source1.wav", "source2.wav", "source3.wav"]);
    let stems: Vec<Audio> = names
        .iter()
        .map(|n| read_audio(track.join(n)).unwrap())
        .collect();
    for stem in &stems {
        assert_eq!(
            (stem.sample_rate, stem.num_channels(), stem.len()),
            (RATE, 3, audio.len())
        );
    }
    for c in 0..3 {
        let sum: Vec<f32> = (0..audio.len())
            .map(|i| stems.iter().map(|s| s.channels[c][i]).sum())
            .collect();
        assert!(max_abs_diff(&sum, &audio.channels[c]) < 1e-4);
    }
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("3 sources in"), "{stdout}");
}

#[test]
fn sixteen_and_twenty_four_bit_output_is_selected_by_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_source_mixture();
    let audio = Audio::new(RATE, vec![mix(&[&a, &b])]).unwrap();
    let input = write_input(dir.path(), "mix.wav", &audio);
    for (flag, bits) in [(None, 16), (Some("--int24"), 24), (Some("--float32"), 32)] {
        let out = dir.path().join(format!("out{bits}"));
        let mut args = vec![
            "separate",
            &input,
            "-k",
            "2",
            "--iter",
            "10",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(flag);
        assert!(demix(&args).status.success());
        let spec = hound::WavReader::open(out.join("mix/source1.wav"))
            .unwrap()
            .spec();
        assert_eq!(spec.bits_per_sample, bits);
    }
}

#[test]
fn clipping_in_integer_output_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // A float input louder than full scale; with one component the stem is the input itself.
    let (a, _) = two_source_mixture();
    let loud: Vec<f32> = a.iter().map(|x| 3.0 * x).collect();
    let input = write_input(
        dir.path(),
        "loud.wav",
        &Audio::new(RATE, vec![loud]).unwrap(),
    );
    let out = dir.path().join("out");
    let result = demix(&[
        "separate",
        &input,
        "-k",
        "1",
        "--iter",
        "5",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("beyond full scale") && stderr.contains("--float32"),
        "no clipping report in: {stderr}"
    );
    let quiet = demix(&[
        "separate",
        &input,
        "-k",
        "1",
        "--iter",
        "5",
        "--float32",
        "--force",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("beyond full scale"));
}

#[test]
fn the_same_input_gives_byte_identical_stems_with_one_or_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_source_mixture();
    let audio = Audio::new(RATE, vec![mix(&[&a, &b]), a.clone()]).unwrap();
    let input = write_input(dir.path(), "mix.wav", &audio);
    let run = |threads: &str, out: &str| {
        let out = dir.path().join(out);
        let result = demix(&[
            "separate",
            &input,
            "--threads",
            threads,
            "-k",
            "3",
            "--iter",
            "40",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(result.status.success());
        (1..=3)
            .map(|i| std::fs::read(out.join(format!("mix/source{i}.wav"))).unwrap())
            .collect::<Vec<_>>()
    };
    let one = run("1", "one");
    assert_eq!(one, run("2", "two"));
    assert_eq!(one, run("2", "again"));
}

#[test]
fn the_shipped_sample_separates_into_its_two_instruments() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mix = read_audio(format!("{root}/samples/mix.flac")).unwrap();
    let bass = read_audio(format!("{root}/samples/bass.flac")).unwrap();
    let lead = read_audio(format!("{root}/samples/lead.flac")).unwrap();
    // The mix is the sample-wise sum of the stems.
    for c in 0..2 {
        let sum: Vec<f32> = (0..mix.len())
            .map(|i| bass.channels[c][i] + lead.channels[c][i])
            .collect();
        assert!(max_abs_diff(&sum, &mix.channels[c]) < 1e-6);
    }
    // Each of the four components (one per note) belongs clearly to one instrument.
    let stems = separate(&mix, &SeparateParams::default()).unwrap();
    let dot = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum::<f64>()
    };
    for stem in &stems {
        let s = &stem.channels[0];
        let to_bass = dot(s, &bass.channels[0])
            / dot(s, s).sqrt()
            / dot(&bass.channels[0], &bass.channels[0]).sqrt();
        let to_lead = dot(s, &lead.channels[0])
            / dot(s, s).sqrt()
            / dot(&lead.channels[0], &lead.channels[0]).sqrt();
        assert!(
            to_bass.max(to_lead) > 0.5 && to_bass.min(to_lead) < 0.05,
            "{to_bass:.3} {to_lead:.3}"
        );
    }
}

#[test]
fn the_shipped_templates_name_the_sample_stems_and_each_is_close_to_its_source() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mix = read_audio(format!("{root}/samples/mix.flac")).unwrap();
    let templates: Vec<_> = ["bass", "lead"]
        .iter()
        .map(|name| demix::Templates::load(format!("{root}/samples/{name}.npz").as_ref()).unwrap())
        .collect();
    let params = SeparateParams {
        nmf: NmfParams::new(0),
        templates,
        ..Default::default()
    };
    let separation = demix::analyze(&mix, &params, &mut |_| {}).unwrap();
    let names: Vec<&str> = separation.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bass", "lead"]);
    let stems = separation.render_to_memory(&mix).unwrap();
    let truth: Vec<Audio> = ["bass", "lead"]
        .iter()
        .map(|name| read_audio(format!("{root}/samples/{name}.flac")).unwrap())
        .collect();
    let scores = demix::evaluate(&truth, &stems, &demix::eval::EvalParams::default()).unwrap();
    for (name, source) in names.iter().zip(&scores.sources) {
        assert!(source.metrics.sdr > 15.0, "{name}: {:?}", source.metrics);
    }
}

#[test]
fn long_recordings_fit_in_blocks_and_still_separate() {
    // 12 s: 517 frames, fitted here in blocks of 256 with templates from a 256-frame sample.
    let (a, b) = two_source_mixture();
    let a: Vec<f32> = a.iter().chain(&a).chain(&a).copied().collect();
    let b: Vec<f32> = b.iter().chain(&b).chain(&b).copied().collect();
    let audio = Audio::new(RATE, vec![mix(&[&a, &b])]).unwrap();
    let params = SeparateParams {
        nmf: NmfParams::new(2),
        max_frames: 256,
        ..Default::default()
    };
    let separation = analyze(&audio, &params, &mut |_| {}).unwrap();
    assert_eq!(separation.nmf.h.dim(), (2, 517));
    let stems = separation.render_to_memory(&audio).unwrap();
    let sum: Vec<f32> = (0..audio.len())
        .map(|i| stems[0].channels[0][i] + stems[1].channels[0][i])
        .collect();
    assert!(max_abs_diff(&sum, &audio.channels[0]) < 1e-4);
    let estimates: Vec<Vec<f32>> = stems.into_iter().map(|s| s.channels[0].clone()).collect();
    let scores = best_permutation_sdr(&[a, b], &estimates);
    assert!(
        scores.iter().all(|&s| s >= 15.0),
        "SDR per source {scores:?}"
    );
}
