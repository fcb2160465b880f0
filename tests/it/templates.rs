//! Named stems: templates learned from isolated clips, supervised and semi-supervised
//! separation, the spatial filter, blind grouping, and the penalties and restarts behind them.
//!
//! The instruments are synthesised here: a low "bass" (all harmonics at 1/n, low-passed, plucked
//! decay) and a high "lead" (odd harmonics at 1/n², steady), each playing its own note
//! sequence. The training clips play other melodies in other rhythms over each instrument's
//! register (a scale that contains the mixture's notes and others).

use demix::audio::{Audio, OutputFormat, read_audio, write_wav};
use demix::nmf::{Init, Loss, NmfParams, fit};
use demix::separate::{
    BLIND_SPATIAL_MASK_POWER, DEFAULT_MASK_POWER, SPATIAL_MASK_POWER, SeparateParams, separate,
};
use demix::sources::{Templates, learn};
use demix::spectral::{Stft, StftParams};
use ndarray::Array2;

use crate::common::{
    TestRng, assert_ok, best_permutation_sdr, positive_matrix as random_matrix, sdr,
};

const RATE: u32 = 22_050;

#[derive(Clone, Copy)]
enum Instrument {
    Bass,
    Lead,
}

/// A note sequence: `(start s, length s, MIDI note)`, drawn from `notes` with rhythm `step`.
fn sequence(seed: u64, notes: &[u8], seconds: f64, step: f64, length: f64) -> Vec<(f64, f64, u8)> {
    let mut rng = TestRng::new(seed);
    let mut t = 0.05;
    let mut out = Vec::new();
    while t + length < seconds {
        let note = notes[(rng.next_u64() % notes.len() as u64) as usize];
        out.push((t, length, note));
        t += step * (1.0 + 0.5 * rng.uniform());
    }
    out
}

