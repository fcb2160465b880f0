//! Wiener-style soft masks: each source gets the share `S_s^p / Σ_r S_r^p` of every
//! time-frequency bin, where `S_s` is the source's model magnitude. The masks of a bin sum to 1,
//! so the masked sources add up to the mixture exactly.

/// Turns the model magnitudes of one frame into soft masks, in place.
///
/// `models` holds `sources` rows of equal length (one per source, bins contiguous); `power` is
/// the exponent p (2 gives the usual Wiener mask, larger values harder masks). The powers are
/// taken of magnitudes divided by the largest one in the bin, so they neither overflow nor
/// underflow; a bin where every model is zero is split equally.
///
/// # Panics
/// If `models.len()` is not a multiple of `sources`.
///
/// ```
/// let mut frame = vec![3.0, 0.0, 1.0,   // source 1, three bins
///                      1.0, 0.0, 1.0];  // source 2
/// demix::mask::soft_masks_in_place(&mut frame, 2, 2.0);
/// assert_eq!(frame, vec![0.9, 0.5, 0.5, 0.1, 0.5, 0.5]);
/// ```
pub fn soft_masks_in_place(models: &mut [f32], sources: usize, power: f32) {
    assert!(sources > 0 && models.len().is_multiple_of(sources));
    let bins = models.len() / sources;
    let equal = 1.0 / sources as f32;
    for f in 0..bins {
        let peak = (0..sources).fold(0f32, |m, s| m.max(models[s * bins + f]));
        if peak.is_nan() || peak <= 0.0 {
            (0..sources).for_each(|s| models[s * bins + f] = equal);
            continue;
        }
        let inv = 1.0 / peak;
        let mut sum = 0f32;
        for s in 0..sources {
            let r = models[s * bins + f] * inv;
            let v = if power == 2.0 {
                r * r
            } else if power == 1.0 {
                r
            } else {
                r.powf(power)
            };
            models[s * bins + f] = v;
            sum += v;
        }
        // The peak's own term is 1, so sum >= 1.
        let inv_sum = 1.0 / sum;
        (0..sources).for_each(|s| models[s * bins + f] *= inv_sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_sum_to_one_even_for_tiny_and_huge_models() {
        let mut frame = vec![
            1e-30, 1e30, 0.0, 5.0, 1e-30, 2e30, 0.0, 5.0, 3e-30, 0.0, 0.0, 0.0,
        ];
        soft_masks_in_place(&mut frame, 3, 2.0);
        for f in 0..4 {
            let sum: f32 = (0..3).map(|s| frame[s * 4 + f]).sum();
            assert!((sum - 1.0).abs() < 1e-6, "bin {f}: {sum}");
        }
        assert!(frame.iter().all(|m| m.is_finite()));
        // 1e-30 : 1e-30 : 3e-30 squared is 1 : 1 : 9.
        assert!((frame[8] - 9.0 / 11.0).abs() < 1e-6);
        // An all-zero bin is split equally.
        assert!((frame[2] - 1.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn larger_powers_give_harder_masks() {
        let soft = {
            let mut m = vec![2.0, 1.0];
            soft_masks_in_place(&mut m, 2, 1.0);
            m
        };
        let hard = {
            let mut m = vec![2.0, 1.0];
            soft_masks_in_place(&mut m, 2, 8.0);
            m
        };
        assert!((soft[0] - 2.0 / 3.0).abs() < 1e-6);
        assert!(hard[0] > 0.99 && hard[0] < 1.0);
    }
}
