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

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, s};

use super::transcribe::Segment;
use crate::error::Result;
use crate::separate::Activations;

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

/// Candidate onsets judged with one window of activations.
const CHUNK: usize = 4096;

/// The model's confidence, in [0, 1], that each candidate of `candidates` (per row of `h`,
/// one row per semitone from the lowest note up, whose largest activations are `peaks`) is a
/// note. `h` is read once, in order, `frames` frames of K rows (the first `candidates.len()`
/// of them the notes), `frame_s` seconds apart; only the frames around a few thousand
/// candidate onsets are held at a time.
///
/// # Errors
/// Those of reading `h`.
pub(crate) fn confidences(
    h: &mut Activations<'_>,
    frames: usize,
    candidates: &[Vec<Segment>],
    peaks: &[f32],
    frame_s: f64,
) -> Result<Vec<Vec<f32>>> {
    let rows = candidates.len();
    let model = Model::new(frame_s, peaks[..rows].iter().copied().fold(0.0, f32::max));
    let mut out: Vec<Vec<f32>> = candidates.iter().map(|c| vec![0.0; c.len()]).collect();
    let mut onsets: Vec<(usize, usize, usize)> = candidates
        .iter()
        .enumerate()
        .flat_map(|(j, row)| row.iter().enumerate().map(move |(i, s)| (s.start, j, i)))
        .collect();
    onsets.sort_unstable();
    let mut window = Window::new(rows);
    let mut first = 0;
    while first < onsets.len() {
        let from = onsets[first].0 / CHUNK * CHUNK;
        let last = first + onsets[first..].partition_point(|o| o.0 < from + CHUNK);
        // Every frame a candidate of this chunk reads lies within `local` frames of its onset.
        let span = from.saturating_sub(model.local)..(from + CHUNK + model.local).min(frames);
        window.advance(h, span)?;
        let (data, column_max) = window.arrays();
        for &(_, j, i) in &onsets[first..last] {
            let at = Placed {
                h: data.view(),
                column_max: column_max.view(),
                offset: window.first,
                frames,
            };
            out[j][i] = model.confidence(&at, j, &candidates[j][i], peaks[j]);
        }
        first = last;
    }
    Ok(out)
}

/// The frames of the note rows of H that a chunk of candidates reads, kept as they are read.
struct Window {
    rows: usize,
    /// The first frame held.
    first: usize,
    /// The next frame to read.
    next: usize,
    /// Frames `first..next`, frame after frame, `rows` values each.
    values: Vec<f32>,
}

impl Window {
    fn new(rows: usize) -> Window {
        Window {
            rows,
            first: 0,
            next: 0,
            values: Vec::new(),
        }
    }

    /// Holds the frames `span` (whose start and end never move back), reading on from `h`.
    fn advance(&mut self, h: &mut Activations<'_>, span: Range<usize>) -> Result<()> {
        if span.start >= self.next {
            self.values.clear();
        } else {
            self.values.drain(..(span.start - self.first) * self.rows);
        }
        self.first = span.start;
        while self.next < span.end {
            let n = (span.end - self.next).min(CHUNK);
            let block = h.block(self.next, n)?;
            for t in self.first.max(self.next) - self.next..n {
                self.values
                    .extend(block.column(t).iter().take(self.rows).copied());
            }
            self.next += n;
        }
        Ok(())
    }

    /// The frames held, rows × frames, and the largest activation of each frame.
    fn arrays(&self) -> (Array2<f32>, Array1<f32>) {
        let frames = self.values.len() / self.rows.max(1);
        let by_frame = ArrayView2::from_shape((frames, self.rows), &self.values)
            .expect("whole frames of rows");
        let column_max = by_frame
            .rows()
            .into_iter()
            .map(|frame| frame.iter().copied().fold(0.0, f32::max))
            .collect();
        (by_frame.t().as_standard_layout().into_owned(), column_max)
    }
}

/// Frames of H held from `offset` on, in a recording of `frames` frames.
struct Placed<'a> {
    /// Note rows × frames held.
    h: ArrayView2<'a, f32>,
    /// The largest activation of each frame held.
    column_max: ArrayView1<'a, f32>,
    offset: usize,
    frames: usize,
}

impl Placed<'_> {
    /// The largest value of `row` (held from `offset`) in frames `start..end` of the
    /// recording (clipped to it), 0 for none.
    fn max_in(&self, row: ArrayView1<f32>, start: usize, end: usize) -> f32 {
        max_in(row, start - self.offset, end.min(self.frames) - self.offset)
    }
}

