//! STFT: round trips over many sizes, magnitudes against a naive DFT, frame geometry, checks.

use demix::ParamError;
use demix::spectral::{Stft, StftParams, Window};

use crate::common::{TestRng, max_abs_diff};

fn random_signal(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = TestRng::new(seed);
    (0..len).map(|_| rng.signed()).collect()
}

#[test]
fn inverse_reconstructs_any_length_for_many_sizes_and_hops() {
    let mut cases = 0;
    for n_fft in [16usize, 17, 64, 100, 256, 1023, 2048] {
        for hop in [1, n_fft / 8, n_fft / 4, n_fft / 3, n_fft / 2, n_fft * 3 / 4] {
            let params = StftParams::new(n_fft).with_hop(hop.max(1));
            let Ok(stft) = Stft::new(&params) else {
                continue;
            };
            for len in [
                1,
                2,
                n_fft / 2,
                n_fft - 1,
                n_fft,
                n_fft + 1,
                3 * n_fft + 7,
                5000,
            ] {
                if hop == 1 && len > 2 * n_fft {
                    continue; // hop 1 is exercised; keep the test fast
                }
                let x = random_signal(len, (n_fft * 1000 + hop * 10 + len) as u64);
                let spectrum = stft.forward(&x);
                assert_eq!(spectrum.dim(), (stft.n_frames(len), n_fft / 2 + 1));
                let y = stft.inverse(spectrum.view(), len);
                assert_eq!(y.len(), len);
                let err = max_abs_diff(&x, &y);
                assert!(
                    err < 1e-5,
                    "n_fft {n_fft} hop {hop} len {len}: max error {err}"
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 200, "only {cases} cases ran");
}

#[test]
fn hamming_window_also_reconstructs() {
    let stft = Stft::new(&StftParams::new(512).with_window(Window::Hamming)).unwrap();
    let x = random_signal(4000, 5);
    let y = stft.inverse(stft.forward(&x).view(), x.len());
    assert!(max_abs_diff(&x, &y) < 1e-5);
}

/// The DFT of frame `t` computed directly in f64 from the definition.
fn naive_frame_magnitudes(x: &[f32], n_fft: usize, hop: usize, t: usize) -> Vec<f64> {
    let window: Vec<f64> = (0..n_fft)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos())
        .collect();
    let start = (t * hop) as isize - (n_fft / 2) as isize;
    let frame: Vec<f64> = (0..n_fft)
        .map(|i| {
            let j = start + i as isize;
            let v = if j >= 0 && (j as usize) < x.len() {
                f64::from(x[j as usize])
            } else {
                0.0
            };
            v * window[i]
        })
        .collect();
    (0..=n_fft / 2)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, v) in frame.iter().enumerate() {
                let phase = -2.0 * std::f64::consts::PI * (k * i) as f64 / n_fft as f64;
                re += v * phase.cos();
                im += v * phase.sin();
            }
            (re * re + im * im).sqrt()
        })
        .collect()
}

#[test]
fn magnitudes_match_a_naive_dft_including_edge_frames() {
    for (n_fft, hop) in [(256usize, 64usize), (255, 50), (1024, 256)] {
        let x = random_signal(3 * n_fft + 11, n_fft as u64);
        let stft = Stft::new(&StftParams::new(n_fft).with_hop(hop)).unwrap();
        let mags = stft.magnitude(&x);
        let frames = stft.n_frames(x.len());
        for t in [0, 1, frames / 2, frames - 1] {
            let expected = naive_frame_magnitudes(&x, n_fft, hop, t);
            let peak = expected.iter().cloned().fold(0.0, f64::max);
            for (k, e) in expected.iter().enumerate() {
                let got = f64::from(mags[[t, k]]);
                assert!(
                    (got - e).abs() <= 1e-5 * peak + 1e-6,
                    "n_fft {n_fft} frame {t} bin {k}: {got} vs {e}"
                );
            }
        }
    }
}

#[test]
fn a_sinusoid_on_a_bin_peaks_in_that_bin() {
    let (n_fft, rate) = (1024usize, 8192.0f32);
    let bin = 100;
    let f = bin as f32 * rate / n_fft as f32;
    let x: Vec<f32> = (0..8192)
        .map(|i| (2.0 * std::f32::consts::PI * f * i as f32 / rate).sin())
        .collect();
    let stft = Stft::new(&StftParams::new(n_fft)).unwrap();
    let mags = stft.magnitude(&x);
    let row = mags.row(mags.nrows() / 2);
    let peak = row
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(peak, bin);
    // A unit sinusoid under a Hann window of N points has peak magnitude N/4.
    assert!((row[bin] - n_fft as f32 / 4.0).abs() < 0.01 * n_fft as f32 / 4.0);
}

#[test]
fn frames_are_centred_and_cover_the_last_sample() {
    let stft = Stft::new(&StftParams::new(2048)).unwrap();
    assert_eq!(stft.hop(), 512);
    // As librosa with center=True: 30 s at 44.1 kHz gives 2584 frames.
    assert_eq!(stft.n_frames(30 * 44_100), 2584);
    for len in [1usize, 511, 512, 513, 5000, 44_100] {
        let frames = stft.n_frames(len);
        let last_centre = (frames - 1) * stft.hop();
        assert!(last_centre + stft.n_fft() / 4 >= len - 1, "len {len}");
    }
    // With a hop of half a frame, an extra frame keeps the last samples covered.
    let half = Stft::new(&StftParams::new(1024).with_hop(512)).unwrap();
    assert_eq!(half.n_frames(1023), 3);
}

#[test]
fn streaming_overlap_add_matches_the_one_shot_inverse() {
    let stft = Stft::new(&StftParams::new(256).with_hop(64)).unwrap();
    let x = random_signal(3001, 9);
    let spectrum = stft.forward(&x);
    let one_shot = stft.inverse(spectrum.view(), x.len());
    let mut ola = stft.overlap_add(x.len());
    let mut scratch = stft.scratch();
    let mut frame = vec![0.0; 256];
    let mut streamed = Vec::new();
    for row in spectrum.rows() {
        stft.synthesize(row.as_slice().unwrap(), &mut scratch, &mut frame);
        ola.push(&frame);
        ola.drain(&mut streamed);
    }
    assert!(ola.is_complete());
    assert_eq!(streamed, one_shot);
}

#[test]
fn hop_of_zero_is_rejected() {
    let e = Stft::new(&StftParams::new(512).with_hop(0)).unwrap_err();
    assert_eq!(e, ParamError::HopOutOfRange { hop: 0, n_fft: 512 });
}

#[test]
fn hop_larger_than_the_frame_is_rejected() {
    let e = Stft::new(&StftParams::new(512).with_hop(513)).unwrap_err();
    assert_eq!(
        e,
        ParamError::HopOutOfRange {
            hop: 513,
            n_fft: 512
        }
    );
}

#[test]
fn hop_too_large_for_overlap_add_is_rejected_with_the_largest_usable_hop() {
    let e = Stft::new(&StftParams::new(512).with_hop(512)).unwrap_err();
    let ParamError::HopTooLarge { max_hop, .. } = e else {
        panic!("unexpected error {e:?}");
    };
    assert!((384..512).contains(&max_hop), "max hop {max_hop}");
    assert!(Stft::new(&StftParams::new(512).with_hop(max_hop)).is_ok());
    assert!(e.to_string().contains(&format!("at most {max_hop}")));
}

#[test]
fn tiny_frames_are_rejected() {
    assert!(matches!(
        Stft::new(&StftParams::new(2)),
        Err(ParamError::FftTooSmall { min: 4, got: 2 })
    ));
}
