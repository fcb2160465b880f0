//! STFT and inverse STFT of 30 s of mono audio at 44.1 kHz (n_fft 2048, hop 512); the plan is
//! built outside the timed part.

use criterion::{Criterion, criterion_group, criterion_main};
use demix::stft::{Stft, StftParams};

fn signal(len: usize) -> Vec<f32> {
    // A deterministic, broadband test signal: a chirp plus a few harmonics.
    (0..len)
        .map(|i| {
            let t = i as f32 / 44_100.0;
            (2.0 * std::f32::consts::PI * (100.0 + 400.0 * t) * t).sin() * 0.3
                + (2.0 * std::f32::consts::PI * 220.0 * t).sin() * 0.2
        })
        .collect()
}

fn stft(c: &mut Criterion) {
    let x = signal(30 * 44_100);
    let stft = Stft::new(&StftParams::new(2048)).expect("valid parameters");
    let spectrum = stft.forward(&x);
    let mut group = c.benchmark_group("stft_30s_mono");
    group.sample_size(20);
    group.bench_function("forward", |b| b.iter(|| stft.forward(&x)));
    group.bench_function("inverse", |b| {
        b.iter(|| stft.inverse(spectrum.view(), x.len()))
    });
    group.finish();
}

criterion_group!(benches, stft);
criterion_main!(benches);
