//! One multiplicative-update iteration (W then H, no cost) for each loss on the W30 and W180
//! workloads (V of 1025 x 2584 and 1025 x 15504, K = 32; see `workloads.rs`), and the floor
//! of one Itakura–Saito iteration on W30 computed from this machine's own GEMM rate and memory
//! bandwidth, measured in the same run. The factorisations and all buffers are built outside
//! the timed part.
//!
//! The floor (printed, not a criterion measurement):
//!
//! ```text
//! floor = GEMM flops / GEMM rate + bytes / bandwidth
//! ```
//!
//! - GEMM flops: an IS iteration computes six F x T x K products (the model, and the numerator
//!   and denominator products, for W and again for H): 12 F T K = 1.017 GFLOP on W30.
//! - GEMM rate: the best of (a) those six products with faer, block by block (256 frames) in
//!   parallel on all threads, as the portable iteration calls them, (b) the same products
//!   with one block per thread (1292 frames), which leaves faer the largest shapes, and (c)
//!   on a CPU with AVX-512, demix's own register-tiled kernels doing the four products with K
//!   columns on one side (`demix::nmf::k_wide_products`, pure products without the
//!   element-wise work the iteration fuses into the model's tiles), as the iteration calls
//!   them. Also printed: the floor at the FMA peak, the rate no product can pass.
//! - bytes: the data X (F x T f32) is read once (the H update and the next W update's terms
//!   can share one sweep over the blocks, as demix's tiled path does); the activations G
//!   (T x K) are read twice and written once; W is negligible. 11.6 MB on W30. The model and
//!   ratio blocks are made and consumed in cache and are not counted, so the floor is one that
//!   no blocked implementation can reach.
//! - bandwidth: the best of two parallel streaming reads: of X itself (10.6 MB, which stays in
//!   the 32 MB L3 between reads) and of 512 MiB (DRAM).
//!
//! Rounds alternate GEMM, reads and IS iteration (A B C A B C ...), and medians are taken, so
//! a load that changes during the run affects all three alike. The timed iteration follows an
//! untimed one, as in a fit (the 512 MiB read just before would otherwise leave it cold).

mod workloads;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use demix::nmf::{Factorization, Init, Loss, NmfParams};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};
use rayon::prelude::*;
use workloads::{K, W30, W180, Workload, median};

fn params(loss: Loss) -> NmfParams {
    NmfParams::new(K).with_loss(loss).with_init(Init::Random)
}

fn iteration(c: &mut Criterion) {
    for (w, samples) in [(W30, 30), (W180, 10)] {
        let v = w.spectrogram();
        let mut group = c.benchmark_group(format!("nmf_iteration_{}_k32", w.name));
        group.sample_size(samples);
        for loss in [Loss::ItakuraSaito, Loss::KullbackLeibler, Loss::Euclidean] {
            let mut f = Factorization::new(v.view(), &params(loss)).expect("valid parameters");
            group.bench_function(loss.to_string(), |b| b.iter(|| f.step()));
        }
        group.finish();
    }
}

/// `c = a · b` with faer on one thread, as `demix::nmf` calls it (ndarray views, any strides).
fn gemm(a: &ArrayView2<f32>, b: &ArrayView2<f32>, c: &mut ArrayViewMut2<f32>) {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    assert_eq!((b.nrows(), c.dim()), (k, (m, n)));
    // SAFETY: the faer views have exactly the shapes and strides of the ndarray views they
    // are made from, and `c` is borrowed mutably, so it aliases neither `a` nor `b`.
    unsafe {
        let a =
            faer::MatRef::<f32>::from_raw_parts(a.as_ptr(), m, k, a.strides()[0], a.strides()[1]);
        let b =
            faer::MatRef::<f32>::from_raw_parts(b.as_ptr(), k, n, b.strides()[0], b.strides()[1]);
        let (rs, cs) = (c.strides()[0], c.strides()[1]);
        let c = faer::MatMut::<f32>::from_raw_parts_mut(c.as_mut_ptr(), m, n, rs, cs);
        faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, b, 1.0, faer::Par::Seq);
    }
}

/// The buffers of one block in flight.
struct GemmSlot {
    model: Array2<f32>,
    ratio: Array2<f32>,
    w_num: Array2<f32>,
    w_den: Array2<f32>,
    h_num: Array2<f32>,
    h_den: Array2<f32>,
}

