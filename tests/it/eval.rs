//! `demix eval` against the reference implementations, and every rejected input.
//!
//! `tests/data/eval/{mono,stereo}` hold references and estimates (float32 WAV) and the scores
//! mir_eval 0.8.2 and museval 0.4.1 compute for them (`scores.json`), made by
//! `scripts/make_eval_fixture.py` (its docstring describes the cases); these tests need no
//! Python. Every figure must agree within 0.01 dB: each window's SDR, SIR, SAR and ISR of
//! museval's v4, museval's per-source medians, mir_eval's v3, the assignments chosen with
//! `--permute`, and SI-SDR.

use std::fs;
use std::path::{Path, PathBuf};

use demix::audio::{Audio, OutputFormat, read_audio, write_wav};
use demix::error::{EvalError, Property, Side};
use demix::eval::{EvalParams, Metrics, Mode, Scores, evaluate, si_sdr};
use serde_json::Value;

use crate::common::{
    TestRng, assert_fails, assert_ok, assert_usage_error, demix, flac_bytes, quantize,
};

/// Largest accepted difference from mir_eval and museval, in dB.
const TOLERANCE_DB: f64 = 0.01;

fn fixture_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/eval")
        .join(case)
}

/// The fixture's scores, and its references and estimates in the order of its `sources`.
fn fixture(case: &str) -> (Value, Vec<Audio>, Vec<Audio>) {
    let dir = fixture_dir(case);
    let scores: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("scores.json")).unwrap()).unwrap();
    let names: Vec<String> = scores["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let read = |sub: &str| -> Vec<Audio> {
        names
            .iter()
            .map(|n| read_audio(dir.join(sub).join(format!("{n}.wav"))).unwrap())
            .collect()
    };
    (scores.clone(), read("ref"), read("est"))
}

/// The largest difference seen per metric, printed at the end of a test.
#[derive(Default)]
struct Agreement {
    worst: Vec<(String, f64)>,
}

impl Agreement {
    /// Checks one figure: equal within the tolerance, or NaN where the reference is null.
    #[track_caller]
    fn check(&mut self, what: &str, metric: &str, got: f64, want: &Value) {
        match want.as_f64() {
            None => assert!(
                got.is_nan() || got.is_infinite(),
                "{what} {metric}: {got}, expected NaN"
            ),
            Some(want) => {
                let delta = (got - want).abs();
                assert!(
                    delta <= TOLERANCE_DB,
                    "{what} {metric}: demix {got}, reference {want} (|Δ| = {delta:.2e} dB)"
                );
                match self.worst.iter_mut().find(|(m, _)| m == metric) {
                    Some((_, worst)) => *worst = worst.max(delta),
                    None => self.worst.push((metric.to_string(), delta)),
                }
            }
        }
    }

    fn report(&self, what: &str) {
        let parts: Vec<String> = self
            .worst
            .iter()
            .map(|(m, d)| format!("{m} {d:.1e}"))
            .collect();
        eprintln!("{what}: max |Δ| in dB: {}", parts.join(", "));
    }
}

fn metric(m: &Metrics, name: &str) -> f64 {
    match name {
        "sdr" => m.sdr,
        "sir" => m.sir,
        "sar" => m.sar,
        "isr" => m.isr.expect("ISR applies"),
        _ => unreachable!(),
    }
}

/// Compares every window and every per-source median with museval's `expected`.
fn assert_matches_museval(case: &str, scores: &Scores, expected: &Value, names: &[&str]) {
    let mut agreement = Agreement::default();
    for (j, source) in scores.sources.iter().enumerate() {
        let frames = expected["frames"]["sdr"][j].as_array().unwrap().len();
        assert_eq!(source.frames.len(), frames, "{case}: windows of source {j}");
        for name in ["sdr", "sir", "sar", "isr"] {
            for (t, frame) in source.frames.iter().enumerate() {
                let what = format!("{case} {} window {t}", names[j]);
                agreement.check(
                    &what,
                    name,
                    metric(frame, name),
                    &expected["frames"][name][j][t],
                );
            }
            let what = format!("{case} {} median", names[j]);
            // museval rounds its medians to 1e-5 dB.
            agreement.check(
                &what,
                &format!("{name} (median)"),
                metric(&source.metrics, name),
                &expected["median"][name][j],
            );
        }
    }
    agreement.report(&format!("{case} v4 against museval"));
}

