//! When each component of a factorisation is active: its segments by the transcription
//! thresholds, found in one pass over the activations, and, with note templates, the note
//! model's judgement of each candidate note in another; neither holds the activations.

use super::fit::Fitted;
use super::note_model;
use super::transcribe::{Segment, Segmenter, TranscribeParams};
use crate::error::Result;

/// Frames of activations read at a time.
const CHUNK: usize = 4096;

/// The segments of activity of every component of `fitted` (in the order of the fit), and
/// the loudest activation of the components that can be transcribed (`transcribable`), by
/// which levels are judged. With `judged`, the candidates of that many first rows (one note
/// template each) are kept only where the note model is at least as confident as `params`
/// asks; frames are `frame_s` seconds apart.
///
/// # Errors
/// Those of reading activations from a file.
pub(crate) fn activity(
    fitted: &Fitted,
    transcribable: &[bool],
    judged: Option<usize>,
    frame_s: f64,
    params: &TranscribeParams,
) -> Result<(Vec<Vec<Segment>>, f32)> {
    let peaks = fitted.sums.peaks();
    let global = peaks
        .iter()
        .zip(transcribable)
        .filter(|&(_, &t)| t)
        .map(|(&p, _)| p)
        .fold(0.0, f32::max);
    let mut segmenters: Vec<Segmenter> = peaks
        .iter()
        .map(|&peak| Segmenter::new(peak, global, frame_s, params))
        .collect();
    let mut h = fitted.h.reader()?;
    for start in (0..fitted.frames).step_by(CHUNK) {
        let block = h.block(start, CHUNK.min(fitted.frames - start))?;
        for (segmenter, row) in segmenters.iter_mut().zip(block.rows()) {
            segmenter.feed(row.iter().copied());
        }
    }
    let mut segments: Vec<Vec<Segment>> = segmenters.into_iter().map(Segmenter::finish).collect();
    if let Some(n) = judged {
        let confidences = note_model::confidences(
            &mut fitted.h.reader()?,
            fitted.frames,
            &segments[..n],
            &peaks[..n],
            frame_s,
        )?;
        let least = params.confidence();
        for (row, confidence) in segments.iter_mut().zip(confidences) {
            let mut confidence = confidence.into_iter();
            row.retain(|_| confidence.next().is_some_and(|c| c >= least));
        }
    }
    Ok((segments, global))
}
