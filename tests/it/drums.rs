//! Convolutive templates (`learn --frames`, NMFD): a drum whose spectrum moves after each hit,
//! separated from a tonal instrument. The drum is synthesised here: a kick (a sine falling
//! from 180 to 45 Hz) and a snare (noise whose bright part dies in 15 ms and whose body in
//! 90 ms, over a 190 Hz tone); the instrument holds notes of odd harmonics.

use std::f64::consts::PI;
use std::path::Path;

use demix::audio::Audio;
use demix::nmf::{Init, Loss, NmfParams};
use demix::separate::{SeparateParams, separate};
use demix::sources::{Templates, learn, mix_loss, percussion};
use demix::spectral::StftParams;

use crate::common::{TestRng, assert_ok, assert_usage_error, demix, sdr};

const RATE: u32 = 22_050;

/// A drum track `seconds` long: hits every 0.2 to 0.4 s, kick or snare, seeded.
pub(crate) fn drums(seed: u64, seconds: f64) -> Vec<f32> {
    let len = (seconds * f64::from(RATE)) as usize;
    let mut out = vec![0f64; len];
    let mut rng = TestRng::new(seed);
    let mut t = 0.05;
    while t < seconds - 0.3 {
        let first = (t * f64::from(RATE)) as usize;
        let kick = rng.uniform() < 0.5;
        let level = 0.6 + 0.4 * rng.uniform();
        let mut phase = 0.0;
        for i in 0..((0.3 * f64::from(RATE)) as usize).min(len - first) {
            let s = i as f64 / f64::from(RATE);
            let v = if kick {
                let f = 45.0 + 135.0 * (-s / 0.03).exp();
                phase += 2.0 * PI * f / f64::from(RATE);
                phase.sin() * (-s / 0.12).exp()
            } else {
                let noise = f64::from(rng.signed());
                let bright = noise * (-s / 0.015).exp();
                let body = noise * 0.5 * (-s / 0.09).exp();
                let tone = 0.4 * (2.0 * PI * 190.0 * s).sin() * (-s / 0.05).exp();
                bright + body + tone
            };
            out[first + i] += level * 0.5 * v;
        }
        t += 0.2 + 0.2 * rng.uniform();
    }
    out.into_iter().map(|v| v as f32).collect()
}

/// Held notes of odd harmonics (1/n²) from `notes`, one after another, seeded.
pub(crate) fn tonal(seed: u64, notes: &[u8], seconds: f64) -> Vec<f32> {
    let len = (seconds * f64::from(RATE)) as usize;
    let mut out = vec![0f64; len];
    let mut rng = TestRng::new(seed);
    let (mut start, note_len) = (0usize, (0.5 * f64::from(RATE)) as usize);
    while start + note_len <= len {
        let note = notes[(rng.next_u64() % notes.len() as u64) as usize];
        let f0 = 440.0 * 2f64.powf((f64::from(note) - 69.0) / 12.0);
        for i in 0..note_len {
            let s = i as f64 / f64::from(RATE);
            let ramp = (s * 50.0).min(1.0).min((note_len - i) as f64 / 200.0);
            let v: f64 = (0..5)
                .map(|m| {
                    let n = (2 * m + 1) as f64;
                    0.15 / (n * n) * (2.0 * PI * n * f0 * s).sin()
                })
                .sum();
            out[start + i] += ramp * v;
        }
        start += note_len;
    }
    out.into_iter().map(|v| v as f32).collect()
}

pub(crate) fn mono(x: &[f32]) -> Audio {
    Audio::new(RATE, vec![x.to_vec()]).unwrap()
}

/// The fit that learns the tests' templates: `k` of them with `loss`, two random starts.
pub(crate) fn training_fit(k: usize, loss: Loss) -> NmfParams {
    NmfParams::new(k)
        .with_loss(loss)
        .with_init(Init::Random)
        .with_restarts(2)
}

/// Four drum templates of `frames` frames, learned with `loss` from a training clip that
/// plays other hits than the mixtures.
pub(crate) fn drum_templates(frames: usize, loss: Loss) -> Templates {
    let fit = training_fit(4, loss).with_frames(frames);
    let clip = [mono(&drums(11, 8.0))];
    learn("drums", &clip, &StftParams::default(), &fit, &mut |_| {}).unwrap()
}

/// Drum templates of `frames` frames and tonal ones, learned from training clips that play
/// other hits and other notes than the mixture.
fn templates(frames: usize) -> (Templates, Templates) {
    let notes = [60, 62, 64, 65, 67, 69, 71, 72];
    let clip = [mono(&tonal(12, &notes, 8.0))];
    let fit = training_fit(8, Loss::ItakuraSaito);
    let keys = learn("keys", &clip, &StftParams::default(), &fit, &mut |_| {}).unwrap();
    (drum_templates(frames, Loss::ItakuraSaito), keys)
}