/// Compares the whole-signal figures with mir_eval's `expected`.
fn assert_matches_mir_eval(case: &str, scores: &Scores, expected: &Value) {
    let mut agreement = Agreement::default();
    for (j, source) in scores.sources.iter().enumerate() {
        let what = format!("{case} source {j}");
        for name in ["sdr", "sir", "sar"] {
            agreement.check(
                &what,
                name,
                metric(&source.metrics, name),
                &expected[name][j],
            );
        }
        if expected["isr"].is_null() {
            assert_eq!(source.metrics.isr, None, "bss_eval_sources has no ISR");
        } else {
            agreement.check(
                &what,
                "isr",
                metric(&source.metrics, "isr"),
                &expected["isr"][j],
            );
        }
    }
    agreement.report(&format!("{case} v3 against mir_eval"));
}

fn v3() -> EvalParams {
    EvalParams::new().with_mode(Mode::V3)
}

#[test]
fn v4_matches_museval_on_the_mono_fixture_window_by_window() {
    let (expected, refs, ests) = fixture("mono");
    let scores = evaluate(&refs, &ests, &EvalParams::new()).unwrap();
    assert_eq!((scores.frames, scores.silent_frames), (4, 2));
    assert_eq!(scores.window, (6000, 6000));
    assert_matches_museval("mono", &scores, &expected["v4"], &["bass", "drums", "lead"]);
}

#[test]
fn both_modes_match_the_python_packages_on_nearly_dependent_tonal_references() {
    // Harmonic partials over a noise floor: the Gram matrix's condition number is about 1e9.
    let (expected, refs, ests) = fixture("tonal");
    let scores = evaluate(&refs, &ests, &EvalParams::new()).unwrap();
    assert_eq!(scores.loading, 0.0);
    assert_matches_museval("tonal", &scores, &expected["v4"], &["organ", "flute"]);
    let scores = evaluate(&refs, &ests, &v3()).unwrap();
    assert_matches_mir_eval("tonal", &scores, &expected["v3"]);
}

#[test]
fn v4_matches_museval_on_the_stereo_fixture_with_one_and_half_second_windows() {
    let (expected, refs, ests) = fixture("stereo");
    let scores = evaluate(&refs, &ests, &EvalParams::new()).unwrap();
    assert_matches_museval("stereo", &scores, &expected["v4"], &["voice", "guitar"]);
    let half = EvalParams::new().with_window(0.5).with_hop(0.25);
    let scores = evaluate(&refs, &ests, &half).unwrap();
    assert_eq!(scores.window, (4000, 2000));
    assert_matches_museval(
        "stereo (0.5 s)",
        &scores,
        &expected["v4_half"],
        &["voice", "guitar"],
    );
}

#[test]
fn v3_matches_mir_eval_bss_eval_sources_on_the_mono_fixture() {
    let (expected, refs, ests) = fixture("mono");
    let scores = evaluate(&refs, &ests, &v3()).unwrap();
    assert_matches_mir_eval("mono", &scores, &expected["v3"]);
    assert_eq!(scores.median.isr, None);
}

#[test]
fn v3_matches_mir_eval_bss_eval_images_on_the_stereo_fixture() {
    let (expected, refs, ests) = fixture("stereo");
    let scores = evaluate(&refs, &ests, &v3()).unwrap();
    assert_matches_mir_eval("stereo", &scores, &expected["v3"]);
}

