//! The rank sweep's speed target (issue 14): K = 2..16 with 3 starts on 30 s of mono audio
//! (44.1 kHz, the default STFT: 2048-sample frames, hop 512), and ARD on the same input. The
//! input is the synthetic mixture of 8 notes of `benches/notes.rs`; the spectrogram is made
//! once, outside the timing (the sweep shares it, as `-k auto` does). `cargo bench --bench rank`.

#[path = "notes.rs"]
mod notes;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use demix::audio::Audio;
use demix::nmf::{KRange, NmfParams, RankMethod, RankParams, select_rank};
use demix::spectral::{Stft, StftParams, channel_summed_magnitude};

fn rank(c: &mut Criterion) {
    let (mix, _) = notes::note_mixture(8, 30.0, 44_100, 0);
    let audio = Audio::new(44_100, vec![mix]).expect("audio");
    let stft = Stft::new(&StftParams::default()).expect("STFT");
    let v = channel_summed_magnitude(&stft, &audio);
    let nmf = NmfParams::new(1);
    let sweep = RankParams::new(KRange::new(2, 16).expect("range"));
    let ard = sweep.clone().with_method(RankMethod::Ard);
    let mut group = c.benchmark_group("rank_30s_mono");
    group.sample_size(10).warm_up_time(Duration::from_millis(1));
    group.bench_function("sweep_k2-16_3starts", |b| {
        b.iter(|| select_rank(v.t(), &nmf, &sweep).expect("rank").chosen)
    });
    group.bench_function("ard_k16", |b| {
        b.iter(|| select_rank(v.t(), &nmf, &ard).expect("rank").chosen)
    });
    group.finish();
}

criterion_group!(benches, rank);
criterion_main!(benches);
