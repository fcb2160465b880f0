//! Blind grouping of NMF components into sources, by what their templates sound like, how
//! their activations move and where they sit between the channels.
//!
//! Each template is described by its spectral envelope on a mel scale (mel-frequency cepstral
//! coefficients without the level term, so loudness does not matter), its brightness (the
//! spectral centroid, on a log scale), its noisiness (spectral flatness) and its register
//! (the fundamental whose partials hold most of it); each component also by how struck it is
//! (its activations' mean rise over their mean level: a piano's notes jump and fade, an
//! organ's hold) and, in a recording of several channels, by its side (the energy its soft
//! mask takes from each channel). The features are standardised and clustered by k-means
//! (k-means++ starts from a fixed seed, the best of several runs kept), so notes of one
//! instrument, which share an envelope, a register, an attack and a place in the stereo
//! image, end up in one source.
//!
//! The register and the side raised the mean SDR per source by 1.59 dB on the quality
//! corpus's tuning split, where they were chosen, and by 1.86 dB on its validation split
//! (`compare_separation.py --split validation --mode blind`); see docs/quality.md.

use ndarray::{Array1, Array2, ArrayView2, Axis, s};

use super::{Source, sources_loudest_first};

/// Mel bands of the envelope.
const BANDS: usize = 40;
/// Cepstral coefficients kept (after dropping the level term c0): the low ones describe the
/// envelope; higher ones follow the harmonics, which change with the note, not the instrument.
const COEFFICIENTS: usize = 6;
/// Weight of brightness against one cepstral coefficient in the clustering.
const BRIGHTNESS_WEIGHT: f64 = 2.0;
/// Weight of how struck a component is against one cepstral coefficient. On the quality
/// corpus's tuning split (`compare_separation.py --split tuning --mode blind`) weight 1 raised
/// the median SDR from 2.80 to 3.16 dB and weight 4 to 3.09 dB (pads and organ lost there).
const STRUCK_WEIGHT: f64 = 1.0;
/// Weight of the register (see [`register`]) against one cepstral coefficient.
const REGISTER_WEIGHT: f64 = 1.0;
/// Smallest spread of the components' registers, in octaves, that counts in full: the notes
/// of instruments that play within an octave of each other are told apart by their sound and
/// attack, not by their pitch.
const REGISTER_FLOOR_OCTAVES: f64 = 1.0;
/// The difference of level between channels, in dB, that weighs as much in the clustering as
/// one standardised feature differing by one standard deviation (for two channels, a
/// left-right balance differing by 1.06 dB). On the quality corpus's tuning split 0.75 dB
/// raised the mean SDR per source by as much as the balance standardised per recording did
/// (+1.59 and +1.57 dB with the register), 0.5 and 1 dB by less (+1.48, +1.46).
const PAN_UNIT_DB: f64 = 0.75;
/// Independent k-means runs; the one with the smallest within-cluster spread is kept.
const RUNS: usize = 20;

/// Groups the components of templates `w` into `groups` sources named `source1`, `source2`,
/// ... from the loudest by the components' `energies`, with how `struck` each is (see
/// [`ActivationSums::struck`](crate::nmf::ActivationSums::struck)) and, for a recording of
/// several channels, the energy each takes from each channel (`balance`, K × channels).
/// Deterministic.
pub(crate) fn group_components(
    w: ArrayView2<f32>,
    energies: &[f64],
    struck: &[f64],
    balance: Option<ArrayView2<f64>>,
    groups: usize,
    sample_rate: u32,
    n_fft: usize,
) -> Vec<Source> {
    let k = w.ncols();
    let sound = template_features(w, sample_rate, n_fft);
    let mut features = Array2::zeros((k, sound.ncols() + 1));
    features.slice_mut(s![.., ..sound.ncols()]).assign(&sound);
    features
        .column_mut(sound.ncols())
        .assign(&Array1::from(struck.to_vec()));
    let register = features.column(COEFFICIENTS + 2).to_owned();
    let mut features = standardise(features);
    // Registers within an octave of each other count less (see REGISTER_FLOOR_OCTAVES).
    let mean = register.mean().unwrap_or(0.0);
    let spread = register.std(0.0).max(REGISTER_FLOOR_OCTAVES);
    (features.column_mut(COEFFICIENTS + 2)).assign(&register.mapv(|r| (r - mean) / spread));
    let weights = [
        (COEFFICIENTS, BRIGHTNESS_WEIGHT),
        (COEFFICIENTS + 2, REGISTER_WEIGHT),
        (sound.ncols(), STRUCK_WEIGHT),
    ];
    for (column, weight) in weights {
        features
            .column_mut(column)
            .mapv_inplace(|v| v * weight.sqrt());
    }
    if let Some(pans) = balance.map(pan_features) {
        features = ndarray::concatenate![Axis(1), features, pans];
    }
    let labels = kmeans(&features, groups.min(k));
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (c, &g) in labels.iter().enumerate() {
        members[g].push(c);
    }
    sources_loudest_first(members, energies)
}

