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
/// demix::spectral::soft_masks_in_place(&mut frame, 2, 2.0);
/// assert_eq!(frame, vec![0.9, 0.5, 0.5, 0.1, 0.5, 0.5]);
/// ```
pub fn soft_masks_in_place(models: &mut [f32], sources: usize, power: f32) {
    assert!(sources > 0 && models.len().is_multiple_of(sources));
    let bins = models.len() / sources;
    // Bins are taken `CHUNK` at a time, each pass over the sources running along contiguous
    // bins, so that the loops vectorise; every value is computed by the same operations in the
    // same order as one bin at a time would.
    let mut start = 0;
    while start < bins {
        let n = CHUNK.min(bins - start);
        masks_of_chunk(models, sources, bins, start, n, power);
        start += n;
    }
}

/// `(model · inv)^p` of every source in place, each added to `sum`, source by source.
#[inline(always)]
fn powers_and_sums(
    models: &mut [f32],
    sources: usize,
    row: &impl Fn(usize) -> std::ops::Range<usize>,
    inv: &[f32],
    sum: &mut [f32],
    pow: impl Fn(f32) -> f32,
) {
    for s in 0..sources {
        let models = &mut models[row(s)];
        for ((m, &i), total) in models.iter_mut().zip(inv).zip(sum.iter_mut()) {
            let v = pow(*m * i);
            *m = v;
            *total += v;
        }
    }
}

/// Bins handled together by [`soft_masks_in_place`].
const CHUNK: usize = 128;

/// The masks of bins `start..start + n` (`n <= CHUNK`) of every source.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn masks_of_chunk(
    models: &mut [f32],
    sources: usize,
    bins: usize,
    start: usize,
    n: usize,
    power: f32,
) {
    let row = |s: usize| s * bins + start..s * bins + start + n;
    let mut peak = [0f32; CHUNK];
    let peak = &mut peak[..n];
    for s in 0..sources {
        for (p, &m) in peak.iter_mut().zip(&models[row(s)]) {
            *p = p.max(m);
        }
    }
    let mut inv = [0f32; CHUNK];
    let inv = &mut inv[..n];
    for (i, &p) in inv.iter_mut().zip(peak.iter()) {
        *i = 1.0 / p;
    }
    let mut sum = [0f32; CHUNK];
    let sum = &mut sum[..n];
    // The exponent's cases as separate loops, so that the common ones vectorise.
    if power == 2.0 {
        powers_and_sums(models, sources, &row, inv, sum, |r| r * r);
    } else if power == 1.0 {
        powers_and_sums(models, sources, &row, inv, sum, |r| r);
    } else if power == 0.5 {
        powers_and_sums(models, sources, &row, inv, sum, f32::sqrt);
    } else if power == 0.75 {
        // The spatial filter's default: `√r·√√r`, within an ulp or two of `powf`.
        powers_and_sums(models, sources, &row, inv, sum, |r| {
            let root = r.sqrt();
            root * root.sqrt()
        });
    } else {
        powers_and_sums(models, sources, &row, inv, sum, |r| r.powf(power));
    }
    // The peak's own term is 1, so sum >= 1.
    for total in sum.iter_mut() {
        *total = 1.0 / *total;
    }
    for s in 0..sources {
        for (m, &i) in models[row(s)].iter_mut().zip(sum.iter()) {
            *m *= i;
        }
    }
    // A bin where every model is zero is split equally.
    let equal = 1.0 / sources as f32;
    for (j, &p) in peak.iter().enumerate() {
        if p.is_nan() || p <= 0.0 {
            for s in 0..sources {
                models[s * bins + start + j] = equal;
            }
        }
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

    #[test]
    fn masks_of_the_fast_powers_are_the_ratios_of_the_powers() {
        for power in [0.5, 0.75] {
            fractional_power_masks_are_the_ratios_of_the_powers(power);
        }
    }

    fn fractional_power_masks_are_the_ratios_of_the_powers(power: f32) {
        // Three sources over 300 bins (more than one chunk), models spanning 12 decades.
        let models: Vec<f32> = (0..900)
            .map(|i| 10f32.powf(((i * 37) % 97) as f32 / 8.0 - 6.0))
            .collect();
        let mut masks = models.clone();
        soft_masks_in_place(&mut masks, 3, power);
        for f in 0..300 {
            let roots: Vec<f64> = (0..3)
                .map(|s| f64::from(models[s * 300 + f]).powf(f64::from(power)))
                .collect();
            let total: f64 = roots.iter().sum();
            for s in 0..3 {
                let want = roots[s] / total;
                assert!(
                    (f64::from(masks[s * 300 + f]) - want).abs() < 1e-6,
                    "power {power}, bin {f}"
                );
            }
        }
    }
}