/// The six products of an IS iteration, blocks of `block` frames computed in parallel in
/// groups of `slots.len()`, as `demix::nmf` runs them (W pass, then H pass).
fn six_products(x: &Array2<f32>, w: &Array2<f32>, g: &Array2<f32>, slots: &mut [GemmSlot]) {
    let frames = x.nrows();
    let block = slots[0].model.nrows();
    let n_blocks = frames.div_ceil(block);
    for pass in 0..2 {
        let mut start = 0;
        while start < n_blocks {
            let n = slots.len().min(n_blocks - start);
            slots[..n].par_iter_mut().enumerate().for_each(|(i, slot)| {
                let r = (start + i) * block..((start + i + 1) * block).min(frames);
                let tb = r.len();
                let gb = g.slice(s![r, ..]);
                let mut model = slot.model.slice_mut(s![..tb, ..]);
                gemm(&gb, &w.t(), &mut model);
                let ratio = slot.ratio.slice(s![..tb, ..]);
                let model = slot.model.slice(s![..tb, ..]);
                if pass == 0 {
                    gemm(&ratio.t(), &gb, &mut slot.w_num.view_mut());
                    gemm(&model.t(), &gb, &mut slot.w_den.view_mut());
                } else {
                    gemm(&ratio, &w.view(), &mut slot.h_num.slice_mut(s![..tb, ..]));
                    gemm(&model, &w.view(), &mut slot.h_den.slice_mut(s![..tb, ..]));
                }
            });
            start += n;
        }
    }
}

fn gemm_slots(n: usize, block: usize, bins: usize) -> Vec<GemmSlot> {
    (0..n)
        .map(|_| GemmSlot {
            model: Array2::zeros((block, bins)),
            ratio: Array2::from_elem((block, bins), 0.5),
            w_num: Array2::zeros((bins, K)),
            w_den: Array2::zeros((bins, K)),
            h_num: Array2::zeros((block, K)),
            h_den: Array2::zeros((block, K)),
        })
        .collect()
}

/// Fused multiply-adds per thread in one [`fma_peak`] measurement.
const FMA_STEPS: usize = 1 << 20;

/// Runs [`fma_loop`] on every thread at once; returns the flops done.
fn fma_peak() -> f64 {
    let threads = rayon::current_num_threads();
    let sum: f32 = (0..threads)
        .into_par_iter()
        .map(|i| fma_loop(black_box(1.0 + i as f32 * 1e-3)))
        .sum();
    black_box(sum);
    (threads * FMA_STEPS * FMA_LANES * 2) as f64
}

/// Independent accumulators of [`fma_loop`], enough to cover the FMA latency on two ports.
const FMA_LANES: usize = 16 * 16;

/// `FMA_STEPS` fused multiply-adds on `FMA_LANES` independent lanes (16 vectors of 16 on
/// AVX-512), with nothing but the FMAs in the loop: the machine's peak rate.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma", "aarch64+neon"))]
fn fma_loop(seed: f32) -> f32 {
    let mut acc = [seed; FMA_LANES];
    let (a, b) = (black_box(0.999_999_f32), black_box(1e-7_f32));
    for _ in 0..FMA_STEPS {
        for x in acc.iter_mut() {
            *x = x.mul_add(a, b);
        }
    }
    acc.iter().sum()
}

/// Sums `data` `reps` times in parallel (one contiguous share per thread), so that waking the
/// threads is not what is timed.
fn stream_read(data: &[f32], reps: usize) -> f32 {
    let share = data.len().div_ceil(rayon::current_num_threads());
    data.par_chunks(share)
        .map(|part| (0..reps).map(|_| sum(black_box(part))).sum::<f32>())
        .sum()
}