/// The fixture's estimates in its `shuffle` order.
fn shuffled(expected: &Value, ests: &[Audio]) -> Vec<Audio> {
    expected["shuffle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| ests[i.as_u64().unwrap() as usize].clone())
        .collect()
}

fn assignment(scores: &Scores) -> Vec<Value> {
    scores.sources.iter().map(|s| s.estimate.into()).collect()
}

#[test]
fn permute_finds_mir_eval_s_assignment_of_shuffled_estimates() {
    for case in ["mono", "stereo", "tonal"] {
        let (expected, refs, ests) = fixture(case);
        let ests = shuffled(&expected, &ests);
        let scores = evaluate(&refs, &ests, &v3().with_permute(true)).unwrap();
        let want = &expected["v3_permuted"];
        assert_eq!(
            assignment(&scores),
            want["perm"].as_array().unwrap().clone(),
            "{case}"
        );
        assert_matches_mir_eval(case, &scores, want);
    }
}

#[test]
fn permute_finds_museval_s_assignment_of_shuffled_estimates() {
    let (expected, refs, ests) = fixture("stereo");
    let ests = shuffled(&expected, &ests);
    let scores = evaluate(&refs, &ests, &EvalParams::new().with_permute(true)).unwrap();
    let want = &expected["v4_permuted"];
    assert_eq!(
        assignment(&scores),
        want["perm"].as_array().unwrap().clone()
    );
    assert_matches_museval("stereo permuted", &scores, want, &["voice", "guitar"]);
}

#[test]
fn si_sdr_matches_the_fixture_and_both_modes_report_it() {
    for case in ["mono", "stereo", "tonal"] {
        let (expected, refs, ests) = fixture(case);
        let mut agreement = Agreement::default();
        for params in [EvalParams::new(), v3()] {
            let scores = evaluate(&refs, &ests, &params).unwrap();
            for (j, s) in scores.sources.iter().enumerate() {
                agreement.check(case, "si_sdr", s.si_sdr, &expected["si_sdr"][j]);
            }
        }
        agreement.report(&format!("{case} SI-SDR against NumPy"));
    }
}

#[test]
fn si_sdr_of_a_scaled_reference_plus_orthogonal_noise_is_its_analytic_value() {
    // s and n orthogonal over both channels: ŝ = a s + b n gives α = a and
    // SI-SDR = 10 log10(a² ‖s‖² / (b² ‖n‖²)), whatever the scale of s.
    let mut rng = TestRng::new(11);
    let len = 4000;
    let s: Vec<Vec<f32>> = (0..2)
        .map(|_| (0..len).map(|_| rng.signed()).collect())
        .collect();
    // n: alternating signs within pairs of samples, made orthogonal to s by Gram–Schmidt.
    let raw: Vec<Vec<f64>> = (0..2)
        .map(|_| (0..len).map(|_| f64::from(rng.signed())).collect())
        .collect();
    let dot = |x: &[Vec<f64>], y: &[Vec<f64>]| -> f64 {
        x.iter()
            .zip(y)
            .flat_map(|(a, b)| a.iter().zip(b))
            .map(|(a, b)| a * b)
            .sum()
    };
    let s64: Vec<Vec<f64>> = s
        .iter()
        .map(|c| c.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let k = dot(&raw, &s64) / dot(&s64, &s64);
    let n: Vec<Vec<f64>> = raw
        .iter()
        .zip(&s64)
        .map(|(r, s)| r.iter().zip(s).map(|(r, s)| r - k * s).collect())
        .collect();
    for (a, b) in [(1.0, 0.1), (0.3, 0.5), (2.0, 0.01)] {
        let est: Vec<Vec<f32>> = s64
            .iter()
            .zip(&n)
            .map(|(s, n)| {
                s.iter()
                    .zip(n)
                    .map(|(s, n)| (a * s + b * n) as f32)
                    .collect()
            })
            .collect();
        let est64: Vec<Vec<f64>> = est
            .iter()
            .map(|c| c.iter().map(|&v| f64::from(v)).collect())
            .collect();
        // The estimate is rounded to f32; the definition is applied to what is stored.
        let alpha = dot(&est64, &s64) / dot(&s64, &s64);
        let residual: Vec<Vec<f64>> = est64
            .iter()
            .zip(&s64)
            .map(|(e, s)| e.iter().zip(s).map(|(e, s)| alpha * s - e).collect())
            .collect();
        let exact = 10.0 * (alpha * alpha * dot(&s64, &s64) / dot(&residual, &residual)).log10();
        let ideal = 10.0 * (a * a * dot(&s64, &s64) / (b * b * dot(&n, &n))).log10();
        let got = si_sdr(
            &Audio::new(8000, s.clone()).unwrap(),
            &Audio::new(8000, est).unwrap(),
        );
        assert!((got - exact).abs() < 1e-9, "a {a} b {b}: {got} vs {exact}");
        assert!(
            (got - ideal).abs() < 1e-3,
            "a {a} b {b}: {got} vs ideal {ideal}"
        );
    }
}

#[test]
fn results_are_bit_identical_with_one_or_two_threads() {
    let (_, refs, ests) = fixture("stereo");
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| evaluate(&refs, &ests, &EvalParams::new().with_permute(true)).unwrap())
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn an_exact_copy_scores_above_100_db_and_a_lone_source_an_infinite_sir() {
    let (_, refs, _) = fixture("mono");
    let one = [refs[1].clone()];
    let scores = evaluate(&one, &one, &v3()).unwrap();
    let m = scores.sources[0].metrics;
    // One source: no interference at all. The copy is its own projection, up to rounding.
    assert_eq!(m.sir, f64::INFINITY);
    assert!(m.sdr > 100.0 && m.sar > 100.0, "{m:?}");
    assert!(scores.sources[0].si_sdr > 100.0);
}

// Rejected inputs, in the library.

fn tone(rate: u32, channels: usize, len: usize, seed: u64) -> Audio {
    let mut rng = TestRng::new(seed);
    Audio::new(
        rate,
        (0..channels)
            .map(|_| (0..len).map(|_| rng.signed() * 0.5).collect())
            .collect(),
    )
    .unwrap()
}

#[test]
fn an_estimate_of_another_length_is_an_error_naming_it() {
    let refs = [tone(8000, 1, 8000, 1), tone(8000, 1, 8000, 2)];
    let ests = [tone(8000, 1, 8000, 3), tone(8000, 1, 7999, 4)];
    let e = evaluate(&refs, &ests, &EvalParams::new()).unwrap_err();
    assert!(matches!(
        e,
        demix::Error::Eval(EvalError::Mismatch {
            side: Side::Estimate,
            index: 1,
            property: Property::Length,
            expected: 8000,
            actual: 7999
        })
    ));
    assert_eq!(
        e.to_string(),
        "estimate 1 has 7999 samples per channel, reference 0 has 8000 samples per channel"
    );
}

#[test]
fn unequal_numbers_of_references_and_estimates_are_an_error() {
    let refs = [tone(8000, 1, 800, 1), tone(8000, 1, 800, 2)];
    let e = evaluate(&refs, &refs[..1], &EvalParams::new()).unwrap_err();
    assert!(matches!(
        e,
        demix::Error::Eval(EvalError::CountMismatch {
            references: 2,
            estimates: 1
        })
    ));
}

#[test]
fn no_sources_are_an_error() {
    let e = evaluate(&[], &[], &EvalParams::new()).unwrap_err();
    assert!(matches!(e, demix::Error::Eval(EvalError::NoSources)));
}

#[test]
fn too_many_sources_to_permute_are_an_error() {
    let refs: Vec<Audio> = (0..10).map(|i| tone(8000, 1, 600, i)).collect();
    let e = evaluate(&refs, &refs, &EvalParams::new().with_permute(true)).unwrap_err();
    assert!(matches!(
        e,
        demix::Error::Eval(EvalError::TooManyToPermute { sources: 10, .. })
    ));
}

#[test]
fn a_window_shorter_than_one_sample_is_an_error() {
    let refs = [tone(8000, 1, 800, 1)];
    let e = evaluate(&refs, &refs, &EvalParams::new().with_window(1e-5)).unwrap_err();
    assert!(matches!(
        e,
        demix::Error::Eval(EvalError::WindowTooShort { .. })
    ));
}

#[test]
fn a_zero_filter_length_is_rejected() {
    let e = EvalParams::new().with_filter_len(0).check().unwrap_err();
    assert!(e.to_string().contains("filter length"));
}

#[test]
fn a_stereo_reference_whose_channels_cancel_counts_as_silent_as_in_museval() {
    // museval sums the channels before looking for silence.
    let x: Vec<f32> = (0..800).map(|i| (i as f32 * 0.1).sin()).collect();
    let minus: Vec<f32> = x.iter().map(|v| -v).collect();
    let refs = [Audio::new(8000, vec![x, minus]).unwrap()];
    let e = evaluate(&refs, &[tone(8000, 2, 800, 1)], &EvalParams::new()).unwrap_err();
    assert!(matches!(
        e,
        demix::Error::Eval(EvalError::Silent {
            side: Side::Reference,
            index: 0
        })
    ));
}

#[test]
fn windows_where_every_reference_is_silent_leave_a_nan_median() {
    // Source 0 is silent in every whole window but one; source 1 in that one: nothing is left.
    let len = 2 * 8000 + 100;
    let mut a = tone(8000, 1, len, 1);
    let mut b = tone(8000, 1, len, 2);
    a.channels[0][..8000].iter_mut().for_each(|v| *v = 0.0);
    b.channels[0][8000..16_000]
        .iter_mut()
        .for_each(|v| *v = 0.0);
    let refs = [a, b];
    let scores = evaluate(&refs, &refs, &EvalParams::new()).unwrap();
    assert_eq!((scores.frames, scores.silent_frames), (2, 2));
    for s in &scores.sources {
        assert!(s.metrics.sdr.is_nan() && s.metrics.sir.is_nan());
        assert!(s.frames.iter().all(|f| f.sar.is_nan()));
    }
    assert!(scores.median.sdr.is_nan());
}

// The command line.

/// Copies a fixture's `ref` and `est` folders into `dir`.
fn copy_fixture(case: &str, dir: &Path) {
    for sub in ["ref", "est"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
        for entry in fs::read_dir(fixture_dir(case).join(sub)).unwrap() {
            let path = entry.unwrap().path();
            fs::copy(&path, dir.join(sub).join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// In a folder of two references and their estimates, changed by `change`, `demix ARGS` fails
/// with one line naming each of `needles`.
#[track_caller]
fn assert_eval_rejects(change: impl FnOnce(&Path), args: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    two_sources(dir.path());
    change(dir.path());
    assert_fails(&demix(dir.path(), args), needles);
}

fn eval_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["eval", "-r", "ref", "-e", "est"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn the_cli_prints_a_table_and_writes_json_of_the_documented_form() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture("mono", dir.path());
    let out = demix(dir.path(), &eval_args(&["--json", "scores.json"]));
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("BSS Eval v4") && stdout.contains("2 silent left out"),
        "{stdout}"
    );
    for name in ["bass", "drums", "lead", "median", "SI-SDR"] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
    let json: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("scores.json")).unwrap()).unwrap();
    let (expected, _, _) = fixture("mono");
    let mut agreement = Agreement::default();
    for (j, name) in ["bass", "drums", "lead"].iter().enumerate() {
        let entry = &json["sources"][name];
        for metric in ["sdr", "sir", "sar", "isr"] {
            let got = entry[metric].as_f64().unwrap();
            agreement.check(name, metric, got, &expected["v4"]["median"][metric][j]);
        }
        assert!(entry["si_sdr"].is_number());
    }
    for metric in ["sdr", "sir", "sar", "isr", "si_sdr"] {
        assert!(json["median"][metric].is_number(), "median {metric}");
    }
    assert_eq!(json["mode"], "v4");

    // v3 of one channel is bss_eval_sources: ISR does not apply, and is null.
    let out = demix(
        dir.path(),
        &eval_args(&["--mode", "v3", "--json", "v3.json"]),
    );
    assert_ok(&out);
    let json: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("v3.json")).unwrap()).unwrap();
    assert!(json["sources"]["bass"]["isr"].is_null());
    assert!(json["median"]["isr"].is_null());
    assert!(json["sources"]["bass"]["sdr"].is_number());
}

#[test]
fn the_cli_matches_differently_named_estimates_with_permute() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture("stereo", dir.path());
    // The separation's names: source1 is the guitar, source2 the voice.
    fs::rename(
        dir.path().join("est/guitar.wav"),
        dir.path().join("est/source1.wav"),
    )
    .unwrap();
    fs::rename(
        dir.path().join("est/voice.wav"),
        dir.path().join("est/source2.wav"),
    )
    .unwrap();
    let out = demix(dir.path(), &eval_args(&["--permute", "--json", "s.json"]));
    assert_ok(&out);
    let json: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("s.json")).unwrap()).unwrap();
    assert!(
        json["sources"]["guitar"]["estimate"]
            .as_str()
            .unwrap()
            .ends_with("source1.wav")
    );
    assert!(
        json["sources"]["voice"]["estimate"]
            .as_str()
            .unwrap()
            .ends_with("source2.wav")
    );
    let (expected, _, _) = fixture("stereo");
    let mut agreement = Agreement::default();
    agreement.check(
        "voice",
        "sdr",
        json["sources"]["voice"]["sdr"].as_f64().unwrap(),
        &expected["v4"]["median"]["sdr"][0],
    );
    agreement.check(
        "guitar",
        "sdr",
        json["sources"]["guitar"]["sdr"].as_f64().unwrap(),
        &expected["v4"]["median"]["sdr"][1],
    );
    // Without --permute the names do not match.
    let out = demix(dir.path(), &eval_args(&[]));
    assert_fails(&out, &["est/guitar.wav", "missing", "ref/guitar.wav"]);
}

