//! The benchmark workloads of issue #6, made synthetically so that anyone can reproduce them:
//!
//! - **W30**: 30 s of mono audio at 44.1 kHz; with n_fft 2048 and hop 512, V is 1025 x 2584.
//! - **W180**: 3 minutes of stereo audio at 44.1 kHz; V (the channels' summed magnitudes, what
//!   `demix separate` factorises) is 1025 x 15504.
//!
//! The signal: eight tones, each switched on and off at its own rate and panned to its own
//! place, over a little white noise (independent per channel). Shared by the benches and by
//! the `workload` example, which writes the audio and V for `benches/peers.py`.

#![allow(dead_code)] // Each bench uses only some of these.

use demix::audio::Audio;
use demix::nmf::{self, Init, NmfParams};
use demix::separate::{Separation, StemSink};
use demix::sources::Source;
use demix::spectral::channel_summed_magnitude;
use demix::spectral::{Stft, StftParams};
use ndarray::Array2;

/// Sample rate of both workloads.
pub const RATE: u32 = 44_100;

/// A workload: its name, length and channel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub name: &'static str,
    pub seconds: usize,
    pub channels: usize,
}

pub const W30: Workload = Workload {
    name: "w30",
    seconds: 30,
    channels: 1,
};

pub const W180: Workload = Workload {
    name: "w180",
    seconds: 180,
    channels: 2,
};

/// NMF components of both workloads.
pub const K: usize = 32;

/// The STFT of both workloads: n_fft 2048, hop 512, periodic Hann.
pub fn stft() -> Stft {
    Stft::new(&StftParams::new(2048).with_hop(512)).expect("valid parameters")
}

impl Workload {
    /// The workload's audio, the same on every machine.
    pub fn audio(self) -> Audio {
        const TONES: [f64; 8] = [110.0, 220.0, 330.0, 440.0, 587.33, 659.26, 880.0, 1100.0];
        let len = self.seconds * RATE as usize;
        let channels = (0..self.channels)
            .map(|c| {
                let mut noise = 0x2545_F491_4F6C_DD1Du64 ^ (c as u64 + 1).wrapping_mul(0x9E37);
                // Tone j sits at pan position j / 7 (0 left, 1 right); mono takes the middle.
                let gains: Vec<f64> = (0..TONES.len())
                    .map(|j| {
                        if self.channels == 1 {
                            0.05
                        } else {
                            let pan = j as f64 / (TONES.len() - 1) as f64;
                            let side = if c == 0 { 1.0 - pan } else { pan };
                            0.05 * (0.2 + 0.8 * side)
                        }
                    })
                    .collect();
                (0..len)
                    .map(|i| {
                        let t = i as f64 / f64::from(RATE);
                        let mut v = 0.0;
                        for (j, (&f, &g)) in TONES.iter().zip(&gains).enumerate() {
                            let gate = (t * (0.3 + 0.2 * j as f64)).fract() < 0.5;
                            if gate {
                                v += g * (std::f64::consts::TAU * f * t).sin();
                            }
                        }
                        noise ^= noise << 13;
                        noise ^= noise >> 7;
                        noise ^= noise << 17;
                        let white = (noise >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
                        (v + 0.01 * white) as f32
                    })
                    .collect()
            })
            .collect();
        Audio::new(RATE, channels).expect("equal channels")
    }

    /// V, bins x frames: the channels' summed STFT magnitudes, as `demix separate` computes it.
    pub fn spectrogram(self) -> Array2<f32> {
        spectrogram_of(&self.audio())
    }
}

/// V (bins x frames) of `audio`.
pub fn spectrogram_of(audio: &Audio) -> Array2<f32> {
    channel_summed_magnitude(&stft(), audio).reversed_axes()
}

/// A sink for rendered stems that keeps the last block of each channel, in a buffer that is
/// reused: the render is timed without writing files.
pub struct LastBlock(pub Vec<Vec<f32>>);

impl StemSink for LastBlock {
    fn write_block(&mut self, block: &[&[f32]]) -> demix::Result<()> {
        self.0.resize(block.len(), Vec::new());
        for (dst, src) in self.0.iter_mut().zip(block) {
            dst.clear();
            dst.extend_from_slice(src);
        }
        Ok(())
    }
}

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

/// What the render stage needs for `audio`, made outside the timed part: a factorisation of K
/// components after a few iterations from a random start (the render's cost does not depend
/// on the values), rendered as one source each, with one sink per source.
pub fn render_setup(audio: &Audio) -> (Separation, Vec<LastBlock>) {
    let v = spectrogram_of(audio);
    let params = NmfParams::new(K)
        .with_init(Init::Random)
        .with_max_iter(5)
        .with_tol(0.0);
    let fitted = nmf::fit(v.view(), &params).expect("valid parameters");
    let sources = (0..K)
        .map(|k| Source {
            name: format!("source{k}"),
            components: vec![k],
        })
        .collect();
    let separation = Separation::new(fitted, sources, stft(), 2.0);
    let sinks = (0..K).map(|_| LastBlock(Vec::new())).collect();
    (separation, sinks)
}
