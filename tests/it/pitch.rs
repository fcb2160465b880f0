//! Pitch-shifted template copies (`separate --pitch-shifts`): a tonal source whose training
//! clip played other notes than the mixture, beside a drum kit whose broadband templates
//! would otherwise explain the notes its own templates have never seen.

use demix::nmf::{Loss, NmfParams};
use demix::separate::SeparateParams;
use demix::sources::{Templates, learn};
use demix::spectral::StftParams;

use crate::common::sdr;
use crate::drums::{drum_templates, drums, mono, tonal, training_fit};

/// Drum templates (6 frames) and tonal ones learned from notes C4, E4 and G4 only, with KL.
pub(crate) fn templates() -> (Templates, Templates) {
    let clip = [mono(&tonal(12, &[60, 64, 67], 8.0))];
    let fit = training_fit(3, Loss::KullbackLeibler);
    let keys = learn("keys", &clip, &StftParams::default(), &fit, &mut |_| {}).unwrap();
    (drum_templates(6, Loss::KullbackLeibler), keys)
}

#[test]
fn shifted_copies_separate_notes_the_training_clip_did_not_play() {
    // The mixture's notes are D4, F4, F#4 and A4: none of them was in the training clip, each
    // within two semitones of one that was.
    let (d, k) = (drums(1, 6.0), tonal(2, &[62, 65, 66, 69], 6.0));
    let mix: Vec<f32> = d.iter().zip(&k).map(|(a, b)| a + b).collect();
    let (td, tk) = templates();
    let separated = |pitch_shifts| {
        let params = SeparateParams {
            nmf: NmfParams::new(0).with_loss(Loss::KullbackLeibler),
            templates: vec![td.clone(), tk.clone()],
            pitch_shifts,
            ..Default::default()
        };
        let separator = params.check().unwrap();
        // The checked parameters hold the copies: checking them again makes no more.
        let again = separator.params().check().unwrap();
        assert_eq!(again.params().templates, separator.params().templates);
        // 3 tonal templates and their copies at ±1 and ±2 semitones; the drums' 4 as learned.
        let columns: Vec<_> = (separator.params().templates.iter())
            .map(|t| t.len())
            .collect();
        let expected = if pitch_shifts == 2 { 15 } else { 3 };
        assert_eq!(columns, [24, expected]);
        let stems = separator.separate(&mono(&mix)).unwrap();
        (
            sdr(&d, &stems[0].channels[0]),
            sdr(&k, &stems[1].channels[0]),
        )
    };
    let (plain_drums, plain_keys) = separated(0);
    let (drums, keys) = separated(2);
    // Measured: 7.1 / 5.9 dB as learned, 27.0 / 25.8 with the shifted copies.
    assert!(
        keys >= plain_keys + 10.0 && drums >= plain_drums + 10.0 && keys >= 20.0,
        "drums, keys: as learned {plain_drums:.2}, {plain_keys:.2} dB; \
         with shifted copies {drums:.2}, {keys:.2}"
    );
}

#[test]
fn far_copies_separate_notes_four_to_six_semitones_from_the_training_clip() {
    // F#3, G#3, B4 and C#5: each 4 to 6 semitones from the nearest note of the training clip
    // (C4, E4, G4), beyond the copies at ±1 and ±2 semitones.
    let (d, k) = (drums(1, 6.0), tonal(2, &[54, 56, 71, 73], 6.0));
    let mix: Vec<f32> = d.iter().zip(&k).map(|(a, b)| a + b).collect();
    let (td, tk) = templates();
    let separated = |pitch_shifts, shift_penalty| {
        let params = SeparateParams {
            nmf: NmfParams::new(0).with_loss(Loss::KullbackLeibler),
            templates: vec![td.clone(), tk.clone()],
            pitch_shifts,
            shift_penalty,
            ..Default::default()
        };
        let separator = params.check().unwrap();
        let stems = separator.separate(&mono(&mix)).unwrap();
        // Checked again, the parameters keep the copies' handicaps: the same stems.
        let again = separator.params().check().unwrap();
        assert_eq!(again.separate(&mono(&mix)).unwrap(), stems);
        (
            sdr(&d, &stems[0].channels[0]),
            sdr(&k, &stems[1].channels[0]),
        )
    };
    let (near_drums, near_keys) = separated(2, 0.0);
    let defaults = SeparateParams::default();
    let (drums, keys) = separated(defaults.pitch_shifts, defaults.shift_penalty);
    // Measured: 1.97 / 0.80 dB with copies to ±2 semitones, 21.19 / 20.02 with the defaults.
    assert!(
        keys >= near_keys + 10.0 && drums >= near_drums + 10.0 && keys >= 15.0,
        "drums, keys: with copies to ±2 semitones {near_drums:.2}, {near_keys:.2} dB; \
         to ±6, handicapped beyond ±2, {drums:.2}, {keys:.2}"
    );
}