#[test]
fn the_cli_evaluates_two_single_files() {
    let dir = fixture_dir("stereo");
    let out = demix(
        &dir,
        &[
            "eval",
            "-r",
            "ref/voice.wav",
            "-e",
            "est/voice.wav",
            "--mode",
            "v3",
        ],
    );
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A lone source has no interference: SIR (the second figure of its row) is infinite.
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("voice "))
        .unwrap_or_else(|| panic!("no row for voice: {stdout}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[2], "inf", "{stdout}");
}

/// Writes `audio` as 32-bit float WAV at `dir/path`.
fn write(dir: &Path, path: &str, audio: &Audio) {
    let path = dir.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_wav(path, audio, OutputFormat::Float32).unwrap();
}

/// ref/{a,b}.wav and est/{a,b}.wav: one second of noise at 8 kHz, mono.
fn two_sources(dir: &Path) {
    for (i, name) in ["a", "b"].iter().enumerate() {
        write(
            dir,
            &format!("ref/{name}.wav"),
            &tone(8000, 1, 8000, i as u64),
        );
        write(
            dir,
            &format!("est/{name}.wav"),
            &tone(8000, 1, 8000, 10 + i as u64),
        );
    }
}

#[test]
fn an_estimate_of_another_length_is_rejected_naming_both_files() {
    assert_eval_rejects(
        |d| {
            write(d, "est/b.wav", &tone(8000, 1, 7000, 3));
        },
        &eval_args(&[]),
        &[
            "est/b.wav",
            "7000 samples per channel",
            "ref/a.wav has 8000",
        ],
    );
}

#[test]
fn an_estimate_at_another_sample_rate_is_rejected() {
    assert_eval_rejects(
        |d| {
            write(d, "est/a.wav", &tone(16_000, 1, 8000, 3));
        },
        &eval_args(&[]),
        &["est/a.wav", "16000 Hz", "8000 Hz"],
    );
}

#[test]
fn an_estimate_with_another_channel_count_is_rejected() {
    assert_eval_rejects(
        |d| {
            write(d, "est/b.wav", &tone(8000, 2, 8000, 3));
        },
        &eval_args(&[]),
        &["est/b.wav", "2 channels", "ref/a.wav has 1 channel"],
    );
}

#[test]
fn references_of_different_lengths_are_rejected() {
    assert_eval_rejects(
        |d| {
            write(d, "ref/b.wav", &tone(8000, 1, 9000, 3));
        },
        &eval_args(&[]),
        &["ref/b.wav", "9000 samples per channel"],
    );
}

#[test]
fn a_silent_reference_is_rejected() {
    assert_eval_rejects(
        |d| {
            write(
                d,
                "ref/a.wav",
                &Audio::new(8000, vec![vec![0.0; 8000]]).unwrap(),
            );
        },
        &eval_args(&[]),
        &["ref/a.wav", "silent", "undefined for a silent reference"],
    );
}

#[test]
fn a_silent_estimate_is_rejected() {
    assert_eval_rejects(
        |d| {
            write(
                d,
                "est/b.wav",
                &Audio::new(8000, vec![vec![0.0; 8000]]).unwrap(),
            );
        },
        &eval_args(&[]),
        &["est/b.wav", "silent", "estimate"],
    );
}

#[test]
fn a_missing_estimate_is_rejected_naming_the_reference() {
    assert_eval_rejects(
        |d| {
            fs::remove_file(d.join("est/b.wav")).unwrap();
        },
        &eval_args(&[]),
        &["est/b.wav", "missing", "ref/b.wav"],
    );
}

#[test]
fn an_estimate_without_a_reference_of_its_name_is_rejected() {
    assert_eval_rejects(
        |d| {
            write(d, "est/c.wav", &tone(8000, 1, 8000, 5));
        },
        &eval_args(&[]),
        &["est/c.wav", "no reference of this name", "--permute"],
    );
}

#[test]
fn permute_with_unequal_numbers_of_files_is_rejected() {
    assert_eval_rejects(
        |d| {
            write(d, "est/c.wav", &tone(8000, 1, 8000, 5));
        },
        &eval_args(&["--permute"]),
        &["est", "3 estimates for 2 references"],
    );
}

#[test]
fn a_missing_reference_folder_is_rejected() {
    assert_eval_rejects(
        |_| {},
        &["eval", "-r", "nothing", "-e", "est"],
        &["nothing", "no such file or folder"],
    );
}

#[test]
fn a_folder_without_wav_files_is_rejected() {
    assert_eval_rejects(
        |d| {
            fs::create_dir(d.join("empty")).unwrap();
        },
        &["eval", "-r", "ref", "-e", "empty"],
        &["empty", "no WAV files"],
    );
}

#[test]
fn a_folder_and_a_file_are_rejected() {
    assert_eval_rejects(
        |_| {},
        &["eval", "-r", "ref", "-e", "est/a.wav"],
        &["est/a.wav", "is a file", "two folders or two files"],
    );
}

#[test]
fn an_estimate_that_is_not_audio_is_rejected() {
    assert_eval_rejects(
        |d| {
            fs::write(d.join("est/a.wav"), b"not a wave file at all").unwrap();
        },
        &eval_args(&[]),
        &["est/a.wav", "unsupported"],
    );
}

#[test]
fn a_nan_sample_in_an_estimate_is_rejected() {
    assert_eval_rejects(
        |d| {
            let mut bad = tone(8000, 1, 8000, 3);
            bad.channels[0][1234] = f32::NAN;
            write(d, "est/a.wav", &bad);
        },
        &eval_args(&[]),
        &["est/a.wav", "sample 1234 of channel 0 is NaN"],
    );
}

/// In a folder of two references and their estimates, `demix ARGS` is refused as a
/// command-line mistake (exit code 2) with one line naming each of `needles`.
#[track_caller]
fn assert_eval_refuses(args: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    two_sources(dir.path());
    assert_usage_error(&demix(dir.path(), args), needles);
}

#[test]
fn a_zero_filter_length_is_rejected_naming_the_flag() {
    assert_eval_refuses(
        &eval_args(&["--filter-len", "0"]),
        &["--filter-len", "at least 1"],
    );
}

#[test]
fn a_negative_window_is_rejected_naming_the_flag() {
    assert_eval_refuses(&eval_args(&["--window=-1"]), &["--window", "above 0"]);
}

#[test]
fn an_unwritable_json_file_is_reported() {
    assert_eval_rejects(
        |_| {},
        &eval_args(&["-q", "--json", "no/such/folder/s.json"]),
        &["no/such/folder/s.json", "cannot write"],
    );
}

// The command line: what a user sees.

/// The lines of a run's stdout.
fn stdout_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Whether stdout has a table row for `name`.
fn has_row(out: &std::process::Output, name: &str) -> bool {
    stdout_lines(out)
        .iter()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn quiet_still_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    two_sources(dir.path());
    let out = demix(dir.path(), &eval_args(&["-q"]));
    assert_ok(&out);
    for name in ["source", "a", "b", "median"] {
        assert!(
            has_row(&out, name),
            "no {name} row: {:?}",
            stdout_lines(&out)
        );
    }
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn folders_of_flac_files_score_as_their_wav_twins() {
    let dir = tempfile::tempdir().unwrap();
    two_sources(dir.path());
    // ref/*.flac (16-bit) beside flac_twin/*.wav holding the same decoded samples.
    fs::create_dir(dir.path().join("flac")).unwrap();
    for name in ["a", "b"] {
        let wav = read_audio(dir.path().join(format!("ref/{name}.wav"))).unwrap();
        let channels: Vec<Vec<i32>> = wav.channels.iter().map(|c| quantize(c, 16)).collect();
        let flac = dir.path().join(format!("flac/{name}.flac"));
        fs::write(&flac, flac_bytes(&channels, 16, wav.sample_rate)).unwrap();
        write(
            dir.path(),
            &format!("twin/{name}.wav"),
            &read_audio(&flac).unwrap(),
        );
    }
    let run = |reference: &str, json: &str| {
        let args = ["eval", "-r", reference, "-e", "est", "--json", json];
        assert_ok(&demix(dir.path(), &args));
        fs::read_to_string(dir.path().join(json)).unwrap()
    };
    assert_eq!(run("flac", "flac.json"), run("twin", "twin.json"));
    // FLAC estimates too.
    let args = ["eval", "-r", "twin", "-e", "flac"];
    let out = demix(dir.path(), &args);
    assert_ok(&out);
    assert!(has_row(&out, "a") && has_row(&out, "b"));
}

#[test]
fn a_wav_and_a_flac_file_of_one_name_are_rejected() {
    assert_eval_rejects(
        |d| {
            let wav = read_audio(d.join("est/a.wav")).unwrap();
            let channels: Vec<Vec<i32>> = wav.channels.iter().map(|c| quantize(c, 16)).collect();
            fs::write(d.join("est/a.flac"), flac_bytes(&channels, 16, 8000)).unwrap();
        },
        &eval_args(&[]),
        &["est/a.wav", "est/a.flac", "same name"],
    );
}

#[test]
fn an_estimate_named_other_without_a_reference_is_left_out_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    two_sources(dir.path());
    write(dir.path(), "est/other.wav", &tone(8000, 1, 8000, 20));
    for extra in [&[][..], &["--permute"][..]] {
        let out = demix(dir.path(), &eval_args(extra));
        assert_ok(&out);
        assert!(has_row(&out, "a") && has_row(&out, "b"));
        assert!(!stdout_lines(&out).iter().any(|l| l.contains("other")));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("est/other.wav") && stderr.contains("left out"),
            "{stderr}"
        );
    }
    // -q hides the note, not the table.
    let out = demix(dir.path(), &eval_args(&["-q"]));
    assert_ok(&out);
    assert!(out.stderr.is_empty() && has_row(&out, "median"));
}

