//! The fundamental frequency of a spectral template, or none for a template without
//! harmonic structure.
//!
//! The template's spectral peaks are located first (local maxima above 1% of the largest,
//! their frequencies refined by parabolic interpolation of the log magnitude). Each candidate
//! fundamental on a grid of a tenth of a semitone scores `Σ_n n^-1/2 a_n` over the peaks that
//! lie within a tenth of a partial spacing of some `n f0` (`n` up to 12). The decreasing
//! weights make the true fundamental beat its subharmonics, which explain the same peaks as
//! higher partials, and combs such as a fifth below, which explain only some of them. The
//! best candidate is refined by the amplitude-weighted least-squares fit of `f_n = n f0` over
//! its first eight partials.
//!
//! A template is pitched when the partials of its fundamental hold a clear majority of its
//! energy: at least [`MIN_HARMONIC_FRACTION`], and at least [`MIN_EXCESS_FRACTION`] of the
//! way from what a flat spectrum would put under the same comb to all of it. Below about
//! three bins (65 Hz with 2048-point frames at 44.1 kHz) neighbouring partials overlap and
//! pitches are found less reliably: use longer frames for low notes.

/// Least fraction of a template's energy near its partials for it to be pitched.
pub const MIN_HARMONIC_FRACTION: f64 = 0.6;
/// Least share, of the energy a flat spectrum would put outside the partials' comb, that a
/// pitched template puts inside it.
pub const MIN_EXCESS_FRACTION: f64 = 0.35;

/// Partials summed per candidate.
const PARTIALS: usize = 12;

/// The estimated pitch of a template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PitchEstimate {
    /// Fundamental frequency in Hz.
    pub f0_hz: f64,
    /// Fraction of the template's energy within a bin of the fundamental's partials.
    pub harmonic_fraction: f64,
}

/// Estimates the fundamental of `template`, a magnitude spectrum whose bin `k` is at
/// `k * bin_hz` Hz, searching `min_hz..=max_hz`. `None` when it has no harmonic structure
/// (see the module documentation).
///
/// ```
/// use demix::inspect::estimate_pitch;
/// // Partials of 196 Hz (G3) with 1/n amplitudes, on bins of 10 Hz, each spread over 3 bins.
/// let mut spectrum = vec![0.0f32; 1025];
/// for n in 1..20 {
///     let bin = (196.0 * n as f64 / 10.0) as usize;
///     let (a, frac) = (1.0 / n as f32, (196.0 * n as f64 / 10.0).fract() as f32);
///     spectrum[bin] += a * (1.0 - frac);
///     spectrum[bin + 1] += a * frac;
/// }
/// let pitch = estimate_pitch(&spectrum, 10.0, 30.0, 4000.0).unwrap();
/// assert!((pitch.f0_hz - 196.0).abs() < 1.0, "{}", pitch.f0_hz);
/// ```
pub fn estimate_pitch(
    template: &[f32],
    bin_hz: f64,
    min_hz: f64,
    max_hz: f64,
) -> Option<PitchEstimate> {
    let bins = template.len();
    if bins < 4 || bin_hz.is_nan() || bin_hz <= 0.0 {
        return None;
    }
    let top_hz = (bins - 1) as f64 * bin_hz;
    // Below 1.5 bins, neighbouring partials merge and no comb can be told from noise.
    let low = min_hz.max(1.5 * bin_hz);
    let high = max_hz.min(top_hz / 2.0);
    if low.is_nan() || high.is_nan() || low >= high {
        return None;
    }
    let mag: Vec<f64> = template.iter().map(|&a| f64::from(a.max(0.0))).collect();
    let peaks = spectral_peaks(&mag, bin_hz);
    if peaks.is_empty() {
        return None;
    }
    let steps = (120.0 * (high / low).log2()).ceil() as usize;
    let mut best = (0.0, low);
    for i in 0..=steps {
        let f0 = low * 2f64.powf(i as f64 / 120.0);
        let s: f64 = matches(&peaks, f0)
            .map(|(n, _, a)| a / (n as f64).sqrt())
            .sum();
        if s > best.0 {
            best = (s, f0);
        }
    }
    if best.0 <= 0.0 {
        return None;
    }
    // Weighted least squares of f = n f0 over the partials found, weights their amplitudes.
    let (num, den) = matches(&peaks, best.1)
        .take_while(|&(n, _, _)| n <= REFINE_PARTIALS)
        .fold((0.0, 0.0), |(num, den), (n, f, a)| {
            (num + a * n as f64 * f, den + a * (n * n) as f64)
        });
    let f0 = if den > 0.0 { num / den } else { best.1 };
    let (fraction, coverage) = harmonic_fraction(&mag, bin_hz, f0);
    let pitched =
        fraction >= MIN_HARMONIC_FRACTION && excess((fraction, coverage)) >= MIN_EXCESS_FRACTION;
    pitched.then_some(PitchEstimate {
        f0_hz: f0,
        harmonic_fraction: fraction,
    })
}