/// Where each component sits between the channels, from the energy it takes from each
/// (`balance`, K × channels): per channel, its level in dB over the mean of its levels in dB
/// in all of them, in units of [`PAN_UNIT_DB`]. Not standardised: instruments panned far
/// apart weigh more than any difference of sound, and a nearly mono recording, whose small
/// differences are noise, is grouped by sound alone.
fn pan_features(balance: ArrayView2<f64>) -> Array2<f64> {
    let (k, channels) = balance.dim();
    let mut pans = Array2::<f64>::zeros((k, channels));
    for (c, levels) in balance.rows().into_iter().enumerate() {
        let loudest = levels.iter().copied().fold(0.0, f64::max);
        if !(loudest > 0.0 && loudest.is_finite()) {
            continue; // silent: no side
        }
        let db: Vec<f64> = (levels.iter())
            .map(|&e| 10.0 * (e.max(1e-12 * loudest)).log10())
            .collect();
        let mean = db.iter().sum::<f64>() / channels as f64;
        for (ch, &d) in db.iter().enumerate() {
            pans[[c, ch]] = (d - mean) / PAN_UNIT_DB;
        }
    }
    pans
}

/// One row of features per template (column of `w`).
pub(crate) fn template_features(w: ArrayView2<f32>, sample_rate: u32, n_fft: usize) -> Array2<f64> {
    let (bins, k) = w.dim();
    let bin_hz = f64::from(sample_rate) / n_fft as f64;
    let bank = mel_bank(bins, bin_hz, BANDS);
    let mut out = Array2::<f64>::zeros((k, COEFFICIENTS + 3));
    for (c, column) in w.axis_iter(Axis(1)).enumerate() {
        let spectrum: Vec<f64> = column.iter().map(|&a| f64::from(a)).collect();
        let total: f64 = spectrum.iter().sum::<f64>().max(1e-30);
        // Mel envelope in dB relative to the template's own level, floored 80 dB down.
        let bands: Vec<f64> = bank
            .iter()
            .map(|filter| filter.iter().map(|&(i, g)| g * spectrum[i]).sum::<f64>())
            .collect();
        let peak = bands.iter().cloned().fold(1e-30, f64::max);
        let log: Vec<f64> = bands
            .iter()
            .map(|&b| (b / peak).max(1e-8).log10())
            .collect();
        for q in 0..COEFFICIENTS {
            out[[c, q]] = dct(&log, q + 1);
        }
        // Brightness: log2 of the spectral centroid in Hz.
        let centroid = spectrum
            .iter()
            .enumerate()
            .map(|(i, &a)| i as f64 * bin_hz * a)
            .sum::<f64>()
            / total;
        out[[c, COEFFICIENTS]] = centroid.max(1.0).log2();
        // Noisiness: spectral flatness (geometric over arithmetic mean), in log10.
        let log_mean = spectrum
            .iter()
            .map(|&a| (a / total).max(1e-12).ln())
            .sum::<f64>()
            / bins as f64;
        out[[c, COEFFICIENTS + 1]] = (log_mean.exp() * bins as f64).max(1e-12).log10();
        out[[c, COEFFICIENTS + 2]] = register(&spectrum, bin_hz);
    }
    out
}

/// Lowest and highest fundamentals of [`register`], in Hz.
const REGISTER_HZ: (f64, f64) = (30.0, 2000.0);
/// Partials summed per candidate fundamental of [`register`].
const REGISTER_PARTIALS: usize = 20;