/// A sum in 64 independent lanes, compiled for the running CPU's widest vectors, so that the
/// read and not the additions is what limits it.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "aarch64+neon"))]
fn sum(part: &[f32]) -> f32 {
    let mut acc = [0f32; 64];
    let (chunks, tail) = part.as_chunks::<64>();
    for chunk in chunks {
        for j in 0..64 {
            acc[j] += chunk[j];
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

fn time(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Measures and prints the floor of an IS iteration on `workload` and the iteration's ratio
/// to it.
fn floor_of(workload: Workload) {
    const ROUNDS: usize = 25;
    const X_READS: usize = 10;
    let v = workload.spectrogram();
    let (bins, frames) = v.dim();
    let threads = rayon::current_num_threads();
    let mut f = Factorization::new(v.view(), &params(Loss::ItakuraSaito)).expect("valid");
    f.step();

    // The GEMM operands: X (frames x bins), W (bins x K), G (frames x K), as in the engine.
    let x = v.t().as_standard_layout().into_owned();
    let w = Array2::from_shape_fn((bins, K), |(i, j)| 1e-3 * (1 + (i * 7 + j * 3) % 11) as f32);
    let g = Array2::from_shape_fn((frames, K), |(i, j)| 1e-1 * (1 + (i * 5 + j) % 13) as f32);
    let mut block_slots = gemm_slots(2 * threads, 256, bins);
    let mut big_slots = gemm_slots(threads, frames.div_ceil(threads), bins);
    let dram: Vec<f32> = vec![1.0; 128 << 20]; // 512 MiB
    let x_data = x.as_slice().expect("standard layout");

    let (mut t_block, mut t_big, mut t_x, mut t_dram, mut t_iter, mut t_fma) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    #[cfg_attr(not(feature = "bench-internals"), allow(unused_mut))] // filled only with it
    let mut t_tiled: Vec<f64> = vec![];
    let mut fma_flops = 0.0;
    for _ in 0..ROUNDS {
        t_fma.push(time(|| fma_flops = fma_peak()));
        t_block.push(time(|| six_products(&x, &w, &g, &mut block_slots)));
        t_big.push(time(|| six_products(&x, &w, &g, &mut big_slots)));
        // demix's own kernels doing pure products: only with `--features bench-internals`.
        #[cfg(feature = "bench-internals")]
        {
            let mut tiled = false;
            let t = time(|| tiled = demix::nmf::k_wide_products(w.view(), g.view()));
            if tiled {
                t_tiled.push(t);
            }
        }
        t_x.push(time(|| {
            black_box(stream_read(x_data, X_READS));
        }));
        t_dram.push(time(|| {
            black_box(stream_read(&dram, 1));
        }));
        // As in a fit, the timed iteration follows another (whose data is then in cache).
        f.step();
        t_iter.push(time(|| f.step()));
    }
    let flops = 12.0 * (bins * frames * K) as f64;
    let bytes = 4.0 * (bins * frames + 3 * frames * K) as f64;
    let x_bytes = 4.0 * x_data.len() as f64;
    let x_read_bytes = x_bytes * X_READS as f64;
    let dram_bytes = 4.0 * dram.len() as f64;
    let (t_block, t_big) = (median(t_block), median(t_big));
    let (t_x, t_dram, t_iter) = (median(t_x), median(t_dram), median(t_iter));
    let peak = fma_flops / median(t_fma);
    let faer_rate = flops / t_block.min(t_big);
    // The four K-wide products are 8 of the 12 F T K flops.
    let tiled_rate = if t_tiled.is_empty() {
        0.0
    } else {
        flops * 8.0 / 12.0 / median(t_tiled)
    };
    let rate = faer_rate.max(tiled_rate);
    let bandwidth = (x_read_bytes / t_x).max(dram_bytes / t_dram);
    let floor = flops / rate + bytes / bandwidth;
    println!(
        "\nfloor of one IS iteration on {} (V {bins} x {frames}, K {K}, {threads} threads; \
         medians of {ROUNDS} interleaved rounds)",
        workload.name
    );
    println!(
        "  GEMM: {:.3} GFLOP; faer {:.0} GFLOP/s in blocks of 256 frames, {:.0} GFLOP/s in one \
         block per thread",
        flops * 1e-9,
        flops / t_block * 1e-9,
        flops / t_big * 1e-9
    );
    if tiled_rate > 0.0 {
        println!(
            "  demix's AVX-512 kernels: {:.0} GFLOP/s on the four products with K columns",
            tiled_rate * 1e-9
        );
    }
    println!(
        "  FMA peak {:.0} GFLOP/s (a loop of nothing but FMAs on every thread): faer reaches \
         {:.0}% of it, demix's kernels {:.0}%",
        peak * 1e-9,
        100.0 * faer_rate / peak,
        100.0 * tiled_rate / peak
    );
    println!(
        "  memory: {:.1} MB moved; streaming read {:.0} GB/s from L3 (X, {:.1} MB), {:.0} GB/s \
         from DRAM (512 MiB)",
        bytes * 1e-6,
        x_read_bytes / t_x * 1e-9,
        x_bytes * 1e-6,
        dram_bytes / t_dram * 1e-9
    );
    println!(
        "  floor = {:.3} ms (GEMM {:.3} ms at {:.0} GFLOP/s + memory {:.3} ms at {:.0} GB/s)",
        floor * 1e3,
        flops / rate * 1e3,
        rate * 1e-9,
        bytes / bandwidth * 1e3,
        bandwidth * 1e-9
    );
    let peak_floor = flops / peak + bytes / bandwidth;
    println!(
        "  at the FMA peak instead: {:.3} ms (GEMM {:.3} ms)",
        peak_floor * 1e3,
        flops / peak * 1e3
    );
    println!(
        "  measured IS iteration {:.3} ms = {:.2} x the floor ({:.2} x the FMA-peak floor)\n",
        t_iter * 1e3,
        t_iter / floor,
        t_iter / peak_floor
    );
}

fn floor(_: &mut Criterion) {
    floor_of(W30);
}

criterion_group!(benches, floor, iteration);
criterion_main!(benches);
