//! The mask-and-render stage: soft masks from W and H, applied to every channel's STFT, inverse
//! STFT and overlap-add of all K = 32 sources, on the W30 and W180 workloads (see
//! `workloads.rs`), into in-memory sinks (no files; `benches/io.rs` times writing). The
//! factorisation (a few iterations from a random start: the render's cost does not depend on
//! the values) and the sinks are made outside the timed part.

mod workloads;

use criterion::{Criterion, criterion_group, criterion_main};
use demix::nmf::{self, Init, NmfParams};
use demix::separate::{Separation, Source, StemSink};
use workloads::{K, W30, W180};

/// Keeps the last block of each channel, in a buffer that is reused.
struct LastBlock(Vec<Vec<f32>>);

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

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_k32");
    group.sample_size(10);
    for w in [W30, W180] {
        let audio = w.audio();
        let v = workloads::spectrogram_of(&audio);
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
        let separation = Separation::new(fitted, sources, workloads::stft(), 2.0);
        let mut sinks: Vec<LastBlock> = (0..K).map(|_| LastBlock(Vec::new())).collect();
        group.bench_function(w.name, |b| {
            b.iter(|| separation.render(&audio, &mut sinks).expect("in memory"))
        });
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