/// The register of a spectrum: log2 of the fundamental, on a grid of 24 steps per octave from
/// 30 Hz to 2 kHz, whose first 20 partials, weighed `1/n`, hold the most of it (the largest
/// of the three bins around each). A pitched template gets its pitch (or an octave of it);
/// an unpitched one, where a comb fits its energy best. Basses and leads of a similar
/// envelope sit octaves apart. Not [`crate::inspect::estimate_pitch`], which declines
/// unpitched templates: every component needs a value here.
fn register(spectrum: &[f64], bin_hz: f64) -> f64 {
    let bins = spectrum.len();
    let steps = (24.0 * (REGISTER_HZ.1 / REGISTER_HZ.0).log2()).ceil() as usize;
    let mut best = (f64::NEG_INFINITY, REGISTER_HZ.0.log2());
    for step in 0..steps {
        let octaves = REGISTER_HZ.0.log2() + step as f64 / 24.0;
        let f0 = octaves.exp2();
        let score: f64 = (1..=REGISTER_PARTIALS)
            .map(|n| (n, (f0 * n as f64 / bin_hz).round() as usize))
            .take_while(|&(_, bin)| bin < bins)
            .map(|(n, bin)| {
                let near = &spectrum[bin.saturating_sub(1)..(bin + 2).min(bins)];
                near.iter().copied().fold(0.0, f64::max) / n as f64
            })
            .sum();
        if score > best.0 {
            best = (score, octaves);
        }
    }
    best.1
}

/// Triangular mel filters over `bins` FFT bins: each filter a list of (bin, weight).
fn mel_bank(bins: usize, bin_hz: f64, bands: usize) -> Vec<Vec<(usize, f64)>> {
    let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
    let hz = |m: f64| 700.0 * (10f64.powf(m / 2595.0) - 1.0);
    let (lo, hi) = (mel(30.0), mel(bin_hz * (bins - 1) as f64));
    let edges: Vec<f64> = (0..bands + 2)
        .map(|i| hz(lo + (hi - lo) * i as f64 / (bands + 1) as f64))
        .collect();
    (0..bands)
        .map(|b| {
            let (left, centre, right) = (edges[b], edges[b + 1], edges[b + 2]);
            let mut filter: Vec<(usize, f64)> = (0..bins)
                .filter_map(|i| {
                    let f = i as f64 * bin_hz;
                    let g = if f > left && f <= centre {
                        (f - left) / (centre - left)
                    } else if f > centre && f < right {
                        (right - f) / (right - centre)
                    } else {
                        0.0
                    };
                    (g > 0.0).then_some((i, g))
                })
                .collect();
            if filter.is_empty() {
                // Bands narrower than a bin take the nearest bin.
                filter.push((((centre / bin_hz).round() as usize).min(bins - 1), 1.0));
            }
            filter
        })
        .collect()
}

/// Coefficient `q` of the DCT-II of `x`.
fn dct(x: &[f64], q: usize) -> f64 {
    let n = x.len() as f64;
    x.iter()
        .enumerate()
        .map(|(i, &v)| v * (std::f64::consts::PI * q as f64 * (i as f64 + 0.5) / n).cos())
        .sum::<f64>()
        * (2.0 / n).sqrt()
}

/// Each feature shifted and scaled to mean 0 and standard deviation 1 over the templates.
fn standardise(mut f: Array2<f64>) -> Array2<f64> {
    for mut col in f.axis_iter_mut(Axis(1)) {
        let n = col.len() as f64;
        let mean = col.sum() / n;
        let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        col.mapv_inplace(|v| if sd > 1e-12 { (v - mean) / sd } else { 0.0 });
    }
    f
}