/// Partials used to refine the estimate: higher ones are more precise, but on strings they
/// are stretched above the harmonic series.
const REFINE_PARTIALS: usize = 8;

/// Largest distance, in partials, of a peak from `n f0` for it to be partial `n`.
const MATCH_TOLERANCE: f64 = 0.1;

/// Local maxima of `mag` above 1% of its largest value, strongest first (at most 40), as
/// (frequency in Hz from parabolic interpolation of the log magnitude, magnitude).
fn spectral_peaks(mag: &[f64], bin_hz: f64) -> Vec<(f64, f64)> {
    let strongest = mag.iter().copied().fold(0.0, f64::max);
    if strongest.is_nan() || strongest <= 0.0 {
        return Vec::new();
    }
    let mut peaks: Vec<(f64, f64)> = (1..mag.len() - 1)
        .filter(|&k| mag[k] >= 0.01 * strongest && mag[k] > mag[k - 1] && mag[k] >= mag[k + 1])
        .map(|k| {
            let ln = |v: f64| v.max(strongest * 1e-9).ln();
            let (l, m, r) = (ln(mag[k - 1]), ln(mag[k]), ln(mag[k + 1]));
            let curvature = l - 2.0 * m + r;
            let shift = if curvature < 0.0 {
                (0.5 * (l - r) / curvature).clamp(-0.5, 0.5)
            } else {
                0.0
            };
            ((k as f64 + shift) * bin_hz, mag[k])
        })
        .collect();
    peaks.sort_by(|a, b| b.1.total_cmp(&a.1));
    peaks.truncate(40);
    peaks.sort_by(|a, b| a.0.total_cmp(&b.0));
    peaks
}

/// The peaks that are partials of `f0` (up to the [`PARTIALS`]th), as (n, frequency,
/// magnitude), lowest first, at most one peak per partial (the strongest).
fn matches(peaks: &[(f64, f64)], f0: f64) -> impl Iterator<Item = (usize, f64, f64)> {
    let mut best: [Option<(f64, f64)>; PARTIALS] = [None; PARTIALS];
    for &(f, a) in peaks {
        let ratio = f / f0;
        let n = ratio.round();
        if n >= 1.0 && n <= PARTIALS as f64 && (ratio - n).abs() <= MATCH_TOLERANCE {
            let slot = &mut best[n as usize - 1];
            if slot.is_none_or(|(_, b)| a > b) {
                *slot = Some((f, a));
            }
        }
    }
    best.into_iter()
        .enumerate()
        .filter_map(|(i, m)| m.map(|(f, a)| (i + 1, f, a)))
}

/// How much of what a flat spectrum would leave outside the comb a template puts inside it:
/// 0 for a flat spectrum, 1 when all of its energy is inside.
fn excess((fraction, coverage): (f64, f64)) -> f64 {
    if coverage >= 1.0 {
        0.0
    } else {
        (fraction - coverage) / (1.0 - coverage)
    }
}

