//! The mask-and-render stage: soft masks from W and H, applied to every channel's STFT, inverse
//! STFT and overlap-add of all K = 32 sources, on the W30 and W180 workloads (see
//! `workloads.rs`), into in-memory sinks (no files; `benches/io.rs` times writing). The
//! factorisation (a few iterations from a random start: the render's cost does not depend on
//! the values) and the sinks are made outside the timed part.

mod workloads;

use criterion::{Criterion, criterion_group, criterion_main};
use workloads::{W30, W180};

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_k32");
    group.sample_size(10);
    for w in [W30, W180] {
        let audio = w.audio();
        let (separation, mut sinks) = workloads::render_setup(&audio);
        group.bench_function(w.name, |b| {
            b.iter(|| separation.render(&audio, &mut sinks).expect("in memory"))
        });
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
