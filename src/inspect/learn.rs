//! Note templates learned from recordings of an instrument's notes played one at a time
//! (`demix learn --notes`): one template per semitone, each its note's harmonic comb with the
//! partials' levels of the frames where that note sounds most.

use ndarray::{Array2, ArrayView2, Axis};

use super::notes::{HarmonicShape, NoteRange, harmonic_templates};
use crate::audio::Audio;
use crate::error::Result;
use crate::nmf::{self, Loss, NmfParams, Progress};
use crate::sources::{Templates, pooled_spectrogram, templates_of};
use crate::spectral::StftParams;

/// Iterations of each of the two fits of [`learn_notes`] by default.
pub const LEARN_NOTES_ITER: usize = 100;

/// The parameters [`learn_notes`] is meant to be used with: Kullback–Leibler,
/// [`LEARN_NOTES_ITER`] iterations per fit.
pub fn learn_notes_params() -> NmfParams {
    NmfParams::new(0)
        .with_loss(Loss::KullbackLeibler)
        .with_max_iter(LEARN_NOTES_ITER)
}

/// Note templates and the notes the recordings they were learned from did not play.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedNotes {
    /// One template per note of the range, with [`Templates::notes`].
    pub templates: Templates,
    /// Notes that no frame of the recordings was given to: their templates stay harmonic
    /// combs of partials `n^-1`, as `inspect --notes` starts from.
    pub unheard: Vec<u8>,
}

/// Learns one template per note of `range` from `examples`, recordings of an instrument
/// playing its notes one at a time (in any order, rhythm and loudness).
///
/// Each template starts as its note's harmonic comb. A first fit of the pooled spectrogram
/// with those combs held fixed finds which note sounds most in every frame; each frame is
/// then given to that note alone, and a second fit learns the templates from their own
/// frames, activations held: so the partials of one note do not leak into the template an
/// octave below (whose comb holds them), as they do when templates and activations are
/// fitted together. Multiplicative updates keep the combs' zeros, so every template stays on
/// its note. `nmf` sets the loss, iterations, tolerance and floor of both fits (see
/// [`learn_notes_params`]); its components are ignored.
///
/// # Errors
/// As [`learn`](crate::sources::learn), and [`Error::Param`](crate::Error::Param) for notes
/// above 95 % of the Nyquist frequency.
///
/// ```
/// use demix::audio::Audio;
/// use demix::inspect::{learn_notes, learn_notes_params};
/// use demix::inspect::notes::NoteRange;
/// use demix::spectral::StftParams;
/// // A4 (440 Hz) with three partials, then C5 (523.25 Hz), half a second each.
/// let tone = |f: f32, i: usize| (1..=3).map(|n| (2.0 * std::f32::consts::PI * f * n as f32 * i as f32 / 16_000.0).sin() / n as f32).sum::<f32>();
/// let x: Vec<f32> = (0..16_000).map(|i| if i < 8_000 { tone(440.0, i) } else { tone(523.25, i) }).collect();
/// let example = Audio::new(16_000, vec![x])?;
/// let range: NoteRange = "A4-C5".parse()?;
/// let learned = learn_notes("keys", &[example], &StftParams::new(2048), range, &learn_notes_params(), &mut |_| {})?;
/// assert_eq!(learned.templates.notes, Some(vec![69, 70, 71, 72]));
/// assert_eq!(learned.unheard, vec![70, 71]);
/// # Ok::<(), demix::Error>(())
/// ```
pub fn learn_notes(
    name: &str,
    examples: &[Audio],
    stft: &StftParams,
    range: NoteRange,
    nmf: &NmfParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<LearnedNotes> {
    let (plan, pooled) = pooled_spectrogram(name, examples, stft)?;
    let combs = harmonic_templates(
        range,
        examples[0].sample_rate,
        stft,
        &HarmonicShape::default(),
    )?;
    let fit = nmf.clone().with_components(0);
    let max_iter = 2 * fit.max_iter();
    let first = nmf::fit_with_progress(
        pooled.t(),
        &fit.clone().with_fixed_templates(combs.clone()),
        &mut |p| progress(Progress { max_iter, ..p }),
    )?;
    let (owned, heard) = frames_of_each_note(first.h.view());
    let mut w = combs.clone();
    if !heard.is_empty() {
        // The transposed problem: Vᵀ ≈ Hᵀ Wᵀ with Hᵀ fixed, Wᵀ fitted from the combs.
        let ht = owned.select(Axis(0), &heard).reversed_axes();
        let start = combs.select(Axis(1), &heard).reversed_axes();
        let second = fit
            .clone()
            .with_fixed_templates(ht.clone())
            .with_initial(ht, start);
        let learned = nmf::fit_with_progress(pooled.view(), &second, &mut |p| {
            progress(Progress {
                iteration: first.iterations + p.iteration,
                max_iter,
                cost: p.cost,
            });
        })?;
        for (row, &note) in learned.h.rows().into_iter().zip(&heard) {
            let sum: f32 = row.sum();
            if sum > 0.0 && sum.is_finite() {
                w.column_mut(note).assign(&row.mapv(|a| a / sum));
            }
        }
    }
    let notes: Vec<u8> = range.iter().collect();
    let unheard = notes
        .iter()
        .enumerate()
        .filter(|(k, _)| !heard.contains(k))
        .map(|(_, &n)| n)
        .collect();
    let mut templates = templates_of(name, examples, (stft, &plan), (w, 1), fit.loss());
    templates.notes = Some(notes);
    Ok(LearnedNotes { templates, unheard })
}

/// Frames whose loudest note's activation is below this fraction of the loudest of all (60 dB
/// down) are silence, and go to no note.
const SILENCE: f32 = 1e-3;

/// The activations `h` (notes × frames) with every frame kept only for its largest note (the
/// first of equals; frames of [`SILENCE`] for none), and the notes that kept a frame.
fn frames_of_each_note(h: ArrayView2<f32>) -> (Array2<f32>, Vec<usize>) {
    let mut owned = Array2::zeros(h.dim());
    let mut heard = vec![false; h.nrows()];
    let quiet = SILENCE * h.iter().fold(0f32, |m, &a| m.max(a));
    for (t, column) in h.columns().into_iter().enumerate() {
        let mut best: Option<(usize, f32)> = None;
        for (k, &a) in column.iter().enumerate() {
            if a > quiet && best.is_none_or(|(_, b)| a > b) {
                best = Some((k, a));
            }
        }
        if let Some((k, a)) = best {
            owned[[k, t]] = a;
            heard[k] = true;
        }
    }
    let heard = (0..h.nrows()).filter(|&k| heard[k]).collect();
    (owned, heard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn each_frame_goes_to_its_largest_note_alone() {
        let h = array![
            [1.0f32, 0.0, 2.0, 0.0, 0.002],
            [3.0, 0.0, 2.0, 0.0, 0.0],
            [0.5, 0.0, 0.0, 0.004, 0.0]
        ];
        let (owned, heard) = frames_of_each_note(h.view());
        // The last frame, under 1e-3 of the loudest activation (3), is silence.
        assert_eq!(
            owned,
            array![
                [0.0f32, 0.0, 2.0, 0.0, 0.0],
                [3.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.004, 0.0]
            ]
        );
        assert_eq!(heard, vec![0, 1, 2]);
    }
}
