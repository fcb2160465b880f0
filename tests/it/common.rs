//! Helpers shared by the integration tests: synthetic signals, FLAC encoding, scoring.

#![allow(dead_code)]

use std::f64::consts::PI;

/// A small deterministic generator (SplitMix64), so test data never depends on a crate.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> TestRng {
        TestRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-1, 1) as f32.
    pub fn signed(&mut self) -> f32 {
        (self.uniform() * 2.0 - 1.0) as f32
    }
}

/// A `rows × cols` matrix of seeded uniform values in [0.01, 1.01): positive, as NMF data
/// and templates must be.
pub fn positive_matrix(rows: usize, cols: usize, seed: u64) -> ndarray::Array2<f32> {
    let mut rng = TestRng::new(seed);
    ndarray::Array2::from_shape_simple_fn((rows, cols), || rng.uniform() as f32 + 0.01)
}

/// A tone with a fixed harmonic spectrum: partial `n` (1-based) of `f0` has amplitude
/// `amplitudes[n - 1]`, switched on where `gate(t)` is true, with 5 ms linear ramps.
pub fn gated_harmonic(
    rate: u32,
    seconds: f64,
    f0: f64,
    amplitudes: &[f64],
    gate: impl Fn(f64) -> bool,
) -> Vec<f32> {
    let len = (seconds * f64::from(rate)) as usize;
    let ramp = (0.005 * f64::from(rate)) as usize;
    let on: Vec<bool> = (0..len).map(|i| gate(i as f64 / f64::from(rate))).collect();
    // Envelope: 1 where on, ramped linearly over `ramp` samples at each switch.
    let mut env = vec![0f64; len];
    let mut level = 0f64;
    for i in 0..len {
        let target = if on[i] { 1.0 } else { 0.0 };
        let stepsize = 1.0 / ramp.max(1) as f64;
        level = if level < target {
            (level + stepsize).min(target)
        } else {
            (level - stepsize).max(target)
        };
        env[i] = level;
    }
    (0..len)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let s: f64 = amplitudes
                .iter()
                .enumerate()
                .map(|(n, a)| a * (2.0 * PI * (n + 1) as f64 * f0 * t).sin())
                .sum();
            (env[i] * s) as f32
        })
        .collect()
}

/// Signal-to-distortion ratio in dB, `10 log10(|s|² / |s - ŝ|²)`, with no allowed filtering
/// (stricter than BSS Eval's SDR, which first projects the estimate onto filtered references).
pub fn sdr(reference: &[f32], estimate: &[f32]) -> f64 {
    assert_eq!(reference.len(), estimate.len());
    let signal: f64 = reference.iter().map(|&x| f64::from(x).powi(2)).sum();
    let error: f64 = reference
        .iter()
        .zip(estimate)
        .map(|(&r, &e)| (f64::from(r) - f64::from(e)).powi(2))
        .sum();
    10.0 * (signal / error.max(1e-300)).log10()
}

/// The best SDR per reference over every assignment of estimates to references (references
/// and estimates as many).
pub fn best_permutation_sdr(references: &[Vec<f32>], estimates: &[Vec<f32>]) -> Vec<f64> {
    let n = references.len();
    assert_eq!(n, estimates.len());
    let mut best: Option<Vec<f64>> = None;
    let mut perm: Vec<usize> = (0..n).collect();
    permute(&mut perm, 0, &mut |p| {
        let scores: Vec<f64> = (0..n)
            .map(|i| sdr(&references[i], &estimates[p[i]]))
            .collect();
        let total: f64 = scores.iter().sum();
        if best.as_ref().is_none_or(|b| b.iter().sum::<f64>() < total) {
            best = Some(scores);
        }
    });
    best.expect("at least one permutation")
}

fn permute(p: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize])) {
    if k == p.len() {
        f(p);
        return;
    }
    for i in k..p.len() {
        p.swap(k, i);
        permute(p, k + 1, f);
        p.swap(k, i);
    }
}

pub use crate::flac::flac_bytes;

/// Quantizes `[-1, 1]` floats to `bits`-bit integers.
pub fn quantize(x: &[f32], bits: u32) -> Vec<i32> {
    let scale = (1i64 << (bits - 1)) as f32;
    x.iter()
        .map(|&v| ((v * scale).round() as i64).clamp(-(scale as i64), scale as i64 - 1) as i32)
        .collect()
}

/// Largest absolute difference between two signals.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs the `demix` binary with `args` in `dir`, so that paths in its messages are the
/// relative ones given.
pub fn demix(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_demix"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("demix runs")
}

/// Small and fast settings: 8 kHz inputs of one second are split with these.
pub const FAST: [&str; 6] = ["--n-fft", "256", "--iter", "20", "-k", "2"];

/// `demix separate INPUTS... -o out` in `dir` with the fast settings and `extra` flags.
pub fn separate(dir: &std::path::Path, inputs: &[&str], extra: &[&str]) -> std::process::Output {
    let mut args = vec!["separate"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["-o", "out"]);
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    demix(dir, &args)
}

/// The exit code is 0 (else the output is shown).
#[track_caller]
pub fn assert_ok(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A failed input: the exit code is 1, stdout is empty, and stderr is a single line holding
/// every `needle`.
#[track_caller]
pub fn assert_fails(out: &std::process::Output, needles: &[&str]) {
    assert_fails_with(out, 1, needles);
}

/// A command-line mistake: as [`assert_fails`], with exit code 2.
#[track_caller]
pub fn assert_usage_error(out: &std::process::Output, needles: &[&str]) {
    assert_fails_with(out, 2, needles);
}

#[track_caller]
fn assert_fails_with(out: &std::process::Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one line expected on stderr, got:\n{stderr}"
    );
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{needle:?} missing from the message: {}",
            lines[0]
        );
    }
}

/// One second of two tones at 8 kHz in `channels` channels (each quieter than the one
/// before): `low_hz`, loud for half a second, then soft, over a steady 1250 Hz.
pub fn two_tones(channels: usize, low_hz: f32) -> demix::audio::Audio {
    let rate = 8000;
    let signal = |c: usize| -> Vec<f32> {
        (0..rate)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let tone = |f: f32| (2.0 * std::f32::consts::PI * f * t).sin();
                let gain = 1.0 - 0.2 * c as f32;
                gain * (0.4 * tone(low_hz) * if i < 4000 { 1.0 } else { 0.1 } + 0.3 * tone(1250.0))
            })
            .collect()
    };
    demix::audio::Audio::new(rate as u32, (0..channels).map(signal).collect()).unwrap()
}
