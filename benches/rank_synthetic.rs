//! The rank selection on synthetic mixtures of known rank (`benches/notes.rs`): for N = 3, 5
//! and 8 notes and a few seeds, the K the sweep and ARD choose, their measures per K and their
//! times. `cargo run --release --example rank_synthetic [SEEDS] [SECONDS] [RATE] [N_FFT]`.

#[path = "notes.rs"]
mod notes;

use std::time::Instant;

use demix::audio::Audio;
use demix::nmf::{KRange, NmfParams, RankMethod, RankParams, select_rank};
use demix::spectral::{Stft, StftParams, channel_summed_magnitude};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let seeds: u64 = arg(0, "3").parse().expect("SEEDS");
    let seconds: f64 = arg(1, "8").parse().expect("SECONDS");
    let top: Option<usize> = std::env::var("TOP").ok().and_then(|v| v.parse().ok());
    let rate: u32 = arg(2, "16000").parse().expect("RATE");
    let n_fft: usize = arg(3, "1024").parse().expect("N_FFT");
    let verbose = std::env::var_os("VERBOSE").is_some();
    let stft = Stft::new(&StftParams::new(n_fft)).expect("valid STFT");
    let nmf = NmfParams::new(1);
    println!("N seed method chosen seconds");
    let only: Option<usize> = std::env::var("ONLY_N").ok().and_then(|v| v.parse().ok());
    for n in [3, 5, 8]
        .into_iter()
        .filter(|n| only.is_none_or(|o| o == *n))
    {
        for seed in 0..seeds {
            let (mix, parts) = notes::note_mixture(n, seconds, rate, seed);
            if std::env::var_os("ORACLE").is_some() {
                let mut sum = None::<ndarray::Array2<f32>>;
                for p in &parts {
                    let a = Audio::new(rate, vec![p.clone()]).expect("audio");
                    let vp = channel_summed_magnitude(&stft, &a);
                    let fit = demix::fit(
                        vp.t(),
                        &NmfParams::new(1).with_max_iter(300).with_floor(0.0),
                    )
                    .expect("fit");
                    println!(
                        "   note alone K=1 cost {:.4e} of sum {:.4e}",
                        fit.final_cost(),
                        vp.sum()
                    );
                    sum = Some(match sum {
                        None => vp,
                        Some(s) => s + &vp,
                    });
                }
                let v = channel_summed_magnitude(
                    &stft,
                    &Audio::new(rate, vec![mix.clone()]).expect("a"),
                );
                let s = sum.expect("notes");
                let kl: f64 = v
                    .iter()
                    .zip(s.iter())
                    .map(|(&x, &m)| {
                        let (x, m) = (f64::from(x).max(1e-9), f64::from(m).max(1e-9));
                        x * (x / m).ln() - x + m
                    })
                    .sum();
                println!(
                    "   KL(|mix| | sum |note|) {:.4e} of sum {:.4e}",
                    kl,
                    v.sum()
                );
            }
            let audio = Audio::new(rate, vec![mix]).expect("audio");
            let v = channel_summed_magnitude(&stft, &audio);
            if std::env::var_os("DIRECT").is_some() {
                for k in 2..=n + 3 {
                    let fit = demix::fit(
                        v.t(),
                        &NmfParams::new(k)
                            .with_max_iter(500)
                            .with_tol(1e-6)
                            .with_floor(0.0),
                    )
                    .expect("fit");
                    println!(
                        "   direct K={k} cost/entry {:.5}",
                        fit.final_cost() / v.len() as f64 / (v.sum() as f64 / v.len() as f64)
                    );
                }
            }
            let methods = match std::env::var("METHOD").as_deref() {
                Ok("ard") => vec![RankMethod::Ard],
                Ok("sweep") => vec![RankMethod::Sweep],
                _ => vec![RankMethod::Sweep, RankMethod::Ard],
            };
            for method in methods {
                let params = RankParams::new(KRange::new(2, top.unwrap_or(n + 3)).expect("range"))
                    .with_method(method);
                let started = Instant::now();
                let report = select_rank(v.t(), &nmf, &params).expect("rank");
                let secs = started.elapsed().as_secs_f64();
                println!("{n} {seed} {method} {} {secs:.2}", report.chosen);
                if verbose {
                    for r in &report.rows {
                        println!(
                            "   K={:2} cost {:.5} stab {:.3} held {:.5} it {}",
                            r.k, r.cost, r.stability, r.held_out, r.iterations
                        );
                    }
                    if !report.relevance.is_empty() {
                        let rel: Vec<String> =
                            report.relevance.iter().map(|r| format!("{r:.2}")).collect();
                        println!(
                            "   relevance/bound {} ({} it)",
                            rel.join(" "),
                            report.ard_iterations
                        );
                    }
                }
            }
        }
    }
}
