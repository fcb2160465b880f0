//! The demix side of `benches/peers.py`: writes the workloads' audio and V, and times demix's
//! NMF iterations and STFT on exactly the data the Python peers get.
//!
//! ```text
//! cargo run --release --example workload -- make DIR        # DIR/w30.wav, w180.wav, w30_v.npy, w180_v.npy
//! cargo run --release --example workload -- nmf V.npy LOSS STEPS   # median seconds per iteration
//! cargo run --release --example workload -- stft WAV RUNS          # median seconds of STFT + inverse
//! cargo run --release --example workload -- render WAV RUNS        # median seconds of the render
//! ```
//!
//! `render` times `Separation::render` of K = 32 sources into in-memory sinks (as
//! `benches/render.rs`), for before/after comparisons of two builds.
//!
//! The audio is written as 32-bit float WAV, so Python reads the very samples demix reads; V
//! (`np.load`: bins x frames, float32) is the channels' summed STFT magnitudes, computed by
//! demix's own STFT. Timings are printed as one number (seconds) on stdout; rayon's threads
//! follow `RAYON_NUM_THREADS` (default: one per core).

mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use demix::audio::{OutputFormat, read_audio, write_wav};
use demix::formats::npy::{NpyArray, load_npy, save_npy};
use demix::nmf::{Factorization, Init, Loss, NmfParams};
use workloads::{K, W30, W180, median};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["make", dir] => make(Path::new(dir)),
        ["nmf", v, loss, steps] => nmf(Path::new(v), loss, steps),
        ["stft", wav, runs] => stft(Path::new(wav), runs),
        ["render", wav, runs] => render(Path::new(wav), runs),
        _ => Err(
            "usage: workload make DIR | nmf V.npy LOSS STEPS | stft WAV RUNS | render WAV RUNS"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workload: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn make(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for w in [W30, W180] {
        let audio = w.audio();
        let wav: PathBuf = dir.join(format!("{}.wav", w.name));
        write_wav(&wav, &audio, OutputFormat::Float32)?;
        let v = workloads::spectrogram_of(&audio);
        let (v_bins, v_frames) = v.dim();
        save_npy(
            &dir.join(format!("{}_v.npy", w.name)),
            &NpyArray::F32(v.into_dyn()),
        )?;
        eprintln!(
            "{}: {} s, {} channel(s), V {} x {}",
            wav.display(),
            w.seconds,
            w.channels,
            v_bins,
            v_frames
        );
    }
    Ok(())
}

/// Median time of one `Factorization::step` (W then H, no cost), after two untimed steps.
fn nmf(v: &Path, loss: &str, steps: &str) -> Result<()> {
    let v = load_npy(v)?
        .to_f32()
        .ok_or("V is not numeric")?
        .into_dimensionality::<ndarray::Ix2>()?;
    let loss: Loss = loss.parse()?;
    let steps: usize = steps.parse()?;
    let params = NmfParams::new(K).with_loss(loss).with_init(Init::Random);
    let mut f = Factorization::new(v.view(), &params)?;
    f.step();
    f.step();
    let times = (0..steps.max(1))
        .map(|_| {
            let start = Instant::now();
            f.step();
            start.elapsed().as_secs_f64()
        })
        .collect();
    println!("{:.6e}", median(times));
    Ok(())
}

/// Median time of the STFT and inverse STFT of every channel of `wav`, plans made beforehand.
fn stft(wav: &Path, runs: &str) -> Result<()> {
    let audio = read_audio(wav)?;
    let runs: usize = runs.parse()?;
    let stft = workloads::stft();
    let times = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            for channel in &audio.channels {
                let spectrum = stft.forward(channel);
                let back = stft.inverse(spectrum.view(), channel.len());
                std::hint::black_box(back);
            }
            start.elapsed().as_secs_f64()
        })
        .collect();
    println!("{:.6e}", median(times));
    Ok(())
}

/// Median time of rendering K sources of `wav` (masks, inverse STFT, overlap-add) into
/// in-memory sinks, after a factorisation of a few iterations made beforehand.
fn render(wav: &Path, runs: &str) -> Result<()> {
    let audio = read_audio(wav)?;
    let runs: usize = runs.parse()?;
    let (separation, mut sinks) = workloads::render_setup(&audio);
    let times = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            separation
                .render(&audio, &mut sinks)
                .map(|()| start.elapsed().as_secs_f64())
        })
        .collect::<demix::Result<Vec<f64>>>()?;
    println!("{:.6e}", median(times));
    Ok(())
}
