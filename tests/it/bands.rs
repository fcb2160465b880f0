//! The activations fitted first on frequency bands, then on every bin without the templates
//! no frame needs (`separate --bands-per-octave`, with learned templates only): the stems must
//! be as good as a fit of every bin throughout, in memory and block by block.

use demix::nmf::{Loss, NmfParams};
use demix::separate::SeparateParams;

use crate::common::sdr;
use crate::drums::{drums, mono, tonal};
use crate::pitch::templates;
use demix::sources::Templates;

#[test]
fn a_fit_begun_on_bands_separates_as_well_as_one_of_every_bin() {
    // Notes the training clip did not play (within two semitones of ones it did) beside drums.
    let (d, k) = (drums(1, 6.0), tonal(2, &[62, 65, 66, 69], 6.0));
    let mix = mono(&d.iter().zip(&k).map(|(a, b)| a + b).collect::<Vec<f32>>());
    let (td, tk) = templates();
    // KL (the loss of songs with drums) and Itakura-Saito, whose bands are weighed by width.
    for loss in [Loss::KullbackLeibler, Loss::ItakuraSaito] {
        separates_as_well_on_bands(loss, &mix, (&d, &k), (&td, &tk));
    }
}

fn separates_as_well_on_bands(
    loss: Loss,
    mix: &demix::audio::Audio,
    (d, k): (&[f32], &[f32]),
    (td, tk): (&Templates, &Templates),
) {
    let separated = |bands_per_octave, max_frames| {
        let params = SeparateParams {
            nmf: NmfParams::new(0).with_loss(loss),
            templates: vec![td.clone(), tk.clone()],
            bands_per_octave,
            max_frames,
            ..Default::default()
        };
        let separation = params.check().unwrap().analyze(mix, &mut |_| {}).unwrap();
        // The masks use the whole templates, whatever the fit ran on.
        assert_eq!(separation.nmf.w.nrows(), 1025);
        let stems = separation.render_to_memory(mix).unwrap();
        let scores = (sdr(d, &stems[0].channels[0]), sdr(k, &stems[1].channels[0]));
        let cost = separation.nmf.final_cost();
        (scores, (separation.nmf.h, cost))
    };
    let (every_bin, (h_bins, cost_bins)) = separated(Some(0), 32_768);
    let (banded, (h_bands, cost_bands)) = separated(Some(48), 32_768);
    // 516 frames in blocks of 256: the long recordings' path.
    let (blocks, (h_blocks, _)) = separated(Some(48), 256);
    let (_, (h_blocks_bins, _)) = separated(Some(0), 256);
    // The fits did begin on bands: their activations differ from those of every bin. (Which
    // templates they drop is `separate::coarse`'s unit test: here few are, as the four notes
    // played keep most copies above their share in some frame.)
    assert_ne!(h_bins, h_bands);
    assert_ne!(h_blocks_bins, h_blocks);
    // And they ended on every bin: the last cost is every bin's, as low as that of the fit of
    // every bin throughout (measured: within 2e-6 of it with KL, 9e-5 with IS).
    assert!(
        (cost_bands - cost_bins).abs() <= 1e-3 * cost_bins,
        "{loss:?}: {cost_bands} against {cost_bins}"
    );
    // Measured, drums and keys: KL 26.87 and 25.70 dB on every bin throughout, and the same
    // to 1e-4 dB begun on bands, in memory and in blocks; Itakura-Saito 26.634 and 25.464
    // against 26.6337 and 25.4636.
    for (what, (drums, keys)) in [("bands", banded), ("blocks", blocks)] {
        assert!(
            drums >= every_bin.0 - 0.05 && keys >= every_bin.1 - 0.05 && keys >= 20.0,
            "{loss:?}, {what}: drums {drums:.2}, keys {keys:.2} dB against every bin's {every_bin:?}"
        );
    }
}

#[test]
fn bands_beyond_1200_per_octave_are_refused() {
    use demix::error::{Param, ParamError};
    let (_, keys) = templates();
    let params = |bands_per_octave| SeparateParams {
        templates: vec![keys.clone()],
        nmf: NmfParams::new(0),
        bands_per_octave,
        ..Default::default()
    };
    let err = params(Some(1201)).check().unwrap_err();
    assert!(
        matches!(
            err,
            ParamError::OutOfRange {
                param: Param::BandsPerOctave,
                ..
            }
        ),
        "{err}"
    );
    assert!(params(Some(1200)).check().is_ok() && params(Some(0)).check().is_ok());
}

#[test]
fn bands_without_templates_alone_or_with_penalties_are_refused() {
    use demix::error::{Param, ParamError};
    let (_, keys) = templates();
    let refused = |params: SeparateParams| {
        let err = params.check().unwrap_err();
        assert!(
            matches!(
                err,
                ParamError::Conflict {
                    param: Param::BandsPerOctave,
                    ..
                }
            ),
            "{err}"
        );
    };
    let with = |nmf: NmfParams, templates: Vec<Templates>| SeparateParams {
        nmf,
        templates,
        bands_per_octave: Some(48),
        ..Default::default()
    };
    // Free components (their templates must be fitted on every bin), none learned, and
    // penalties (whose steps are not weighed by band).
    refused(with(NmfParams::new(2), vec![keys.clone()]));
    refused(with(NmfParams::new(4), vec![]));
    refused(with(
        NmfParams::new(0).with_sparsity(0.1),
        vec![keys.clone()],
    ));
    refused(with(
        NmfParams::new(0).with_smoothness(0.1),
        vec![keys.clone()],
    ));
    assert!(with(NmfParams::new(0), vec![keys.clone()]).check().is_ok());
    // Not asked for, bands are used where they may be, and nowhere else.
    let by_default = |nmf: NmfParams, templates: Vec<Templates>| {
        let params = SeparateParams {
            bands_per_octave: None,
            ..with(nmf, templates)
        };
        let bands = params.check().unwrap().params().bands();
        (params.bands(), bands)
    };
    assert_eq!(by_default(NmfParams::new(0), vec![keys.clone()]), (48, 48));
    assert_eq!(by_default(NmfParams::new(2), vec![keys.clone()]), (0, 0));
    assert_eq!(by_default(NmfParams::new(4), vec![]), (0, 0));
    let sparse = NmfParams::new(0).with_sparsity(0.1);
    assert_eq!(by_default(sparse, vec![keys]), (0, 0));
}
