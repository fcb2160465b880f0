//! Which candidate notes are notes, with one template per semitone.
//!
//! A struck note lights up more than its own row of activations: its partials excite the
//! templates an octave, a twelfth and two octaves above, the semitones beside it share
//! partials in the low register, and the attack's broadband noise briefly excites many rows;
//! meanwhile the quiet notes of a chord are weaker than the partials of its loud ones. Fixed
//! fractions of the loudest activation cannot tell these apart: at 0.3 of it quiet notes are
//! lost, at 0.1 the partials come through. So candidates are taken at a low level
//! ([`NOTES_MIN_LEVEL`](super::transcribe::NOTES_MIN_LEVEL)), and a logistic model over ten
//! features of each candidate and of what sounds around it gives a confidence that it is a
//! note:
//!
//! - its level against the loudest activation of the recording, of the same moment (the
//!   attack window), of the two seconds around it, and of its own row;
//! - how it sustains (its mean over the next 0.35 s against its peak), how low it rose from;
//! - the strongest activation in the attack window of its neighbours (one or two semitones
//!   away), of the notes whose partials it could be (12, 19, 24, 28 and 31 semitones below),
//!   and of the notes it could be a partial of an octave or a twelfth above, each against it;
//! - its duration.
//!
//! The weights were fitted on the corpus's tuning split by `scripts/fit_note_model.py`,
//! which prints them; the validation split never saw them.

use ndarray::{ArrayView1, ArrayView2, s};

use super::transcribe::Segment;

/// Frames before the onset that belong to its attack window, in seconds.
const BACK_S: f64 = 0.05;
/// Frames from the onset that belong to its attack window, in seconds.
const LOOK_S: f64 = 0.2;
/// Half the window of the local level, in seconds.
const LOCAL_S: f64 = 2.0;
/// The span over which a note must sustain, in seconds.
const SUSTAIN_S: f64 = 0.35;
/// How far back the level a note rose from is looked for, in seconds.
const PRE_S: f64 = 0.07;
/// Semitones below a note where a note whose partial it could be lies.
const BELOW: [usize; 5] = [12, 19, 24, 28, 31];
/// Semitones above a note where a note it could be a (sub)partial of lies.
const ABOVE: [usize; 2] = [12, 19];
/// The smallest ratio before logarithms.
const FLOOR: f32 = 1e-4;
/// Features per candidate.
const FEATURES: usize = 10;

// Fitted by scripts/fit_note_model.py on the tuning split (24 pieces, 11979 candidates).
const INTERCEPT: f32 = 2.65849;
const WEIGHTS: [f32; FEATURES] = [
    1.30781,   // level
    2.33716,   // concurrent
    0.47966,   // local
    -0.647297, // own
    3.30493,   // sustain
    -5.35747,  // pre
    -0.248772, // neighbour
    0.126529,  // below
    0.08598,   // above
    0.753211,  // duration
];

/// Frames in `seconds`, at least one.
fn frames(seconds: f64, frame_s: f64) -> usize {
    ((seconds / frame_s + 0.5).floor() as usize).max(1)
}

/// The largest value of `row` in `start..end` (clipped to the row), 0 for none.
fn max_in(row: ArrayView1<f32>, start: usize, end: usize) -> f32 {
    let end = end.min(row.len());
    let start = start.min(end);
    row.slice(s![start..end])
        .iter()
        .copied()
        .fold(0.0, f32::max)
}

