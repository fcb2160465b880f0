//! Blind grouping (`--sources`) by how the components move as well as how they sound: two
//! instruments of one timbre, one struck and one held, playing interleaved notes.

use std::f64::consts::PI;

use demix::audio::Audio;
use demix::nmf::NmfParams;
use demix::separate::{SeparateParams, separate};

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