#[test]
fn an_estimate_named_other_is_scored_against_a_reference_named_other() {
    let dir = tempfile::tempdir().unwrap();
    two_sources(dir.path());
    write(dir.path(), "ref/other.wav", &tone(8000, 1, 8000, 20));
    write(dir.path(), "est/other.wav", &tone(8000, 1, 8000, 21));
    let out = demix(dir.path(), &eval_args(&[]));
    assert_ok(&out);
    assert!(has_row(&out, "other"), "{:?}", stdout_lines(&out));
    assert!(out.stderr.is_empty());
}

#[test]
fn json_does_not_replace_an_existing_file_without_force() {
    let dir = tempfile::tempdir().unwrap();
    two_sources(dir.path());
    fs::write(dir.path().join("scores.json"), "keep").unwrap();
    let out = demix(dir.path(), &eval_args(&["--json", "scores.json"]));
    assert_fails(&out, &["scores.json", "already exists", "--force"]);
    assert_eq!(
        fs::read_to_string(dir.path().join("scores.json")).unwrap(),
        "keep"
    );

    let out = demix(
        dir.path(),
        &eval_args(&["--json", "scores.json", "--force"]),
    );
    assert_ok(&out);
    let json: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("scores.json")).unwrap()).unwrap();
    assert!(json["sources"]["a"]["sdr"].is_number());
}

#[test]
fn json_never_replaces_one_of_the_inputs_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    two_sources(dir.path());
    let before = fs::read(dir.path().join("ref/a.wav")).unwrap();
    for target in ["ref/a.wav", "est/b.wav"] {
        let out = demix(dir.path(), &eval_args(&["--json", target, "--force"]));
        assert_fails(&out, &[target, "one of the inputs"]);
    }
    assert_eq!(fs::read(dir.path().join("ref/a.wav")).unwrap(), before);
}

#[test]
fn a_huge_filter_length_is_refused_as_a_command_line_mistake() {
    assert_eval_refuses(
        &eval_args(&["--filter-len", "100000000"]),
        &["--filter-len", "100000000", "at most 4096"],
    );
}
