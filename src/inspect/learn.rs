//! Note templates learned from recordings of an instrument's notes played one at a time
//! (`demix learn --notes`): one template per semitone, each its note's harmonic comb with the
//! partials' levels of the frames where that note sounds most.

use ndarray::{Array2, ArrayView2, Zip};

use super::notes::{HarmonicShape, NoteRange, harmonic_templates};
use crate::audio::Audio;
use crate::error::Result;
use crate::nmf::{self, Loss, NmfParams, Progress};
use crate::sources::{Templates, pooled_spectrogram, templates_of};
use crate::spectral::StftParams;

/// Iterations of [`learn_notes`]'s fit by default.
pub const LEARN_NOTES_ITER: usize = 100;

/// The parameters [`learn_notes`] is meant to be used with: Kullback–Leibler,
/// [`LEARN_NOTES_ITER`] iterations.
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
/// Each template starts as its note's harmonic comb. A fit of the pooled spectrogram with
/// those combs held fixed finds which note sounds most in every frame, and each frame is
/// given to that note alone (frames 60 dB below the loudest to none). Each template is then
/// the sum of its own frames' spectra on its comb's partials, scaled to sum to 1: what a
/// Kullback–Leibler fit of the templates reaches, in one multiplicative step, with those
/// activations held and the combs' zeros kept. So the partials of one note do not leak into
/// the template an octave below (whose comb holds them), as they do when templates and
/// activations are fitted together, and every template stays on its note. `nmf` sets the
/// iterations, tolerance and floor of the fit (see [`learn_notes_params`]); its components
/// are ignored.
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
    let fit = nmf
        .clone()
        .with_components(0)
        .with_fixed_templates(combs.clone());
    let first = nmf::fit_with_progress(pooled.t(), &fit, progress)?;
    let (owners, heard) = loudest_note_of_each_frame(first.h.view());
    let w = own_frames_on_combs(pooled.view(), &owners, combs);
    let notes: Vec<u8> = range.iter().collect();
    let unheard = notes
        .iter()
        .enumerate()
        .filter(|(k, _)| !heard.contains(k))
        .map(|(_, &n)| n)
        .collect();
    let mut templates = templates_of(name, examples, (stft, &plan), (w, 1), nmf.loss());
    templates.notes = Some(notes);
    Ok(LearnedNotes { templates, unheard })
}

/// Frames whose loudest note's activation is below this fraction of the loudest of all (60 dB
/// down) are silence, and go to no note.
const SILENCE: f32 = 1e-3;

/// The note of every frame of the activations `h` (notes × frames): its largest (the first of
/// equals), or none for frames of [`SILENCE`]; and the notes that own a frame.
fn loudest_note_of_each_frame(h: ArrayView2<f32>) -> (Vec<Option<usize>>, Vec<usize>) {
    let quiet = SILENCE * h.iter().fold(0f32, |m, &a| m.max(a));
    let owners: Vec<Option<usize>> = h
        .columns()
        .into_iter()
        .map(|column| {
            let mut best: Option<(usize, f32)> = None;
            for (k, &a) in column.iter().enumerate() {
                if a > quiet && best.is_none_or(|(_, b)| a > b) {
                    best = Some((k, a));
                }
            }
            best.map(|(k, _)| k)
        })
        .collect();
    let heard = (0..h.nrows())
        .filter(|&k| owners.contains(&Some(k)))
        .collect();
    (owners, heard)
}

/// Each comb of `combs` (bins × notes) replaced by the sum of the frames of `v` (frames ×
/// bins) that `owners` gives its note, on the comb's nonzero bins, scaled to sum to 1; a note
/// without frames keeps its comb.
fn own_frames_on_combs(
    v: ArrayView2<f32>,
    owners: &[Option<usize>],
    mut combs: Array2<f32>,
) -> Array2<f32> {
    let mut sums = Array2::<f64>::zeros(combs.dim());
    for (frame, owner) in v.rows().into_iter().zip(owners) {
        if let Some(k) = *owner {
            Zip::from(sums.column_mut(k))
                .and(frame)
                .for_each(|s, &x| *s += f64::from(x));
        }
    }
    for (mut comb, sum) in combs.columns_mut().into_iter().zip(sums.columns()) {
        let on: Vec<f64> = comb
            .iter()
            .zip(sum)
            .map(|(&c, &s)| if c > 0.0 { s } else { 0.0 })
            .collect();
        let total: f64 = on.iter().sum();
        if total > 0.0 && total.is_finite() {
            comb.iter_mut()
                .zip(&on)
                .for_each(|(c, &s)| *c = (s / total) as f32);
        }
    }
    combs
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
        let (owners, heard) = loudest_note_of_each_frame(h.view());
        // The last frame, under 1e-3 of the loudest activation (3), is silence.
        assert_eq!(owners, [Some(1), None, Some(0), Some(2), None]);
        assert_eq!(heard, vec![0, 1, 2]);
    }

    #[test]
    fn a_template_is_its_own_frames_on_its_comb() {
        // Two notes over four bins: the first's comb on bins 0 and 2, the second's on bin 1.
        let combs = array![[0.5f32, 0.0], [0.0, 1.0], [0.5, 0.0], [0.0, 0.0]];
        let v = array![
            [1.0f32, 9.0, 3.0, 7.0],
            [3.0, 9.0, 5.0, 7.0],
            [8.0, 8.0, 8.0, 8.0]
        ];
        // Frames 0 and 1 are the first note's, frame 2 nobody's.
        let w = own_frames_on_combs(v.view(), &[Some(0), Some(0), None], combs.clone());
        // Bins 0 and 2 of the first two frames: 4 and 8, of 12.
        assert_eq!(w.column(0).to_vec(), [4.0 / 12.0, 0.0, 8.0 / 12.0, 0.0]);
        // The second note owns no frame: its comb stays.
        assert_eq!(w.column(1), combs.column(1));
    }
}