/// The model's windows, in frames, and the loudest note activation.
struct Model {
    back: usize,
    look: usize,
    local: usize,
    sustain: usize,
    pre: usize,
    global: f32,
    frame_s: f64,
}

impl Model {
    fn new(frame_s: f64, global: f32) -> Model {
        Model {
            back: frames(BACK_S, frame_s),
            look: frames(LOOK_S, frame_s),
            local: frames(LOCAL_S, frame_s),
            sustain: frames(SUSTAIN_S, frame_s),
            pre: frames(PRE_S, frame_s),
            global,
            frame_s,
        }
    }

    /// The confidence that `segment`, on note row `j` whose largest activation is `own`, is
    /// a note, from the frames `at` holds around its onset.
    fn confidence(&self, at: &Placed<'_>, j: usize, segment: &Segment, own: f32) -> f32 {
        let (rows, o) = (at.h.nrows(), at.offset);
        let row = at.h.row(j);
        let start = segment.start;
        let peak = at.max_in(row, start, start + self.look);
        if !(peak > 0.0 && self.global > 0.0) {
            return 0.0;
        }
        let (a, b) = (start.saturating_sub(self.back), start + self.look);
        let related = |offsets: &mut dyn Iterator<Item = Option<usize>>| {
            offsets
                .flatten()
                .filter(|&r| r < rows)
                .map(|r| at.max_in(at.h.row(r), a, b))
                .fold(0.0, f32::max)
                / peak
        };
        let sustained = row.slice(s![start - o..(start + self.sustain).min(at.frames) - o]);
        let before = row.slice(s![start.saturating_sub(self.pre) - o..=start - o]);
        let local = start.saturating_sub(self.local)..start + self.local;
        let x = [
            peak / self.global,
            peak / at.max_in(at.column_max, a, b),
            peak / at.max_in(at.column_max, local.start, local.end),
            peak / own,
            sustained.mean().unwrap_or(0.0) / peak,
            before.iter().copied().fold(f32::INFINITY, f32::min) / peak,
            related(
                &mut [j.checked_sub(1), Some(j + 1), j.checked_sub(2), Some(j + 2)].into_iter(),
            ),
            related(&mut BELOW.iter().map(|&r| j.checked_sub(r))),
            related(&mut ABOVE.iter().map(|&r| Some(j + r))),
            ((segment.end - segment.start) as f64 * self.frame_s) as f32,
        ];
        score(x)
    }
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

    /// The confidences of candidates in all of `h`, held in memory.
    fn whole(h: ArrayView2<f32>, candidates: &[Vec<Segment>], frame_s: f64) -> Vec<Vec<f32>> {
        let peaks: Vec<f32> = h
            .rows()
            .into_iter()
            .map(|r| r.iter().copied().fold(0.0, f32::max))
            .collect();
        let mut reader = Activations::Memory(h);
        confidences(&mut reader, h.ncols(), candidates, &peaks, frame_s).unwrap()
    }

    /// The confidences as found before they were found window by window: all of `h` at hand.
    fn reference(h: ArrayView2<f32>, candidates: &[Vec<Segment>], frame_s: f64) -> Vec<Vec<f32>> {
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

    #[test]
    fn confidences_window_by_window_are_those_of_the_whole_activations() {
        // 12 000 frames of 30 notes, candidates everywhere: onsets from the first frame to the
        // last, in chunks of several windows.
        let (rows, frames) = (30, 12_000);
        let mut rng = crate::nmf::Rng::new(99);
        let mut uniform = move || rng.uniform() as f32;
        let h = Array2::from_shape_fn((rows, frames), |_| uniform().powi(4));
        let candidates: Vec<Vec<Segment>> = (0..rows)
            .map(|j| {
                (0..frames)
                    .step_by(37 + j)
                    .map(|start| segment(start, (start + 20).min(frames)))
                    .chain([segment(frames - 1, frames)])
                    .collect()
            })
            .collect();
        for frame_s in [0.0232, 0.004] {
            let expected = reference(h.view(), &candidates, frame_s);
            assert_eq!(
                whole(h.view(), &candidates, frame_s),
                expected,
                "{frame_s} s"
            );
            assert!(expected.iter().flatten().any(|&c| c > 0.5));
        }
    }

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
        let c = whole(h.view(), &candidates, 0.0232);
        assert!(c[0][0] > 0.5 && c[12][0] < 0.5, "{c:?}");
    }

    #[test]
    fn silence_gives_no_confidence() {
        let h = Array2::<f32>::zeros((3, 10));
        let c = whole(h.view(), &[vec![segment(2, 5)], vec![], vec![]], 0.01);
        assert_eq!(c[0], [0.0]);
    }
}