/// SDR of (drums, keys) separated from their mix, `seconds` long, with drum templates of
/// `frames` frames.
fn separated(frames: usize, max_frames: usize, seconds: f64) -> (f64, f64) {
    let (d, k) = (drums(1, seconds), tonal(2, &[60, 64, 67, 72], seconds));
    let mix: Vec<f32> = d.iter().zip(&k).map(|(a, b)| a + b).collect();
    let (td, tk) = templates(frames);
    assert_eq!(
        (td.templates(), td.frames, td.len()),
        (4, frames, 4 * frames)
    );
    let params = SeparateParams {
        nmf: NmfParams::new(0).with_loss(Loss::ItakuraSaito),
        templates: vec![td, tk],
        // The drum model alone: the keys' templates as learned (tests/it/pitch.rs has the
        // shifted copies, which lift both sources of this mix to 25-26 dB).
        pitch_shifts: 0,
        // Every bin: on the default bands (48 per octave) both drum models reach about the
        // same here (measured 17.2 dB with one frame, 17.8 with six).
        bands_per_octave: Some(0),
        max_frames,
        ..Default::default()
    };
    let stems = separate(&mono(&mix), &params).unwrap();
    (
        sdr(&d, &stems[0].channels[0]),
        sdr(&k, &stems[1].channels[0]),
    )
}

#[test]
fn convolutive_drum_templates_separate_drums_better_than_single_frames() {
    let (plain_drums, plain_keys) = separated(1, 32_768, 6.0);
    let (drums, keys) = separated(6, 32_768, 6.0);
    // Measured: 19.5 / 18.3 dB with one frame, 23.1 / 21.9 with six.
    assert!(
        drums >= plain_drums + 2.0 && keys >= plain_keys && drums >= 18.0,
        "drums, keys: 1 frame {plain_drums:.2}, {plain_keys:.2} dB; 6 frames {drums:.2}, {keys:.2}"
    );
    // 12 s (517 frames) cut into blocks of 256 frames: each block sees the frames its
    // templates reach before and after it, and the result stays within a fraction of a dB of
    // the whole fit.
    let (drums, keys) = separated(6, 32_768, 12.0);
    let (block_drums, block_keys) = separated(6, 256, 12.0);
    assert!(
        (block_drums - drums).abs() < 0.5 && (block_keys - keys).abs() < 0.5,
        "blocks {block_drums:.2}, {block_keys:.2}; whole {drums:.2}, {keys:.2}"
    );
}

pub(crate) fn write_wav(path: &Path, x: &[f32]) {
    demix::audio::write_wav(path, &mono(x), demix::audio::OutputFormat::Float32).unwrap();
}

/// Writes the training clips `hits.wav` (drums) and `keys.wav` (held notes) into `dir`.
fn write_training_clips(dir: &Path) {
    write_wav(&dir.join("hits.wav"), &drums(11, 4.0));
    write_wav(&dir.join("keys.wav"), &tonal(12, &[60, 64, 67], 4.0));
}

#[test]
fn learn_frames_writes_convolutive_templates_that_separate_uses() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    write_training_clips(dir.path());
    let (d, k) = (drums(1, 3.0), tonal(2, &[60, 67], 3.0));
    write_wav(
        &path("mix.wav"),
        &d.iter().zip(&k).map(|(a, b)| a + b).collect::<Vec<_>>(),
    );
    let out = demix(
        dir.path(),
        &[
            "learn",
            "hits.wav",
            "-k",
            "3",
            "--frames",
            "5",
            "-o",
            "drums.npz",
        ],
    );
    assert_ok(&out);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("3 5-frame kl templates of 'drums'"), "{line}");
    let loaded = Templates::load(&path("drums.npz")).unwrap();
    assert_eq!((loaded.templates(), loaded.frames), (3, 5));
    assert_ok(&demix(
        dir.path(),
        &["learn", "keys.wav", "-k", "4", "-o", "keys.npz"],
    ));
    let out = demix(
        dir.path(),
        &[
            "separate",
            "mix.wav",
            "--source",
            "drums.npz",
            "--source",
            "keys.npz",
            "-o",
            "out",
        ],
    );
    assert_ok(&out);
    let stem = |name: &str| demix::audio::read_audio(path(&format!("out/mix/{name}.wav"))).unwrap();
    assert!(sdr(&d, &stem("drums").channels[0]) > 8.0);
    assert!(sdr(&k, &stem("keys").channels[0]) > 8.0);
}