#[test]
fn copies_beyond_the_memory_allowed_are_refused_before_they_are_made() {
    use demix::error::{Param, ParamError};
    // 1000 templates of 1025 bins: 4.1 MB; with ±6 semitones (13 copies, of W and W_kl, and
    // the stack) 160 MB, against a limit of 64 MiB.
    let (_, mut keys) = templates();
    keys.w = ndarray::Array2::from_elem((1025, 1000), 1e-3);
    keys.w_kl = Some(keys.w.clone());
    let params = |pitch_shifts| SeparateParams {
        nmf: NmfParams::new(0)
            .with_loss(Loss::KullbackLeibler)
            .with_max_memory(Some(64 << 20)),
        templates: vec![keys.clone()],
        pitch_shifts,
        ..Default::default()
    };
    let err = params(6).check().unwrap_err();
    assert!(
        matches!(
            err,
            ParamError::OutOfRange {
                param: Param::PitchShifts,
                ..
            }
        ),
        "{err}"
    );
    assert!(params(1).check().is_ok());
}

#[test]
fn a_batch_run_with_other_copies_handicaps_bands_or_filters_is_not_complete() {
    use crate::common::{assert_ok, demix};
    use crate::drums::write_wav;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    write_wav(&d.join("keys.wav"), &tonal(12, &[60, 64, 67], 3.0));
    let song: Vec<f32> = (tonal(2, &[62, 65], 3.0).iter().zip(drums(1, 3.0)))
        .map(|(a, b)| a + b)
        .collect();
    write_wav(&d.join("in/song.wav"), &song);
    assert_ok(&demix(
        d,
        &["learn", "keys.wav", "-k", "3", "-o", "keys.npz"],
    ));
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["separate", "in", "--source", "keys.npz"];
        args.extend(["-o", out]);
        args.extend(extra);
        demix(d, &args)
    };
    // Without the copies, with another handicap or on other bands, the stems would differ
    // (with other re-estimations they could: this input is mono): not complete, said so.
    for (out, other) in [
        ("a", ["--pitch-shifts", "0"]),
        ("b", ["--bands-per-octave", "24"]),
        ("c", ["--shift-penalty", "0.2"]),
        ("e", ["--spatial-iterations", "2"]),
    ] {
        assert_ok(&run(out, &[]));
        // The same run again: complete.
        let again = run(out, &[]);
        assert_ok(&again);
        assert!(String::from_utf8_lossy(&again.stdout).contains("1 already complete"));
        let changed = run(out, &other);
        assert_eq!(changed.status.code(), Some(1));
        let said = String::from_utf8_lossy(&changed.stderr);
        assert!(
            said.contains("made with other parameters"),
            "{other:?}: {said}"
        );
    }
    // Stems of a build whose fit ran on the bands throughout (its report records the bands
    // without the fit's iterations on them or the share it keeps) are not taken as complete.
    assert_ok(&run("d", &[]));
    let report = d.join("d/demix-report.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let params = &mut json["files"][0]["params"];
    assert_eq!(
        (
            params["band_iterations"].as_u64(),
            params["keep_share"].as_f64()
        ),
        (Some(10), Some(0.003))
    );
    let params = params.as_object_mut().unwrap();
    params.remove("band_iterations");
    params.remove("keep_share");
    std::fs::write(&report, serde_json::to_string(&json).unwrap()).unwrap();
    let before = run("d", &[]);
    assert_eq!(before.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&before.stderr).contains("made with other parameters"));
    // Nor stems of a build whose spatial filter started from masks of power 0.5 (its report
    // does not record the masks' default power; on this mono input the stems would be the
    // same, but the arguments alone cannot tell).
    assert_ok(&run("f", &[]));
    let report = d.join("f/demix-report.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let params = json["files"][0]["params"].as_object_mut().unwrap();
    assert_eq!(params.remove("spatial_mask_power"), Some(0.75.into()));
    std::fs::write(&report, serde_json::to_string(&json).unwrap()).unwrap();
    let before = run("f", &[]);
    assert_eq!(before.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&before.stderr).contains("made with other parameters"));
}
