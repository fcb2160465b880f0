//! Pitch-shifted copies of learned templates, so that a source's templates cover the notes
//! around those of its training recordings.
//!
//! A single-frame template learned from a few notes is the spectrum of those notes: a song in
//! another key or register plays pitches it has never seen, and the templates of another
//! source (most of all a drum kit's broadband ones) then explain those notes instead. Scaling a
//! template's frequency axis by `2^(s/12)` moves its partials by `s` semitones (and its
//! spectral envelope with them, which over a few semitones matters less than the partials).
//! `demix separate` adds copies shifted by ±1 … ±N semitones beside every single-frame template
//! ([`DEFAULT_PITCH_SHIFTS`]). The copies beyond ±[`FREE_SHIFTS`] are handicapped by how far
//! they reach ([`shift_handicaps`]): a source's far copies then take only the notes that no
//! nearer template explains, so that a source heard in one register reaches the notes of a
//! song in another without taking other sources' notes. Both were chosen on the quality
//! corpus's tuning split (`docs/quality.md`). Convolutive templates (drums) are left as they
//! are.

use ndarray::{Array2, ArrayView1, ArrayView2, s};

use super::Templates;

/// Semitones the templates are shifted by each way in `demix separate` by default.
pub const DEFAULT_PITCH_SHIFTS: u32 = 6;
/// Semitones each way that pitch-shifted copies reach without a handicap.
pub const FREE_SHIFTS: u32 = 2;
/// The default handicap of a pitch-shifted copy per semitone beyond [`FREE_SHIFTS`].
pub const DEFAULT_SHIFT_PENALTY: f32 = 0.05;
/// The largest handicap per semitone: at 10, every activation step of a copy three semitones
/// away is divided by 11^γ (γ the fit's step exponent).
pub const MAX_SHIFT_PENALTY: f32 = 10.0;
/// Most semitones each way: a tritone, so that every pitch class is in reach. The copies sample
/// the template at steps of `2^(s/12)` bins; below a step of 2 (an octave down) no peak can fall
/// between two samples and vanish.
pub const MAX_PITCH_SHIFTS: u32 = 6;

/// The columns of `w` (bins × K, bin `i` at frequency `i · rate / n_fft`), followed by copies
/// of them shifted by each of `semitones` in turn: K × (1 + `semitones.len()`) columns. A copy
/// keeps its column's sum (for shifts down by less than an octave, see [`MAX_PITCH_SHIFTS`]);
/// what would fall above the top bin is dropped.
pub fn pitch_shifted(w: ArrayView2<f32>, semitones: &[f32]) -> Array2<f32> {
    let k = w.ncols();
    let mut out = Array2::zeros((w.nrows(), k * (1 + semitones.len())));
    out.slice_mut(s![.., ..k]).assign(&w);
    for (n, &semitone) in semitones.iter().enumerate() {
        let ratio = 2f64.powf(f64::from(semitone) / 12.0);
        let mut copies = out.slice_mut(s![.., (n + 1) * k..(n + 2) * k]);
        for (column, mut copy) in w.columns().into_iter().zip(copies.columns_mut()) {
            copy.assign(&ArrayView1::from(&shift_column(column, ratio)));
        }
    }
    out
}

/// Shifts down by more than this ratio (5 semitones or more) sample the template at steps
/// of more than 4/3 bin: each bin then takes the mean of [`SUBSAMPLES`] points across its
/// width, so that a peak between two steps keeps its weight.
const WIDE_STEP_RATIO: f64 = 0.75;
/// Points per bin of a shift down beyond [`WIDE_STEP_RATIO`].
const SUBSAMPLES: usize = 4;

/// `column` with its frequency axis scaled by `ratio`: bin `i` takes the value at bin
/// `i / ratio`, interpolated linearly (the mean over its width for long steps), then the whole
/// is scaled back to the column's sum.
fn shift_column(column: ArrayView1<f32>, ratio: f64) -> Vec<f32> {
    let n = column.len();
    let at = |x: f64| {
        let below = x.floor() as usize;
        if below + 1 < n {
            let t = x - below as f64;
            f64::from(column[below]) * (1.0 - t) + f64::from(column[below + 1]) * t
        } else if below + 1 == n && x == below as f64 {
            f64::from(column[below])
        } else {
            0.0
        }
    };
    let points = if ratio < WIDE_STEP_RATIO {
        SUBSAMPLES
    } else {
        1
    };
    let mut moved: Vec<f64> = (0..n)
        .map(|i| {
            if points == 1 {
                return at(i as f64 / ratio);
            }
            let sum: f64 = (0..points)
                .map(|j| {
                    let offset = (j as f64 + 0.5) / points as f64 - 0.5;
                    at(((i as f64 + offset) / ratio).max(0.0))
                })
                .sum();
            sum / points as f64
        })
        .collect();
    let before: f64 = column.iter().map(|&v| f64::from(v)).sum();
    let after: f64 = moved.iter().sum();
    if after > 0.0 {
        let scale = before / after;
        moved.iter_mut().for_each(|v| *v *= scale);
    }
    moved.into_iter().map(|v| v as f32).collect()
}