/// k-means with k-means++ starts from fixed seeds; the labels of the run with the smallest
/// within-cluster sum of squares. Every cluster gets at least one point.
pub(crate) fn kmeans(points: &Array2<f64>, k: usize) -> Vec<usize> {
    let n = points.nrows();
    if k >= n {
        return (0..n).collect();
    }
    let dist = |a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>| {
        a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>()
    };
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _run in 0..RUNS {
        // k-means++ starts.
        let mut centres: Vec<Array1<f64>> =
            vec![points.row((uniform() * n as f64) as usize % n).to_owned()];
        while centres.len() < k {
            let d: Vec<f64> = points
                .rows()
                .into_iter()
                .map(|p| {
                    centres
                        .iter()
                        .map(|c| dist(p, c.view()))
                        .fold(f64::MAX, f64::min)
                })
                .collect();
            let total: f64 = d.iter().sum();
            let mut target = uniform() * total;
            let mut pick = n - 1;
            for (i, &di) in d.iter().enumerate() {
                if target < di {
                    pick = i;
                    break;
                }
                target -= di;
            }
            centres.push(points.row(pick).to_owned());
        }
        let mut labels = vec![0usize; n];
        for _ in 0..100 {
            let mut changed = false;
            for (i, p) in points.rows().into_iter().enumerate() {
                let nearest = (0..k)
                    .min_by(|&a, &b| {
                        dist(p, centres[a].view()).total_cmp(&dist(p, centres[b].view()))
                    })
                    .expect("k >= 1");
                if nearest != labels[i] {
                    labels[i] = nearest;
                    changed = true;
                }
            }
            // An emptied cluster takes the point farthest from its centre.
            for c in 0..k {
                if !labels.contains(&c) {
                    let far = (0..n)
                        .max_by(|&a, &b| {
                            dist(points.row(a), centres[labels[a]].view())
                                .total_cmp(&dist(points.row(b), centres[labels[b]].view()))
                        })
                        .expect("n >= 1");
                    labels[far] = c;
                    changed = true;
                }
            }
            for (c, centre) in centres.iter_mut().enumerate() {
                let members: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
                *centre = points
                    .select(Axis(0), &members)
                    .mean_axis(Axis(0))
                    .expect("non-empty");
            }
            if !changed {
                break;
            }
        }
        let spread: f64 = (0..n)
            .map(|i| dist(points.row(i), centres[labels[i]].view()))
            .sum();
        if best.as_ref().is_none_or(|(s, _)| spread < *s - 1e-12) {
            best = Some((spread, labels));
        }
    }
    best.expect("at least one run").1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmeans_finds_well_separated_clusters() {
        let points = ndarray::array![
            [0.0, 0.1],
            [0.2, 0.0],
            [5.0, 5.1],
            [5.2, 4.9],
            [0.1, 0.2],
            [5.1, 5.0]
        ];
        let labels = kmeans(&points, 2);
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[0], labels[4]);
        assert_eq!(labels[2], labels[3]);
        assert_eq!(labels[2], labels[5]);
        assert_ne!(labels[0], labels[2]);
    }

    #[test]
    fn the_register_of_a_harmonic_spectrum_is_its_pitch() {
        // Partials of 220 Hz with amplitudes 1/n on bins of 44100 / 2048 Hz.
        let bin_hz = 44100.0 / 2048.0;
        let mut spectrum = vec![0.0; 1025];
        for n in 1..=15 {
            spectrum[(220.0 * n as f64 / bin_hz).round() as usize] += 1.0 / n as f64;
        }
        let found = register(&spectrum, bin_hz);
        assert!(
            (found - 220f64.log2()).abs() <= 1.0 / 24.0,
            "{}",
            found.exp2()
        );
    }

    #[test]
    fn components_panned_apart_are_far_apart_and_a_nearly_mono_mix_is_not() {
        // Two components on the left (10 dB louder there), two on the right.
        let panned = ndarray::array![[10.0, 1.0], [9.0, 1.0], [1.0, 10.0], [1.0, 11.0]];
        let pans = pan_features(panned.view());
        let gap = |a: usize, b: usize| {
            (pans.row(a).to_owned() - pans.row(b))
                .mapv(|v| v * v)
                .sum()
                .sqrt()
        };
        assert!(gap(0, 2) > 2.0 && gap(1, 3) > 2.0, "{pans:?}");
        assert!(gap(0, 1) < 0.2 * gap(0, 2), "{pans:?}");
        // Balances within 0.1 dB of each other stay close.
        let mono = ndarray::array![[1.0, 1.0], [1.01, 1.0], [1.0, 1.02], [1.0, 1.0]];
        let pans = pan_features(mono.view());
        assert!(pans.iter().all(|v| v.abs() < 0.1), "{pans:?}");
        // A silent component sits in the middle.
        let silent = ndarray::array![[0.0, 0.0], [2.0, 1.0]];
        assert_eq!(pan_features(silent.view()).row(0).sum(), 0.0);
    }
}