fn render(instrument: Instrument, notes: &[(f64, f64, u8)], seconds: f64) -> Vec<f32> {
    let len = (seconds * f64::from(RATE)) as usize;
    let mut out = vec![0f64; len];
    for &(start, length, note) in notes {
        let f0 = 440.0 * 2f64.powf((f64::from(note) - 69.0) / 12.0);
        let first = (start * f64::from(RATE)) as usize;
        let count = (length * f64::from(RATE)) as usize;
        for i in 0..count.min(len - first) {
            let t = i as f64 / f64::from(RATE);
            let tail = (length - t).max(0.0);
            let (envelope, partials): (f64, Vec<(f64, f64)>) = match instrument {
                Instrument::Bass => (
                    (-4.0 * t).exp() * (t * 300.0).min(1.0) * (tail * 100.0).min(1.0),
                    (1..=12)
                        .map(|n| {
                            let f = n as f64 * f0;
                            (n as f64, 0.3 / n as f64 / (1.0 + (f / 600.0).powi(2)))
                        })
                        .collect(),
                ),
                Instrument::Lead => (
                    (t * 40.0).min(1.0) * (tail * 40.0).min(1.0),
                    (0..6)
                        .map(|m| ((2 * m + 1) as f64, 0.2 / ((2 * m + 1) as f64).powi(2)))
                        .collect(),
                ),
            };
            let v: f64 = partials
                .iter()
                .filter(|(n, _)| n * f0 < 0.45 * f64::from(RATE))
                .map(|(n, a)| a * (2.0 * std::f64::consts::PI * n * f0 * t).sin())
                .sum();
            out[first + i] += envelope * v;
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}

const BASS_NOTES: [u8; 4] = [33, 36, 40, 43];
const BASS_TRAIN: [u8; 8] = [33, 35, 36, 38, 40, 41, 43, 45];
const LEAD_NOTES: [u8; 4] = [72, 76, 79, 84];
const LEAD_TRAIN: [u8; 8] = [72, 74, 76, 77, 79, 81, 83, 84];

/// `instrument` playing `notes` in the seeded rhythm of `sequence`, `seconds` long.
fn play(
    instrument: Instrument,
    seed: u64,
    notes: &[u8],
    seconds: f64,
    step: f64,
    length: f64,
) -> Vec<f32> {
    render(
        instrument,
        &sequence(seed, notes, seconds, step, length),
        seconds,
    )
}

/// (bass, lead) of the test mixture.
fn mixture_sources() -> (Vec<f32>, Vec<f32>) {
    let bass = play(Instrument::Bass, 1, &BASS_NOTES, 6.0, 0.5, 0.45);
    let lead = play(Instrument::Lead, 2, &LEAD_NOTES, 6.0, 0.7, 0.6);
    (bass, lead)
}

/// Training clips: other notes, other rhythms.
fn training_clips() -> (Vec<f32>, Vec<f32>) {
    let bass = play(Instrument::Bass, 3, &BASS_TRAIN, 8.0, 0.4, 0.35);
    let lead = play(Instrument::Lead, 4, &LEAD_TRAIN, 8.0, 0.55, 0.5);
    (bass, lead)
}

fn mono(x: Vec<f32>) -> Audio {
    Audio::new(RATE, vec![x]).unwrap()
}

fn learn_both(channels: impl Fn(&[f32]) -> Vec<Vec<f32>>) -> (Templates, Templates) {
    let (bass, lead) = training_clips();
    let stft = StftParams::default();
    let nmf = NmfParams::new(8)
        .with_loss(Loss::ItakuraSaito)
        .with_init(Init::Random)
        .with_restarts(2);
    let audio = |x: &[f32]| Audio::new(RATE, channels(x)).unwrap();
    let b = learn("bass", &[audio(&bass)], &stft, &nmf, &mut |_| {}).unwrap();
    let l = learn("lead", &[audio(&lead)], &stft, &nmf, &mut |_| {}).unwrap();
    (b, l)
}

fn mix(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

#[test]
fn supervised_separation_of_two_instruments_reaches_10_db() {
    let (bass, lead) = mixture_sources();
    let (tb, tl) = learn_both(|x| vec![x.to_vec()]);
    let params = SeparateParams {
        nmf: NmfParams::new(0).with_loss(Loss::ItakuraSaito),
        templates: vec![tb, tl],
        ..Default::default()
    };
    let stems = separate(&mono(mix(&bass, &lead)), &params).unwrap();
    assert_eq!(stems.len(), 2, "bass and lead, no 'other'");
    let bass_sdr = sdr(&bass, &stems[0].channels[0]);
    let lead_sdr = sdr(&lead, &stems[1].channels[0]);
    assert!(
        bass_sdr >= 10.0 && lead_sdr >= 10.0,
        "SDR bass {bass_sdr:.1} dB, lead {lead_sdr:.1} dB"
    );
}

#[test]
fn free_components_add_an_other_source_and_the_stems_still_sum_to_the_mix() {
    let (bass, lead) = mixture_sources();
    let (tb, _) = learn_both(|x| vec![x.to_vec()]);
    let mixture = mono(mix(&bass, &lead));
    let params = SeparateParams {
        nmf: NmfParams::new(4).with_loss(Loss::ItakuraSaito),
        templates: vec![tb],
        ..Default::default()
    };
    let separation = demix::separate::analyze(&mixture, &params, &mut |_| {}).unwrap();
    let names: Vec<&str> = separation.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bass", "other"]);
    let stems = separation.render_to_memory(&mixture).unwrap();
    // The lead, never learned, ends up in "other".
    assert!(sdr(&bass, &stems[0].channels[0]) > 5.0);
    assert!(sdr(&lead, &stems[1].channels[0]) > 5.0);
    let sum = mix(&stems[0].channels[0], &stems[1].channels[0]);
    assert!(
        sum.iter()
            .zip(&mixture.channels[0])
            .all(|(a, b)| (a - b).abs() < 1e-4)
    );
}

/// Bass in the centre (mono), lead wide: a decorrelated copy in each channel.
fn stereo_mix() -> (Audio, Vec<f32>, Vec<f32>) {
    let (bass, lead) = mixture_sources();
    let lead_right: Vec<f32> = lead
        .iter()
        .enumerate()
        .map(|(i, &v)| if i >= 7 { v } else { 0.0 })
        .collect();
    let delayed: Vec<f32> = (0..lead_right.len())
        .map(|i| if i >= 7 { lead_right[i - 7] } else { 0.0 })
        .collect();
    let left = mix(&bass, &lead);
    let right = mix(&bass, &delayed);
    let audio = Audio::new(RATE, vec![left, right]).unwrap();
    let lead_mono: Vec<f32> = lead
        .iter()
        .zip(&delayed)
        .map(|(a, b)| 0.5 * (a + b))
        .collect();
    (audio, bass, lead_mono)
}

/// Stereo training clips in the same spatial layout.
fn stereo_templates() -> (Templates, Templates) {
    learn_both(|x| {
        let delayed: Vec<f32> = (0..x.len())
            .map(|i| if i >= 7 { x[i - 7] } else { 0.0 })
            .collect();
        // The learner is called with the bass first: a centred source is the same in both
        // channels; the lead is told apart below by its spectrum, so give both a layout.
        vec![x.to_vec(), delayed]
    })
}

/// The stems of `audio` separated with `templates` and their spatial covariances (the
/// parameters used, and the stems), checked to add up to the mixture channel by channel.
fn spatial_stems(audio: &Audio, templates: Vec<Templates>) -> (SeparateParams, Vec<Audio>) {
    let params = SeparateParams {
        nmf: NmfParams::new(0).with_loss(Loss::ItakuraSaito),
        templates,
        ..Default::default()
    };
    let separation = demix::separate::analyze(audio, &params, &mut |_| {}).unwrap();
    assert!(separation.is_spatial());
    let stems = separation.render_to_memory(audio).unwrap();
    for c in 0..audio.num_channels() {
        let sum = mix(&stems[0].channels[c], &stems[1].channels[c]);
        assert!(
            sum.iter()
                .zip(&audio.channels[c])
                .all(|(a, b)| (a - b).abs() < 1e-4),
            "channel {c}"
        );
    }
    (params, stems)
}

#[test]
fn learned_spatial_covariances_drive_the_multichannel_wiener_filter() {
    let (audio, bass, lead) = stereo_mix();
    // Bass templates from a centred clip, lead templates from a delayed (wide) clip.
    let (tb, _) = learn_both(|x| vec![x.to_vec(), x.to_vec()]);
    let (_, tl) = stereo_templates();
    assert_eq!(tb.spatial.as_ref().unwrap().dim().1, 2);
    let (params, stems) = spatial_stems(&audio, vec![tb, tl]);
    let down = |a: &Audio| -> Vec<f32> {
        a.channels[0]
            .iter()
            .zip(&a.channels[1])
            .map(|(l, r)| 0.5 * (l + r))
            .collect()
    };
    let spatial = (sdr(&bass, &down(&stems[0])), sdr(&lead, &down(&stems[1])));
    let masks = SeparateParams {
        spatial: false,
        ..params
    };
    let plain = separate(&audio, &masks).unwrap();
    let masked = (sdr(&bass, &down(&plain[0])), sdr(&lead, &down(&plain[1])));
    assert!(
        spatial.0 + spatial.1 > masked.0 + masked.1,
        "spatial {spatial:?} dB against masks {masked:?} dB"
    );
}

#[test]
fn three_channel_mixes_go_through_the_wiener_filter_of_any_channel_count() {
    // Templates learned on three-channel clips keep a 3 × 3 covariance per bin; the stems
    // still add up to the mix (checked by `spatial_stems`).
    let (bass, lead) = mixture_sources();
    let (tb, tl) =
        learn_both(|x| vec![x.to_vec(), x.iter().map(|v| 0.5 * v).collect(), x.to_vec()]);
    assert_eq!(tb.spatial.as_ref().unwrap().dim().1, 3);
    let channels = vec![mix(&bass, &lead), mix(&bass, &lead), bass.clone()];
    let audio = Audio::new(RATE, channels).unwrap();
    let (_, stems) = spatial_stems(&audio, vec![tb, tl]);
    assert!(sdr(&bass, &stems[0].channels[2]) > 10.0);
}

#[test]
fn learned_templates_start_the_spatial_filter_from_masks_of_three_quarters() {
    let (audio, _, _) = stereo_mix();
    let (tb, _) = learn_both(|x| vec![x.to_vec(), x.to_vec()]);
    let (_, tl) = stereo_templates();
    let base = SeparateParams {
        nmf: NmfParams::new(0).with_loss(Loss::ItakuraSaito),
        templates: vec![tb, tl],
        ..Default::default()
    };
    for (spatial, power, other) in [
        (true, SPATIAL_MASK_POWER, DEFAULT_MASK_POWER),
        (false, DEFAULT_MASK_POWER, SPATIAL_MASK_POWER),
    ] {
        let default = SeparateParams {
            spatial,
            ..base.clone()
        };
        let with = |p: f32| with_mask_power(&default, p);
        let stems = separate(&audio, &default).unwrap();
        assert_eq!(
            stems,
            separate(&audio, &with(power)).unwrap(),
            "spatial {spatial}"
        );
        assert_ne!(
            stems,
            separate(&audio, &with(other)).unwrap(),
            "spatial {spatial}"
        );
        // Not blind grouping's softer masks either.
        if spatial {
            assert_ne!(
                stems,
                separate(&audio, &with(BLIND_SPATIAL_MASK_POWER)).unwrap()
            );
        }
    }
}

/// `params` with the masks' power `power` given.
fn with_mask_power(params: &SeparateParams, power: f32) -> SeparateParams {
    SeparateParams {
        mask_power: Some(power),
        ..params.clone()
    }
}

#[test]
fn sources_grouped_blind_start_the_spatial_filter_from_softer_masks() {
    let (audio, _, _) = stereo_mix();
    let blind = SeparateParams {
        nmf: NmfParams::new(6).with_max_iter(50),
        groups: Some(2),
        ..Default::default()
    };
    let with = |p: f32| with_mask_power(&blind, p);
    let stems = separate(&audio, &blind).unwrap();
    assert_eq!(
        stems,
        separate(&audio, &with(BLIND_SPATIAL_MASK_POWER)).unwrap()
    );
    assert_ne!(stems, separate(&audio, &with(SPATIAL_MASK_POWER)).unwrap());
}

#[test]
fn blind_grouping_of_two_instruments_reaches_6_db_in_either_order() {
    let (bass, lead) = mixture_sources();
    // The default loss (KL), eight components, two groups.
    let params = SeparateParams {
        nmf: NmfParams::new(8),
        groups: Some(2),
        ..Default::default()
    };
    let stems = separate(&mono(mix(&bass, &lead)), &params).unwrap();
    assert_eq!(stems.len(), 2);
    let estimates: Vec<Vec<f32>> = stems.into_iter().map(|s| s.channels[0].clone()).collect();
    let scores = best_permutation_sdr(&[bass, lead], &estimates);
    assert!(
        scores.iter().all(|&s| s >= 6.0),
        "SDR per source {scores:?}"
    );
}

#[test]
fn grouping_into_more_sources_than_components_is_rejected() {
    let params = SeparateParams {
        nmf: NmfParams::new(3),
        groups: Some(4),
        ..Default::default()
    };
    assert!(params.check().is_err());
}

fn demix(args: &[&str]) -> std::process::Output {
    crate::common::demix(std::path::Path::new("."), args)
}

#[test]
fn the_learn_and_separate_commands_name_the_stems_after_the_templates() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (bass_train, lead_train) = training_clips();
    let (bass, lead) = mixture_sources();
    write_wav(
        p("bass_train.wav"),
        &mono(bass_train),
        OutputFormat::Float32,
    )
    .unwrap();
    write_wav(
        p("lead_train.wav"),
        &mono(lead_train),
        OutputFormat::Float32,
    )
    .unwrap();
    write_wav(
        p("song.wav"),
        &mono(mix(&bass, &lead)),
        OutputFormat::Float32,
    )
    .unwrap();
    for (clip, npz) in [
        ("bass_train.wav", "bass.npz"),
        ("lead_train.wav", "lead.npz"),
    ] {
        let out = demix(&["learn", &p(clip), "-k", "8", "-o", &p(npz)]);
        assert_ok(&out);
    }
    let t = Templates::load(dir.path().join("bass.npz").as_ref()).unwrap();
    assert_eq!(
        (t.name.as_str(), t.len(), t.sample_rate, t.loss),
        ("bass", 8, RATE, Loss::ItakuraSaito)
    );
    let out = demix(&[
        "separate",
        &p("song.wav"),
        "--source",
        &p("bass.npz"),
        "--source",
        &format!("melody={}", p("lead.npz")),
        "--free",
        "1",
        "--float32",
        "-o",
        &p("out"),
        "-v",
    ]);
    assert_ok(&out);
    for name in ["bass", "melody", "other"] {
        let stem = read_audio(dir.path().join(format!("out/song/{name}.wav"))).unwrap();
        assert_eq!(stem.len(), bass.len());
    }
    // With learned (Itakura-Saito) templates the fit stops at 35 iterations unless --iter
    // says otherwise.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("(stopped at 35 iterations"), "{said}");
    let out = demix(&[
        "separate",
        &p("song.wav"),
        "--source",
        &p("bass.npz"),
        "--iter",
        "150",
        "-o",
        &p("out2"),
        "-v",
    ]);
    assert_ok(&out);
    // Past the 50 of the default, within the 150 asked for.
    let said = String::from_utf8_lossy(&out.stdout);
    let iterations: usize = said
        .split(" iterations")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!((51..=150).contains(&iterations), "{said}");
}

#[test]
fn templates_learned_at_another_frame_length_or_rate_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (bass_train, _) = training_clips();
    write_wav(
        p("train.wav"),
        &mono(bass_train.clone()),
        OutputFormat::Float32,
    )
    .unwrap();
    write_wav(
        p("song.wav"),
        &mono(bass_train.clone()),
        OutputFormat::Float32,
    )
    .unwrap();
    write_wav(
        p("fast.wav"),
        &Audio::new(44_100, vec![bass_train]).unwrap(),
        OutputFormat::Float32,
    )
    .unwrap();
    assert!(
        demix(&[
            "learn",
            &p("train.wav"),
            "-k",
            "4",
            "--n-fft",
            "1024",
            "-o",
            &p("bass.npz")
        ])
        .status
        .success()
    );

    let out = demix(&[
        "separate",
        &p("song.wav"),
        "--source",
        &p("bass.npz"),
        "--n-fft",
        "2048",
        "-o",
        &p("out"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("n_fft 1024") && stderr.contains("2048"),
        "{stderr}"
    );

    let out = demix(&[
        "separate",
        &p("fast.wav"),
        "--source",
        &p("bass.npz"),
        "-o",
        &p("out"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fast.wav") && stderr.contains("sample rate"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/fast").exists() && !dir.path().join("out/song").exists());
}

#[test]
fn a_broken_template_file_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.npz");
    std::fs::write(&bad, b"not an npz").unwrap();
    let song = dir.path().join("song.wav");
    write_wav(&song, &mono(vec![0.1; 4096]), OutputFormat::Int16).unwrap();
    let out = demix(&[
        "separate",
        song.to_str().unwrap(),
        "--source",
        bad.to_str().unwrap(),
        "-o",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad.npz") && stderr.contains("template"),
        "{stderr}"
    );
}

#[test]
fn penalised_costs_never_rise() {
    let v = random_matrix(40, 120, 21);
    let fixed = random_matrix(40, 2, 22);
    for loss in [
        Loss::ItakuraSaito,
        Loss::KullbackLeibler,
        Loss::Euclidean,
        Loss::Beta(0.5),
        Loss::Beta(3.0),
    ] {
        for (sparsity, smoothness) in [(0.1, 0.0), (0.0, 0.5), (0.2, 0.2)] {
            for templates in [None, Some(fixed.clone())] {
                let mut params = NmfParams::new(3)
                    .with_loss(loss)
                    .with_sparsity(sparsity)
                    .with_smoothness(smoothness)
                    .with_max_iter(100)
                    .with_tol(0.0)
                    .with_cost_every(1);
                if let Some(w) = &templates {
                    params = params.with_fixed_templates(w.clone());
                }
                let model = fit(v.view(), &params).unwrap();
                for pair in model.cost_history.windows(2) {
                    assert!(
                        pair[1].cost <= pair[0].cost * (1.0 + 1e-6),
                        "{loss} λs {sparsity} λt {smoothness} fixed {}: {} then {}",
                        templates.is_some(),
                        pair[0].cost,
                        pair[1].cost
                    );
                }
            }
        }
    }
}

/// Sparsity is shown with the Euclidean loss: with KL and templates summing to 1, an L1
/// penalty on the activations only rescales them (KL's own `Σ W H` term is that same sum).
#[test]
fn sparsity_makes_activations_sparser_and_smoothness_smoother() {
    let v = random_matrix(30, 200, 23);
    let base = NmfParams::new(4).with_max_iter(150).with_tol(0.0);
    let euclidean = base.clone().with_loss(Loss::Euclidean);
    let plain = fit(v.view(), &euclidean).unwrap();
    let sparse = fit(v.view(), &euclidean.with_sparsity(1.0)).unwrap();
    // Activations below 1% of the largest.
    let small = |h: &Array2<f32>| {
        let peak = h.fold(0f32, |m, &a| m.max(a));
        h.iter().filter(|&&a| a < 0.01 * peak).count() as f64 / h.len() as f64
    };
    assert!(
        small(&sparse.h) > small(&plain.h) + 0.2,
        "{} vs {}",
        small(&sparse.h),
        small(&plain.h)
    );

    let plain = fit(v.view(), &base).unwrap();
    let smooth = fit(v.view(), &base.with_smoothness(2.0)).unwrap();
    // Squared frame-to-frame change relative to energy, summed over components.
    let roughness = |h: &Array2<f32>| {
        h.rows()
            .into_iter()
            .map(|r| {
                let d: f32 = r
                    .iter()
                    .zip(r.iter().skip(1))
                    .map(|(a, b)| (b - a).powi(2))
                    .sum();
                let e: f32 = r.iter().map(|a| a * a).sum();
                f64::from(d / e.max(1e-30))
            })
            .sum::<f64>()
    };
    assert!(roughness(&smooth.h) < 0.1 * roughness(&plain.h));
}

#[test]
fn restarts_keep_the_lowest_final_cost() {
    let v = random_matrix(30, 60, 24);
    let base = NmfParams::new(4)
        .with_init(Init::Random)
        .with_max_iter(60)
        .with_tol(0.0);
    let single = fit(v.view(), &base).unwrap().final_cost();
    let others: Vec<f64> = (1..4)
        .map(|s| {
            fit(v.view(), &base.clone().with_seed(s))
                .unwrap()
                .final_cost()
        })
        .collect();
    let best = fit(v.view(), &base.with_restarts(4)).unwrap().final_cost();
    let expected = others.iter().cloned().fold(single, f64::min);
    // The first start is not the best one here, so keeping it would fail.
    assert!(expected < single, "{expected} vs {single}");
    assert!(
        (best - expected).abs() <= 1e-9 * expected,
        "{best} vs {expected}"
    );
}

#[test]
fn learn_verbose_prints_its_iterations_and_costs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (bass_train, _) = training_clips();
    write_wav(
        p("train.wav"),
        &Audio::new(22_050, vec![bass_train]).unwrap(),
        OutputFormat::Float32,
    )
    .unwrap();
    let args = [
        "learn",
        &p("train.wav"),
        "-k",
        "2",
        "--iter",
        "60",
        "--restarts",
        "1",
    ];
    let out = demix(&[&args[..], &["-v", "-o", &p("v.npz")]].concat());
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The IS fit, then the KL templates learned beside them: each fit's costs never rise.
    let (is, kl) = stderr
        .split_once("KL templates beside them:")
        .expect("the KL fit announced");
    // The KL fit takes half the IS one's iterations: every line says of how many.
    let totals = |fit: &str| -> Vec<String> {
        fit.lines()
            .filter_map(|l| l.strip_prefix("iteration ")?.split_once(':'))
            .filter_map(|(n, _)| n.split_once('/').map(|(_, total)| total.to_string()))
            .collect()
    };
    let (is_totals, kl_totals) = (totals(is), totals(kl));
    assert!(
        !is_totals.is_empty() && is_totals.iter().all(|t| t == "60"),
        "{stderr}"
    );
    assert!(
        !kl_totals.is_empty() && kl_totals.iter().all(|t| t == "30"),
        "{stderr}"
    );
    for fit in [is, kl] {
        let costs: Vec<f64> = fit
            .lines()
            .filter_map(|l| l.strip_prefix("iteration ")?.split_once(": cost "))
            .map(|(_, cost)| cost.parse().unwrap())
            .collect();
        assert!(costs.len() >= 2, "{stderr}");
        assert!(costs.windows(2).all(|w| w[1] <= w[0]), "{stderr}");
    }
    // Without -v, nothing of the kind.
    let quiet = demix(&[&args[..], &["-o", &p("q.npz")]].concat());
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("iteration "));
}

/// A small template file made by `demix learn`'s library call, as bytes.
fn template_bytes(dir: &std::path::Path, n_fft: usize, name: &str) -> std::path::PathBuf {
    let (bass, _) = training_clips();
    let audio = Audio::new(22_050, vec![bass]).unwrap();
    let t = learn(
        name,
        &[audio],
        &StftParams::new(n_fft),
        &NmfParams::new(2).with_max_iter(20),
        &mut |_| {},
    )
    .unwrap();
    let path = dir.join(format!("{name}.npz"));
    t.save(&path).unwrap();
    path
}

#[test]
fn templates_of_different_frame_lengths_in_one_run_are_refused_naming_the_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let a = template_bytes(dir.path(), 1024, "low");
    let b = template_bytes(dir.path(), 2048, "high");
    let song = dir.path().join("song.wav");
    write_wav(
        &song,
        &Audio::new(22_050, vec![vec![0.1; 22_050]]).unwrap(),
        OutputFormat::Int16,
    )
    .unwrap();
    let p = |x: &std::path::Path| x.to_str().unwrap().to_string();
    let out = demix(&[
        "separate",
        &p(&song),
        "--source",
        &p(&a),
        "--source",
        &p(&b),
        "-o",
        &p(&dir.path().join("out")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'high'") && stderr.contains("n_fft 2048") && stderr.contains("1024"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_template_archive_with_a_bad_checksum_or_a_huge_declared_member_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = template_bytes(dir.path(), 512, "t");
    let good = std::fs::read(&path).unwrap();
    let find = |bytes: &[u8], sig: [u8; 4]| {
        (0..bytes.len() - 4)
            .filter(|&i| bytes[i..i + 4] == sig)
            .collect::<Vec<_>>()
    };
    // A flipped byte inside the first member's compressed data: its CRC-32 no longer matches.
    let local = find(&good, [0x50, 0x4b, 0x03, 0x04])[0];
    let name_len = u16::from_le_bytes([good[local + 26], good[local + 27]]) as usize;
    let extra_len = u16::from_le_bytes([good[local + 28], good[local + 29]]) as usize;
    let data = local + 30 + name_len + extra_len;
    let mut bad = good.clone();
    bad[data + 200] ^= 0x55;
    std::fs::write(&path, &bad).unwrap();
    let err = Templates::load(&path).unwrap_err().to_string();
    assert!(err.contains("invalid template file"), "{err}");
    // Every member declaring 3.75 GiB of data (central directory and local headers; not
    // 0xFFFFFFFF, which means "see the zip64 field").
    let mut huge = good.clone();
    for central in find(&good, [0x50, 0x4b, 0x01, 0x02]) {
        huge[central + 24..central + 28].copy_from_slice(&0xF000_0000u32.to_le_bytes());
    }
    for local in find(&good, [0x50, 0x4b, 0x03, 0x04]) {
        huge[local + 22..local + 26].copy_from_slice(&0xF000_0000u32.to_le_bytes());
    }
    std::fs::write(&path, &huge).unwrap();
    let err = Templates::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("declares") && err.contains("more than"),
        "{err}"
    );
    // The file as written loads.
    std::fs::write(&path, &good).unwrap();
    assert!(Templates::load(&path).is_ok());
}

#[test]
fn learning_under_a_memory_limit_for_one_fit_gives_the_same_templates() {
    use demix::nmf::memory_estimate;
    use demix::sources::{ModelChoice, learn_params, learn_source};
    // The Itakura-Saito and KL fits run at once where the memory allowed holds both, one
    // after the other where it holds one: the same templates either way.
    let (clip, _) = training_clips();
    let clip = mono(clip);
    let stft = StftParams::default();
    let frames = Stft::new(&stft).unwrap().n_frames(clip.len());
    let one_fit = memory_estimate(1025, frames, 4, 4);
    let learned = |limit: Option<u64>| {
        let nmf = learn_params(4).with_max_memory(limit);
        let choice = ModelChoice::default();
        learn_source(
            "a",
            std::slice::from_ref(&clip),
            &stft,
            &nmf,
            choice,
            None,
            &mut |_| {},
        )
        .unwrap()
        .templates
    };
    let (free, limited) = (learned(None), learned(Some(one_fit * 3 / 2)));
    assert!(limited.w_kl.is_some());
    assert_eq!((free.w, free.w_kl), (limited.w, limited.w_kl));
}
