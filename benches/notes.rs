//! Synthetic mixtures of known rank, shared by the rank tests (`tests/it/rank.rs`), the rank
//! bench and `examples/rank_synthetic` (included with `#[path]`): N stationary notes, each a
//! fixed harmonic spectrum switched on and off by its own seeded pattern, no two sharing a
//! partial (every partial at least `MIN_GAP_HZ` from every other note's).

#![allow(dead_code)] // Each includer uses part of it.

use std::f64::consts::PI;

/// Partials per note, with amplitudes 1, 1/2, 1/3.
pub const PARTIALS: usize = 3;

/// Smallest distance between partials of different notes.
pub const MIN_GAP_HZ: f64 = 100.0;

/// A xorshift generator for the patterns (the tests' own, not the library's).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The fundamentals of `n` notes whose partials stay `MIN_GAP_HZ` apart and below
/// 0.45 × `rate`, chosen greedily from 110 Hz up in steps of 13 Hz.
pub fn fundamentals(n: usize, rate: u32) -> Vec<f64> {
    let top = 0.45 * f64::from(rate);
    let mut chosen: Vec<f64> = Vec::new();
    let mut f0 = 110.0;
    while chosen.len() < n {
        assert!(
            f0 * PARTIALS as f64 <= top,
            "no room for {n} notes at {rate} Hz"
        );
        let clear = chosen.iter().all(|&other| {
            (1..=PARTIALS).all(|a| {
                (1..=PARTIALS).all(|b| (a as f64 * f0 - b as f64 * other).abs() >= MIN_GAP_HZ)
            })
        });
        if clear {
            chosen.push(f0);
        }
        f0 += 13.0;
    }
    chosen
}

/// `seconds` of `n` notes at `rate`: the sum, and each note alone. Each note plays in
/// half-second segments chosen at random (each on with probability 1/2, at least two on and
/// two off, and every note's pattern differing from the others' in at least three segments), at a level between 0.5 and 1, with raised-cosine ramps of 200 ms.
pub fn note_mixture(n: usize, seconds: f64, rate: u32, seed: u64) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let len = (seconds * f64::from(rate)) as usize;
    let segment = (0.5 * f64::from(rate)) as usize;
    let segments = len.div_ceil(segment);
    let ramp = (0.2 * f64::from(rate)) as usize;
    let mut patterns: Vec<Vec<bool>> = Vec::new();
    let notes: Vec<Vec<f32>> = fundamentals(n, rate)
        .into_iter()
        .map(|f0| {
            let pattern: Vec<bool> = loop {
                let p: Vec<bool> = (0..segments).map(|_| rng.uniform() < 0.5).collect();
                let on = p.iter().filter(|&&b| b).count();
                // Two notes playing (nearly) together would be one component.
                let distinct = patterns
                    .iter()
                    .all(|q: &Vec<bool>| q.iter().zip(&p).filter(|(a, b)| a != b).count() >= 3);
                if on >= 2 && segments - on >= 2 && distinct {
                    break p;
                }
            };
            patterns.push(pattern.clone());
            let level = 0.5 + 0.5 * rng.uniform();
            let phase = 2.0 * PI * rng.uniform();
            // The envelope: the pattern's steps smoothed by a raised-cosine ramp, slow
            // enough that every frame sees a steady spectrum (a sharp switch spreads energy
            // over every bin, a broadband component of its own).
            // Silence before the start and after the end, so that the first and last notes
            // fade in and out too.
            let on = |i: Option<usize>| match i {
                Some(i) if i < len && pattern[i / segment] => 1.0,
                _ => 0.0,
            };
            (0..len)
                .map(|i| {
                    let into = i % segment;
                    let env = if into < ramp {
                        let (from, to) = (on(i.checked_sub(segment)), on(Some(i)));
                        let x = 0.5 - 0.5 * (PI * into as f64 / ramp as f64).cos();
                        level * (from + (to - from) * x)
                    } else if len - i <= ramp {
                        let x = 0.5 - 0.5 * (PI * (len - i) as f64 / ramp as f64).cos();
                        level * on(Some(i)) * x
                    } else {
                        level * on(Some(i))
                    };
                    let t = i as f64 / f64::from(rate);
                    let s: f64 = (1..=PARTIALS)
                        .map(|p| (2.0 * PI * p as f64 * f0 * t + phase * p as f64).sin() / p as f64)
                        .sum();
                    (0.25 * env * s) as f32
                })
                .collect()
        })
        .collect();
    let mix = (0..len).map(|i| notes.iter().map(|s| s[i]).sum()).collect();
    (mix, notes)
}