#[test]
fn template_lengths_are_bounded_and_refused_where_they_cannot_be_used() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(&dir.path().join("hits.wav"), &drums(11, 2.0));
    for bad in ["0", "65"] {
        let out = demix(
            dir.path(),
            &["learn", "hits.wav", "--frames", bad, "-o", "d.npz"],
        );
        assert_usage_error(&out, &["--frames: template frames", "between 1 and 64"]);
        assert!(!dir.path().join("d.npz").exists());
    }
    // -k auto chooses K as for templates of one frame, then fits templates of the length
    // asked for (here, a percussive recording's).
    assert_ok(&demix(
        dir.path(),
        &[
            "learn",
            "hits.wav",
            "-k",
            "auto",
            "--k-range",
            "2-4",
            "-o",
            "da.npz",
        ],
    ));
    let auto = Templates::load(&dir.path().join("da.npz")).unwrap();
    assert!(
        auto.frames == 6 && (2..=4).contains(&auto.templates()),
        "{auto:?}"
    );
    assert_ok(&demix(
        dir.path(),
        &[
            "learn", "hits.wav", "-k", "2", "--frames", "4", "-o", "d.npz",
        ],
    ));
    let out = demix(
        dir.path(),
        &["inspect", "hits.wav", "--source", "d.npz", "-o", "o"],
    );
    assert_usage_error(
        &out,
        &["--source", "templates of one frame; these are convolutive"],
    );
    let out = demix(
        dir.path(),
        &[
            "separate",
            "hits.wav",
            "--source",
            "d.npz",
            "--sparsity",
            "0.1",
            "-o",
            "o",
        ],
    );
    assert_usage_error(&out, &["--sparsity", "sparsity or smoothness"]);
}

#[test]
fn drums_are_percussive_and_held_notes_are_not() {
    let stft = StftParams::default();
    let hits = percussion(&[mono(&drums(11, 4.0))], &stft).unwrap();
    let notes = percussion(&[mono(&tonal(12, &[60, 64, 67], 4.0))], &stft).unwrap();
    assert!(hits.is_percussive(), "{hits:?}");
    assert!(!notes.is_percussive(), "{notes:?}");
}

#[test]
fn learn_gives_drums_convolutive_kl_templates_and_others_kl_ones_beside() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    write_training_clips(dir.path());
    let out = demix(
        dir.path(),
        &["learn", "hits.wav", "-k", "3", "-o", "drums.npz"],
    );
    assert_ok(&out);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("3 6-frame kl templates of 'drums'"), "{line}");
    let out = demix(
        dir.path(),
        &["learn", "keys.wav", "-k", "4", "-o", "keys.npz"],
    );
    assert_ok(&out);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("4 is templates of 'keys'"), "{line}");
    let (drum, keys) = (
        Templates::load(&path("drums.npz")).unwrap(),
        Templates::load(&path("keys.npz")).unwrap(),
    );
    assert_eq!(
        (drum.frames, drum.loss, drum.w_kl.is_some()),
        (6, Loss::KullbackLeibler, false)
    );
    let keys_kl = keys.w_kl.clone().expect("KL templates beside the IS ones");
    assert_eq!(
        (keys.frames, keys.loss, keys_kl.dim()),
        (1, Loss::ItakuraSaito, keys.w.dim())
    );
    // A mix with the drums is separated with KL, and the keys' KL templates are the ones used.
    let both = [drum.clone(), keys.clone()];
    assert_eq!(mix_loss(&both), Some(Loss::KullbackLeibler));
    assert_eq!(mix_loss(&both[1..]), Some(Loss::ItakuraSaito));
    let used = keys.clone().for_loss(Loss::KullbackLeibler);
    assert_eq!((used.w, used.loss), (keys_kl, Loss::KullbackLeibler));
    assert_eq!(keys.clone().for_loss(Loss::ItakuraSaito), keys);
    // Told the length and the loss, learn does as told.
    let out = demix(
        dir.path(),
        &[
            "learn", "hits.wav", "-k", "2", "--frames", "1", "--loss", "is", "-o", "d1.npz",
        ],
    );
    assert_ok(&out);
    let d1 = Templates::load(&path("d1.npz")).unwrap();
    assert_eq!((d1.frames, d1.loss), (1, Loss::ItakuraSaito));
}

#[test]
fn free_components_of_several_frames_are_refused_by_separate_and_inspect() {
    let separate = SeparateParams {
        nmf: NmfParams::new(2).with_frames(3),
        ..Default::default()
    };
    let e = separate.check().unwrap_err().to_string();
    assert!(e.contains("several frames"), "{e}");
    let inspect = demix::inspect::InspectParams {
        nmf: NmfParams::new(2).with_frames(3),
        ..Default::default()
    };
    let e = inspect.check().unwrap_err().to_string();
    assert!(e.contains("one frame"), "{e}");
}