/// The model's confidence, in [0, 1], that each candidate of `candidates` (per row of `h`,
/// one row per semitone from the lowest note up) is a note; frames are `frame_s` seconds
/// apart.
pub(crate) fn confidences(
    h: ArrayView2<f32>,
    candidates: &[Vec<Segment>],
    frame_s: f64,
) -> Vec<Vec<f32>> {
    let (rows, len) = h.dim();
    let global = h.iter().copied().fold(0.0, f32::max);
    let back = frames(BACK_S, frame_s);
    let look = frames(LOOK_S, frame_s);
    let local = frames(LOCAL_S, frame_s);
    let sustain = frames(SUSTAIN_S, frame_s);
    let pre = frames(PRE_S, frame_s);
    let column_max: Vec<f32> = (0..len)
        .map(|t| h.column(t).iter().copied().fold(0.0, f32::max))
        .collect();
    let column_max = ArrayView1::from(&column_max);
    candidates
        .iter()
        .enumerate()
        .take(rows)
        .map(|(j, segments)| {
            let row = h.row(j);
            let own = row.iter().copied().fold(0.0, f32::max);
            segments
                .iter()
                .map(|segment| {
                    let start = segment.start;
                    let peak = max_in(row, start, start + look);
                    if !(peak > 0.0 && global > 0.0) {
                        return 0.0;
                    }
                    let (a, b) = (start.saturating_sub(back), start + look);
                    let related = |offsets: &mut dyn Iterator<Item = Option<usize>>| {
                        offsets
                            .flatten()
                            .filter(|&r| r < rows)
                            .map(|r| max_in(h.row(r), a, b))
                            .fold(0.0, f32::max)
                            / peak
                    };
                    let sustained = row.slice(s![start..(start + sustain).min(len)]);
                    let before = row.slice(s![start.saturating_sub(pre)..=start]);
                    let x = [
                        peak / global,
                        peak / max_in(column_max, a, b),
                        peak / max_in(column_max, start.saturating_sub(local), start + local),
                        peak / own,
                        sustained.mean().unwrap_or(0.0) / peak,
                        before.iter().copied().fold(f32::INFINITY, f32::min) / peak,
                        related(
                            &mut [j.checked_sub(1), Some(j + 1), j.checked_sub(2), Some(j + 2)]
                                .into_iter(),
                        ),
                        related(&mut BELOW.iter().map(|&r| j.checked_sub(r))),
                        related(&mut ABOVE.iter().map(|&r| Some(j + r))),
                        ((segment.end - segment.start) as f64 * frame_s) as f32,
                    ];
                    score(x)
                })
                .collect()
        })
        .collect()
}

/// The logistic model on the features `x` (ratios; `sustain` and `pre` are used as they are,
/// the others by their logarithms).
fn score(x: [f32; FEATURES]) -> f32 {
    const LINEAR: [bool; FEATURES] = [
        false, false, false, false, true, true, false, false, false, false,
    ];
    let z = x
        .iter()
        .zip(WEIGHTS)
        .zip(LINEAR)
        .fold(INTERCEPT, |z, ((&v, w), linear)| {
            let v = if linear { v } else { v.max(FLOOR).ln() };
            z + w * v
        });
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn segment(start: usize, end: usize) -> Segment {
        Segment {
            start,
            end,
            peak: 1.0,
        }
    }

    #[test]
    fn windows_are_whole_frames_of_at_least_one() {
        assert_eq!(frames(0.2, 1024.0 / 44100.0), 9);
        assert_eq!(frames(0.05, 1024.0 / 44100.0), 2);
        assert_eq!(frames(0.001, 0.1), 1);
    }

    #[test]
    fn a_sustained_note_is_more_likely_than_its_octave_partial_struck_with_it() {
        // Row 0 a note that sounds for 100 frames; row 12 (its octave) the same onset at a
        // fifth of its level, dying at once, as a partial excited by the attack does.
        let mut h = Array2::<f32>::zeros((24, 200));
        for t in 50..150 {
            h[[0, t]] = 1.0 - (t - 50) as f32 / 200.0;
        }
        for t in 50..55 {
            h[[12, t]] = 0.2;
        }
        let mut candidates = vec![Vec::new(); 24];
        candidates[0].push(segment(50, 150));
        candidates[12].push(segment(50, 55));
        let c = confidences(h.view(), &candidates, 0.0232);
        assert!(c[0][0] > 0.5 && c[12][0] < 0.5, "{c:?}");
    }

    #[test]
    fn silence_gives_no_confidence() {
        let h = Array2::<f32>::zeros((3, 10));
        let c = confidences(h.view(), &[vec![segment(2, 5)], vec![], vec![]], 0.01);
        assert_eq!(c[0], [0.0]);
    }
}
