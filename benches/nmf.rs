//! One multiplicative-update iteration (W then H) on the spectrogram of 30 s of mono audio at
//! 44.1 kHz (V of 1025 x 2584, K = 32, the W30 workload), for each loss. The factorisation and
//! all its buffers are built outside the timed part.

use criterion::{Criterion, criterion_group, criterion_main};
use demix::nmf::{Factorization, Init, Loss, NmfParams};
use demix::stft::{Stft, StftParams};
use ndarray::Array2;

/// Magnitude spectrogram (bins × frames) of a deterministic test signal: eight tones switched on
/// and off at different rates over a little noise.
pub fn spectrogram(seconds: usize) -> Array2<f32> {
    let rate = 44_100.0f32;
    let mut noise = 0x2545_F491_4F6C_DD1Du64;
    let x: Vec<f32> = (0..seconds * 44_100)
        .map(|i| {
            let t = i as f32 / rate;
            let mut v = 0.0;
            for (j, f) in [110.0f32, 220.0, 330.0, 440.0, 587.0, 659.0, 880.0, 1100.0]
                .iter()
                .enumerate()
            {
                let gate = ((t * (0.3 + 0.2 * j as f32)).fract() < 0.5) as u8 as f32;
                v += 0.05 * gate * (2.0 * std::f32::consts::PI * f * t).sin();
            }
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            v + 0.01 * ((noise >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
        })
        .collect();
    let stft = Stft::new(&StftParams::new(2048)).expect("valid parameters");
    stft.magnitude(&x).reversed_axes()
}

pub fn iteration(c: &mut Criterion) {
    let v = spectrogram(30);
    let mut group = c.benchmark_group("nmf_iteration_w30_k32");
    group.sample_size(30);
    for loss in [Loss::ItakuraSaito, Loss::KullbackLeibler, Loss::Euclidean] {
        let params = NmfParams::new(32).with_loss(loss).with_init(Init::Random);
        let mut f = Factorization::new(v.view(), &params).expect("valid parameters");
        group.bench_function(loss.to_string(), |b| b.iter(|| f.step()));
    }
    group.finish();
}

criterion_group!(benches, iteration);
criterion_main!(benches);
