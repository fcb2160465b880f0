//! STFT and inverse STFT of the W180 workload (3 minutes of stereo at 44.1 kHz, n_fft 2048,
//! hop 512; see `workloads.rs`), both channels, and the channel-summed magnitude spectrogram
//! that `demix separate` factorises. The plan is built outside the timed part.

mod workloads;

use criterion::{Criterion, criterion_group, criterion_main};
use demix::spectral::channel_summed_magnitude;
use workloads::W180;

fn stft(c: &mut Criterion) {
    let audio = W180.audio();
    let stft = workloads::stft();
    let spectra: Vec<_> = audio.channels.iter().map(|x| stft.forward(x)).collect();
    let mut group = c.benchmark_group("stft_w180");
    group.sample_size(10);
    group.bench_function("forward", |b| {
        b.iter(|| {
            for x in &audio.channels {
                std::hint::black_box(stft.forward(x));
            }
        })
    });
    group.bench_function("inverse", |b| {
        b.iter(|| {
            for s in &spectra {
                std::hint::black_box(stft.inverse(s.view(), audio.len()));
            }
        })
    });
    group.bench_function("forward_and_inverse", |b| {
        b.iter(|| {
            for x in &audio.channels {
                let s = stft.forward(x);
                std::hint::black_box(stft.inverse(s.view(), x.len()));
            }
        })
    });
    group.bench_function("channel_summed_magnitude", |b| {
        b.iter(|| channel_summed_magnitude(&stft, &audio))
    });
    group.finish();
}

criterion_group!(benches, stft);
criterion_main!(benches);