/// How far from `n f0` a partial is looked for, in bins: one bin, or a quarter of the
/// partials' spacing when they are closer than four bins.
fn reach(f0: f64, bin_hz: f64) -> f64 {
    (0.25 * f0 / bin_hz).min(1.0)
}

/// The fraction of energy (squared magnitude) near the partials of `f0` (within
/// [`reach`]), and the fraction of bins that comb covers.
fn harmonic_fraction(mag: &[f64], bin_hz: f64, f0: f64) -> (f64, f64) {
    let bins = mag.len();
    let mut inside = vec![false; bins];
    let mut n = 1;
    loop {
        let c = n as f64 * f0 / bin_hz;
        let r = reach(f0, bin_hz);
        if c - r >= bins as f64 {
            break;
        }
        let (a, b) = ((c - r).ceil().max(0.0) as usize, (c + r).floor() as usize);
        for flag in inside.iter_mut().take(b.min(bins - 1) + 1).skip(a) {
            *flag = true;
        }
        n += 1;
    }
    let total: f64 = mag.iter().map(|a| a * a).sum();
    if total <= 0.0 {
        return (0.0, 1.0);
    }
    let comb: f64 = mag
        .iter()
        .zip(&inside)
        .filter(|(_, i)| **i)
        .map(|(a, _)| a * a)
        .sum();
    let coverage = inside.iter().filter(|&&i| i).count() as f64 / bins as f64;
    (comb / total, coverage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comb(f0: f64, bin_hz: f64, bins: usize, amp: impl Fn(usize) -> f64) -> Vec<f32> {
        let mut s = vec![0f32; bins];
        for n in 1.. {
            let c = n as f64 * f0 / bin_hz;
            if c + 2.0 >= bins as f64 {
                break;
            }
            // A Hann-like lobe: 1 at the centre, 1/2 one bin out, 0 at two.
            let (a, b) = ((c - 2.0).ceil() as usize, (c + 2.0).floor() as usize);
            for (k, v) in s.iter_mut().enumerate().take(b + 1).skip(a) {
                let d = (k as f64 - c).abs();
                let lobe = if d < 1.0 {
                    1.0 - 0.5 * d
                } else {
                    0.5 * (2.0 - d)
                };
                *v += (amp(n) * lobe) as f32;
            }
        }
        s
    }

    #[test]
    fn harmonic_combs_are_found_within_five_cents() {
        for &f0 in &[55.0, 98.0, 220.0, 261.63, 440.0, 1046.5, 2093.0] {
            let s = comb(f0, 21.533, 1025, |n| 1.0 / n as f64);
            let p = estimate_pitch(&s, 21.533, 25.0, 5000.0).expect("pitched");
            let cents = 1200.0 * (p.f0_hz / f0).log2();
            // Below three bins the partials' lobes overlap and bias the peaks.
            let limit = if f0 < 3.0 * 21.533 { 20.0 } else { 5.0 };
            assert!(cents.abs() < limit, "{f0}: {} ({cents} cents)", p.f0_hz);
        }
    }

    #[test]
    fn a_weak_fundamental_is_not_an_octave_error() {
        let s = comb(
            196.0,
            10.0,
            1025,
            |n| if n == 1 { 0.2 } else { 1.0 / n as f64 },
        );
        let p = estimate_pitch(&s, 10.0, 25.0, 4000.0).expect("pitched");
        assert!((p.f0_hz - 196.0).abs() < 2.0, "{}", p.f0_hz);
    }

    #[test]
    fn flat_and_empty_spectra_are_unpitched() {
        let mut flat = vec![1.0f32; 1025];
        // Some gentle ripple, as a noise template has.
        for (k, v) in flat.iter_mut().enumerate() {
            *v += 0.3 * ((k * 7919 % 13) as f32 / 13.0);
        }
        assert_eq!(estimate_pitch(&flat, 21.5, 25.0, 5000.0), None);
        assert_eq!(estimate_pitch(&[0.0; 1025], 21.5, 25.0, 5000.0), None);
    }
}