impl Templates {
    /// These templates with pitch-shifted copies of every template beside it, shifted by
    /// ±1 … ±`semitones` (both `w` and `w_kl`); convolutive templates, and `semitones` 0,
    /// leave them as they are.
    pub fn with_pitch_shifts(mut self, semitones: u32) -> Templates {
        if semitones == 0 || self.frames > 1 {
            return self;
        }
        let shifts = copy_shifts(semitones);
        self.w = pitch_shifted(self.w.view(), &shifts);
        self.w_kl = self.w_kl.map(|w| pitch_shifted(w.view(), &shifts));
        // The copies are no longer one template per note.
        self.notes = None;
        self
    }
}

/// The shifts of the copies [`Templates::with_pitch_shifts`] makes, in their order: -1, +1,
/// -2, +2 … semitones.
fn copy_shifts(semitones: u32) -> Vec<f32> {
    (1..=semitones as i32)
        .flat_map(|s| [-s as f32, s as f32])
        .collect()
}

/// The handicap of every column of `templates` once each has its copies shifted by up to
/// `semitones` each way ([`Templates::with_pitch_shifts`]), in the order they are stacked:
/// `penalty` per semitone a copy lies beyond ±[`FREE_SHIFTS`], 0 for the learned templates,
/// the nearer copies and convolutive templates (see `NmfParams::with_handicaps`).
pub fn shift_handicaps(templates: &[Templates], semitones: u32, penalty: f32) -> Vec<f32> {
    let shifts = copy_shifts(semitones);
    let mut handicaps = Vec::new();
    for t in templates {
        if semitones == 0 || t.frames > 1 {
            handicaps.extend(std::iter::repeat_n(0.0, t.w.ncols()));
            continue;
        }
        for shift in std::iter::once(0.0).chain(shifts.iter().copied()) {
            let beyond = (shift.abs() - FREE_SHIFTS as f32).max(0.0);
            handicaps.extend(std::iter::repeat_n(penalty * beyond, t.w.ncols()));
        }
    }
    handicaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// A column of `n` bins with partials at multiples of bin `f0` (amplitude 1/h).
    fn harmonic(n: usize, f0: f64) -> Vec<f32> {
        let mut c = vec![0f32; n];
        let mut h = 1.0;
        while f0 * h < (n - 1) as f64 {
            let x = f0 * h;
            let below = x.floor() as usize;
            let t = (x - below as f64) as f32;
            c[below] += (1.0 - t) / h as f32;
            c[below + 1] += t / h as f32;
            h += 1.0;
        }
        c
    }

    fn peak(c: ArrayView1<f32>) -> usize {
        (0..c.len()).max_by(|&a, &b| c[a].total_cmp(&c[b])).unwrap()
    }

    #[test]
    fn an_octave_up_doubles_the_frequency_of_a_peak_and_keeps_the_sum() {
        let w = Array2::from_shape_fn((400, 1), |(i, _)| if i == 60 { 2.0 } else { 0.0 });
        let shifted = pitch_shifted(w.view(), &[12.0, -12.0, 7.0]);
        assert_eq!(shifted.dim(), (400, 4));
        assert_eq!(shifted.column(0), w.column(0));
        assert_eq!(peak(shifted.column(1)), 120);
        assert_eq!(peak(shifted.column(2)), 30);
        // A fifth up: 60 · 2^(7/12) = 89.9 bins.
        assert_eq!(peak(shifted.column(3)), 90);
        for c in shifted.columns() {
            assert!((c.sum() - 2.0).abs() < 1e-5, "{}", c.sum());
        }
    }

    #[test]
    fn no_peak_is_lost_within_the_largest_shifts_wherever_it_lies() {
        // A one-bin peak at every bin from 40 to 71, shifted by every allowed amount.
        let max = MAX_PITCH_SHIFTS as i32;
        let semitones: Vec<f32> = (-max..=max).map(|s| s as f32).collect();
        for bin in 40..72 {
            let w = Array2::from_shape_fn((256, 1), |(i, _)| f32::from(i == bin));
            let shifted = pitch_shifted(w.view(), &semitones);
            for (s, column) in semitones.iter().zip(shifted.columns().into_iter().skip(1)) {
                let target = bin as f64 * 2f64.powf(f64::from(*s) / 12.0);
                let at = peak(column) as f64;
                assert!(
                    (column.sum() - 1.0).abs() < 1e-5 && (at - target).abs() <= 1.0,
                    "bin {bin}, {s} semitones: sum {}, peak at {at} for {target:.2}",
                    column.sum()
                );
            }
        }
    }

    #[test]
    fn a_shifted_harmonic_spectrum_is_the_spectrum_of_the_shifted_note() {
        // f0 of 20 bins shifted by 3 semitones against a note at 20 · 2^(3/12) bins.
        let n = 1025;
        let w = Array2::from_shape_vec((n, 1), harmonic(n, 20.0)).unwrap();
        let shifted = pitch_shifted(w.view(), &[3.0]);
        let target = harmonic(n, 20.0 * 2f64.powf(0.25));
        let s = shifted.column(1);
        let (dot, ns, nt) = (0..n).fold((0.0, 0.0, 0.0), |(d, a, b), i| {
            let (x, y) = (f64::from(s[i]), f64::from(target[i]));
            (d + x * y, a + x * x, b + y * y)
        });
        let cosine = dot / (ns * nt).sqrt();
        // Against the unshifted note, the same measure is low: the partials do not meet.
        let (dot0, n0) = (0..n).fold((0.0, 0.0), |(d, a), i| {
            let x = f64::from(w[[i, 0]]);
            (d + x * f64::from(target[i]), a + x * x)
        });
        let cosine0 = dot0 / (n0 * nt).sqrt();
        assert!(
            cosine > 0.95 && cosine0 < 0.5,
            "{cosine:.3} against {cosine0:.3}"
        );
    }

    fn templates(frames: usize) -> Templates {
        let w = Array2::from_shape_fn((64, 3 * frames), |(i, j)| ((i * 7 + j) % 5) as f32);
        Templates {
            w_kl: Some(Array2::from_elem((64, 3 * frames), 0.5)),
            spatial: Some(Array3::zeros((64, 2, 2))),
            ..Templates::for_tests("keys", w, frames)
        }
    }

    #[test]
    fn every_single_frame_template_gets_its_shifted_copies_in_w_and_w_kl() {
        let t = templates(1);
        let shifted = t.clone().with_pitch_shifts(2);
        // The learned templates first, then -1, +1, -2, +2 semitones.
        assert_eq!((shifted.templates(), shifted.len()), (15, 15));
        assert_eq!(shifted.w.slice(ndarray::s![.., ..3]), t.w);
        assert_eq!(shifted.w_kl.as_ref().unwrap().ncols(), 15);
        assert_eq!(t.clone().with_pitch_shifts(0), t);
        assert_eq!((shifted.spatial, shifted.name), (t.spatial, t.name));
    }

    #[test]
    fn copies_beyond_two_semitones_are_handicapped_by_their_distance() {
        let (one, four) = (templates(1), templates(4));
        let handicaps = shift_handicaps(&[one.clone(), four], 4, 0.5);
        // Copy by copy (as learned, -1, +1, -2, +2, -3, +3, -4, +4), 3 templates each, then
        // the 12 columns of the convolutive templates.
        let per_copy = [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0];
        let expected: Vec<f32> = (per_copy.iter())
            .flat_map(|&c| [c; 3])
            .chain([0.0; 12])
            .collect();
        assert_eq!(handicaps, expected);
        assert_eq!(one.with_pitch_shifts(4).w.ncols() + 12, expected.len());
        assert!(
            shift_handicaps(&[templates(1)], 0, 0.5)
                .iter()
                .all(|&c| c == 0.0)
        );
    }

    #[test]
    fn convolutive_templates_are_left_as_they_are() {
        let t = templates(4);
        assert_eq!(t.clone().with_pitch_shifts(3), t);
    }
}
