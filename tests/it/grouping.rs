//! Blind grouping (`--sources`) by how the components move and where they sit as well as how
//! they sound: two instruments of one timbre, one struck and one held, playing interleaved
//! notes; two of one timbre and envelope panned apart.

use std::f64::consts::PI;

use demix::audio::Audio;
use demix::nmf::NmfParams;
use demix::separate::{SeparateParams, analyze, separate};

use crate::common::best_permutation_sdr;

const RATE: u32 = 16_000;
const SECONDS: f64 = 8.0;

/// Notes of one timbre (partials 1/n) at `pitches` (Hz), one after another every `step`
/// seconds, each shaped by `envelope(time since its onset)` over `length` seconds.
fn notes(pitches: &[f64], step: f64, length: f64, envelope: impl Fn(f64) -> f64) -> Vec<f32> {
    let len = (SECONDS * f64::from(RATE)) as usize;
    let mut x = vec![0f32; len];
    let count = (SECONDS / step) as usize;
    for n in 0..count {
        let (onset, f0) = (n as f64 * step, pitches[n % pitches.len()]);
        let first = (onset * f64::from(RATE)) as usize;
        let last = (((onset + length) * f64::from(RATE)) as usize).min(len);
        for (i, sample) in x.iter_mut().enumerate().take(last).skip(first) {
            let t = (i - first) as f64 / f64::from(RATE);
            let tone: f64 = (1..=6)
                .map(|p| (2.0 * PI * f64::from(p) * f0 * t).sin() / f64::from(p))
                .sum();
            *sample += (0.2 * envelope(t) * tone) as f32;
        }
    }
    x
}

#[test]
fn a_struck_and_a_held_instrument_of_one_timbre_are_told_apart_by_their_attacks() {
    // C, E, G struck and fading fast; D, F, A swelling and held, so that their spectra
    // interleave in pitch and brightness and only the attacks differ.
    let struck = notes(&[261.6, 329.6, 392.0], 0.25, 0.25, |t| (-t / 0.05).exp());
    let held = notes(&[293.7, 349.2, 440.0], 1.0, 1.0, |t| (t / 0.3).min(1.0));
    let mix: Vec<f32> = struck.iter().zip(&held).map(|(a, b)| a + b).collect();
    let params = SeparateParams {
        nmf: NmfParams::new(8),
        groups: Some(2),
        ..Default::default()
    };
    let stems = separate(&Audio::new(RATE, vec![mix]).unwrap(), &params).unwrap();
    let estimates: Vec<Vec<f32>> = stems.into_iter().map(|s| s.channels[0].clone()).collect();
    let scores = best_permutation_sdr(&[struck, held], &estimates);
    assert!(
        scores.iter().all(|&s| s >= 6.0),
        "SDR per source {scores:?}"
    );
}

/// A stereo mix of two sources of one timbre, envelope and register, `a` on the left
/// and `b` on the right, repeated `times` times; with the true sources' mono downmixes.
fn panned_pair(times: usize) -> (Audio, [Vec<f32>; 2]) {
    // Rhythms that differ, so that notes of the two are not always heard together.
    let decay = |t: f64| (-t / 0.2).exp();
    let a = notes(&[261.6, 329.6, 392.0], 0.5, 0.5, decay).repeat(times);
    let b = notes(&[293.7, 349.2, 440.0], 0.75, 0.75, decay).repeat(times);
    let side = |near: f32, far: f32| -> Vec<f32> {
        a.iter().zip(&b).map(|(x, y)| near * x + far * y).collect()
    };
    let audio = Audio::new(RATE, vec![side(0.9, 0.3), side(0.3, 0.9)]).unwrap();
    let mono = |x: &[f32]| x.iter().map(|v| 0.6 * v).collect();
    (audio, [mono(&a), mono(&b)])
}

/// The SDR of each source's mono downmix, in the best order, rendered by the multichannel
/// Wiener filter or (`spatial` false) by soft masks.
fn separated_scores(
    audio: &Audio,
    truth: &[Vec<f32>; 2],
    max_frames: usize,
    spatial: bool,
) -> Vec<f64> {
    let params = SeparateParams {
        nmf: NmfParams::new(8),
        groups: Some(2),
        max_frames,
        spatial,
        ..Default::default()
    };
    let stems = separate(audio, &params).unwrap();
    let estimates: Vec<Vec<f32>> = (stems.iter())
        .map(|s| {
            (s.channels[0].iter().zip(&s.channels[1]))
                .map(|(l, r)| 0.5 * (l + r))
                .collect()
        })
        .collect();
    best_permutation_sdr(truth, &estimates)
}

#[test]
fn two_instruments_of_one_timbre_panned_apart_are_told_apart_by_their_side() {
    let (audio, truth) = panned_pair(1);
    let scores = separated_scores(&audio, &truth, SeparateParams::default().max_frames, true);
    assert!(
        scores.iter().all(|&s| s >= 6.0),
        "SDR per source {scores:?}"
    );
}

#[test]
fn a_long_recording_is_told_apart_by_side_on_its_template_sample() {
    // 16 s: 500 frames, more than the 256 fitted at once, so the templates and the sides come
    // from the recording's sample.
    let (audio, truth) = panned_pair(2);
    let scores = separated_scores(&audio, &truth, 256, true);
    assert!(
        scores.iter().all(|&s| s >= 6.0),
        "SDR per source {scores:?}"
    );
}

#[test]
fn sources_grouped_blind_in_stereo_are_rendered_by_the_spatial_filter_it_learns() {
    let (audio, truth) = panned_pair(1);
    let params = SeparateParams {
        nmf: NmfParams::new(8),
        groups: Some(2),
        ..Default::default()
    };
    let separation = analyze(&audio, &params, &mut |_| {}).unwrap();
    assert!(separation.is_spatial());
    // The stems still add up to the mixture.
    let stems = separation.render_to_memory(&audio).unwrap();
    for channel in 0..2 {
        let worst = (0..audio.len())
            .map(|i| {
                let sum = stems[0].channels[channel][i] + stems[1].channels[channel][i];
                (sum - audio.channels[channel][i]).abs()
            })
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "channel {channel}: {worst}");
    }
    // The filter that learns where each source sits separates better than the masks alone.
    let default = SeparateParams::default().max_frames;
    let filtered = separated_scores(&audio, &truth, default, true);
    let masked = separated_scores(&audio, &truth, default, false);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    assert!(
        mean(&filtered) > mean(&masked) + 1.0,
        "spatial filter {filtered:?}, masks {masked:?}"
    );
}
