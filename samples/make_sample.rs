//! Makes the shipped sample: `samples/mix.flac` and its true stems `samples/bass.flac` and
//! `samples/lead.flac`, two synthesized instruments with different timbres, registers and
//! rhythms, 6 s of 16-bit stereo at 44.1 kHz. The mix is the exact sample-wise sum of the stems.
//!
//! Run with `cargo run --release --example make_sample` (it overwrites the three files).

#[path = "../tests/it/flac.rs"]
mod flac;

use std::f64::consts::PI;

const RATE: u32 = 44_100;
const SECONDS: f64 = 6.0;

/// One note: start time, duration (seconds) and fundamental (Hz).
struct Note {
    start: f64,
    length: f64,
    f0: f64,
}

/// A plucked, bright bass: all harmonics at 1/n, decaying exponentially.
fn bass(t: f64, f0: f64, since: f64) -> f64 {
    let envelope = (-since * 3.0).exp() * (since * 400.0).min(1.0);
    let mut sum = 0.0;
    let mut n = 1.0;
    while n * f0 < 8000.0 && n <= 30.0 {
        sum += (2.0 * PI * n * f0 * t).sin() / n;
        n += 1.0;
    }
    0.3 * envelope * sum
}

/// A soft, hollow lead: odd harmonics at 1/n², slow attack, steady.
fn lead(t: f64, f0: f64, since: f64, left: f64) -> f64 {
    let envelope = (since * 20.0).min(1.0) * (left * 30.0).min(1.0);
    let mut sum = 0.0;
    let mut n = 1.0;
    while n * f0 < 10_000.0 {
        sum += (2.0 * PI * n * f0 * t).sin() / (n * n);
        n += 2.0;
    }
    0.35 * envelope * sum
}

fn render(notes: &[Note], voice: impl Fn(f64, &Note, f64, f64) -> f64) -> Vec<f64> {
    let len = (SECONDS * f64::from(RATE)) as usize;
    (0..len)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            notes
                .iter()
                .filter(|n| t >= n.start && t < n.start + n.length)
                .map(|n| voice(t, n, t - n.start, n.start + n.length - t))
                .sum()
        })
        .collect()
}

fn to_i16(x: f64) -> i32 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i32
}

/// Writes 16-bit samples as FLAC.
fn write_flac(path: &str, channels: &[Vec<i32>]) {
    std::fs::write(path, flac::flac_bytes(channels, 16, RATE)).expect("samples/ is writable");
}

fn main() {
    // Bass: two notes (A2, E2) in a syncopated pattern.
    let bass_notes: Vec<Note> = [
        (0.0, 110.0),
        (0.75, 110.0),
        (1.5, 82.41),
        (2.0, 82.41),
        (3.0, 110.0),
        (3.75, 110.0),
        (4.5, 82.41),
        (5.0, 82.41),
    ]
    .iter()
    .map(|&(start, f0)| Note {
        start,
        length: 0.6,
        f0,
    })
    .collect();
    // Lead: two notes (E5, A5), longer and offset from the bass.
    let lead_notes: Vec<Note> = [
        (0.4, 659.26),
        (1.2, 880.0),
        (2.4, 659.26),
        (3.3, 880.0),
        (4.2, 659.26),
        (5.1, 880.0),
    ]
    .iter()
    .map(|&(start, f0)| Note {
        start,
        length: 0.7,
        f0,
    })
    .collect();
    let b = render(&bass_notes, |t, n, since, _| bass(t, n.f0, since));
    let l = render(&lead_notes, |t, n, since, left| lead(t, n.f0, since, left));

    // Bass a little left, lead a little right.
    let pan = |x: &[f64], left: f64| -> Vec<Vec<i32>> {
        vec![
            x.iter().map(|&v| to_i16(v * left)).collect(),
            x.iter().map(|&v| to_i16(v * (1.0 - left))).collect(),
        ]
    };
    let bass_stem = pan(&b, 0.65);
    let lead_stem = pan(&l, 0.35);
    let mix: Vec<Vec<i32>> = (0..2)
        .map(|c| {
            bass_stem[c]
                .iter()
                .zip(&lead_stem[c])
                .map(|(a, b)| {
                    assert!((-32768..=32767).contains(&(a + b)), "the mix must not clip");
                    a + b
                })
                .collect()
        })
        .collect();
    write_flac("samples/bass.flac", &bass_stem);
    write_flac("samples/lead.flac", &lead_stem);
    write_flac("samples/mix.flac", &mix);
    println!("wrote samples/mix.flac, samples/bass.flac, samples/lead.flac");
}
