//! Note events from activations: thresholds relative to each note's peak and to the loudest
//! note, hysteresis, re-onsets for repeated notes, a minimum duration, and velocity from the
//! activation level.

use std::collections::VecDeque;

use crate::error::{Param, ParamError};

/// How activations become notes. Levels are fractions of activation values; every setter
/// states its default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TranscribeParams {
    pub(crate) onset: f32,
    pub(crate) min_level: f32,
    pub(crate) offset: f32,
    pub(crate) reonset: f32,
    pub(crate) min_duration_s: f64,
    pub(crate) confidence: f32,
}

impl Default for TranscribeParams {
    fn default() -> Self {
        TranscribeParams {
            onset: 0.1,
            min_level: 0.3,
            offset: 0.5,
            reonset: 1.5,
            min_duration_s: 0.05,
            confidence: DEFAULT_CONFIDENCE,
        }
    }
}

/// The least confidence of the note model for a candidate to be a note, with note templates
/// (chosen on the corpus's tuning split: 0.3 and 0.5 gave lower onset F).
pub const DEFAULT_CONFIDENCE: f32 = 0.4;

/// The lowest level of a candidate note with note templates, as a fraction of the loudest
/// activation: low, since the note model judges each candidate.
pub const NOTES_MIN_LEVEL: f32 = 0.05;

impl TranscribeParams {
    /// The default thresholds (see each setter), tuned on synthetic notes and checked on a
    /// rendered piano recording.
    pub fn new() -> TranscribeParams {
        TranscribeParams::default()
    }

    /// The defaults for note templates: candidates down to [`NOTES_MIN_LEVEL`] of the loudest
    /// activation, each kept when the note model's confidence reaches [`DEFAULT_CONFIDENCE`].
    pub fn for_notes() -> TranscribeParams {
        TranscribeParams::default().with_min_level(NOTES_MIN_LEVEL)
    }

    /// A note starts where its activation reaches this fraction of its own peak (default
    /// 0.1) and [`Self::with_min_level`] of the loudest activation.
    pub fn with_onset(mut self, fraction: f32) -> Self {
        self.onset = fraction;
        self
    }

    /// No note starts below this fraction of the loudest activation of all components
    /// (default 0.3; [`NOTES_MIN_LEVEL`] for note templates), so components that never really
    /// sound give no notes.
    pub fn with_min_level(mut self, fraction: f32) -> Self {
        self.min_level = fraction;
        self
    }

    /// A note ends where its activation falls below this fraction of its onset level
    /// (default 0.5).
    pub fn with_offset(mut self, fraction: f32) -> Self {
        self.offset = fraction;
        self
    }

    /// While a note sounds, an activation that grows by this factor over two frames starts a
    /// new note: a repeated key (default 1.5; 0 turns re-onsets off).
    pub fn with_reonset(mut self, factor: f32) -> Self {
        self.reonset = factor;
        self
    }

    /// Notes shorter than this many seconds are dropped (default 0.05).
    pub fn with_min_duration(mut self, seconds: f64) -> Self {
        self.min_duration_s = seconds;
        self
    }

    /// With note templates, a candidate note is kept when the note model's confidence in it
    /// is at least this (default [`DEFAULT_CONFIDENCE`]; 0 keeps every candidate).
    pub fn with_confidence(mut self, confidence: f32) -> Self {
        self.confidence = confidence;
        self
    }

    /// The least confidence of a note, with note templates.
    pub fn confidence(&self) -> f32 {
        self.confidence
    }

    /// The onset threshold: a fraction of the note's own peak.
    pub fn onset(&self) -> f32 {
        self.onset
    }

    /// The lowest onset level: a fraction of the loudest activation of all components.
    pub fn min_level(&self) -> f32 {
        self.min_level
    }

    /// The offset threshold: a fraction of the onset level.
    pub fn offset(&self) -> f32 {
        self.offset
    }

    /// The rise over two frames that starts a new note (0: off).
    pub fn reonset(&self) -> f32 {
        self.reonset
    }

    /// The shortest note kept, in seconds.
    pub fn min_duration(&self) -> f64 {
        self.min_duration_s
    }

    /// Checks every threshold.
    ///
    /// # Errors
    /// [`ParamError::OutOfRange`] naming the first one out of range.
    pub fn check(&self) -> Result<(), ParamError> {
        let fraction = |name, v: f32| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(ParamError::OutOfRange {
                    param: name,
                    expected: "above 0 and at most 1",
                    got: f64::from(v),
                })
            }
        };
        fraction(Param::OnsetThreshold, self.onset)?;
        fraction(Param::OffsetThreshold, self.offset)?;
        if !(self.min_level.is_finite() && (0.0..=1.0).contains(&self.min_level)) {
            return Err(ParamError::OutOfRange {
                param: Param::MinLevel,
                expected: "between 0 and 1",
                got: f64::from(self.min_level),
            });
        }
        if !(self.confidence.is_finite() && (0.0..=1.0).contains(&self.confidence)) {
            return Err(ParamError::OutOfRange {
                param: Param::NoteConfidence,
                expected: "between 0 and 1",
                got: f64::from(self.confidence),
            });
        }
        if !(self.reonset.is_finite() && (self.reonset == 0.0 || self.reonset > 1.0)) {
            return Err(ParamError::OutOfRange {
                param: Param::Reonset,
                expected: "0 (off) or above 1",
                got: f64::from(self.reonset),
            });
        }
        if !(self.min_duration_s.is_finite() && self.min_duration_s >= 0.0) {
            return Err(ParamError::OutOfRange {
                param: Param::MinDuration,
                expected: "a finite number of seconds, at least 0",
                got: self.min_duration_s,
            });
        }
        Ok(())
    }
}

/// One stretch of activity of one component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// First frame.
    pub start: usize,
    /// One past the last frame.
    pub end: usize,
    /// The largest activation within.
    pub peak: f32,
}

/// Frames a re-onset looks back over.
const RISE_FRAMES: usize = 2;

/// How far an onset may move back from its threshold crossing to the foot of the attack, in
/// seconds (chosen on the corpus's tuning split with the note model: 0.025 s gave onset F
/// 0.865, 0 gave 0.863 and 0.05 gave 0.688).
const FOOT_S: f64 = 0.025;

/// The segments where one activation sounds, found as its frames are fed in order, a block at
/// a time: the same segments whatever the blocks, holding a few frames, not the activation.
#[derive(Debug, Clone)]
pub(crate) struct Segmenter {
    on_level: f32,
    off_level: f32,
    min_frames: usize,
    foot: usize,
    reonset: f32,
    /// Whether the activation can sound at all.
    live: bool,
    /// Frames fed so far.
    next: usize,
    /// The last `keep` frames' activations, the last fed last.
    recent: VecDeque<f32>,
    keep: usize,
    /// The first frame of the segment under way.
    start: Option<usize>,
    last_end: usize,
    /// Whether the activation has fallen since the note began: a re-onset comes after the
    /// peak of the note it repeats, never within one attack spread over several frames.
    peaked: bool,
    /// The largest activation of the segment under way among the frames no longer `recent`.
    earlier_peak: f32,
    out: Vec<Segment>,
}

impl Segmenter {
    /// The segments of an activation whose largest value is `peak`, in a recording whose
    /// loudest activation (over all components) is `global_peak`, with frames `frame_s`
    /// seconds apart.
    pub(crate) fn new(
        peak: f32,
        global_peak: f32,
        frame_s: f64,
        params: &TranscribeParams,
    ) -> Segmenter {
        let on_level = (params.onset * peak).max(params.min_level * global_peak);
        let foot = (FOOT_S / frame_s + 0.5).floor() as usize;
        // An onset looks back `foot` frames, a re-onset RISE_FRAMES; one more for the frame
        // before each.
        let keep = foot.max(RISE_FRAMES) + 2;
        Segmenter {
            on_level,
            off_level: params.offset * on_level,
            min_frames: (params.min_duration_s / frame_s).ceil() as usize,
            foot,
            reonset: params.reonset,
            live: !(peak.is_nan() || peak <= 0.0 || peak < on_level),
            next: 0,
            recent: VecDeque::with_capacity(keep),
            keep,
            start: None,
            last_end: 0,
            peaked: false,
            earlier_peak: 0.0,
            out: Vec::new(),
        }
    }

    /// The activation at frame `t`, one of the `recent` frames.
    fn at(&self, t: usize) -> f32 {
        self.recent[t + self.recent.len() - self.next]
    }

    /// Takes the activations of the next frames.
    pub(crate) fn feed(&mut self, values: impl IntoIterator<Item = f32>) {
        if !self.live {
            self.next += values.into_iter().count();
            return;
        }
        for v in values {
            let t = self.next;
            if self.recent.len() == self.keep
                && let Some(gone) = self.recent.pop_front()
                && self.start.is_some_and(|s| t - self.keep >= s)
            {
                self.earlier_peak = self.earlier_peak.max(gone);
            }
            self.recent.push_back(v);
            self.next = t + 1;
            self.step(t, v);
        }
    }

    /// The segments found, once every frame is fed.
    pub(crate) fn finish(mut self) -> Vec<Segment> {
        if let Some(s) = self.start {
            self.push(s, self.next);
        }
        self.out
    }

    fn step(&mut self, t: usize, v: f32) {
        match self.start {
            None if v >= self.on_level => {
                // The threshold is crossed part way up the attack: the note began where the
                // rise began, at most FOOT_S earlier.
                let mut s = t;
                while s > self.last_end && t - s < self.foot && self.at(s - 1) < self.at(s) {
                    s -= 1;
                }
                self.begin(s);
            }
            Some(s) if v < self.off_level => {
                self.push(s, t);
                self.last_end = t;
                self.start = None;
            }
            Some(s)
                if self.reonset > 0.0
                    && self.peaked
                    && t >= s + 2 * RISE_FRAMES
                    && v > self.reonset * self.at(t - RISE_FRAMES) =>
            {
                // The rise began at the last lowest point of the last few frames.
                let begin = (t - RISE_FRAMES..=t)
                    .min_by(|&a, &b| self.at(a).total_cmp(&self.at(b)).then(b.cmp(&a)))
                    .unwrap_or(t);
                if begin > s {
                    self.push(s, begin);
                    self.last_end = begin;
                    self.begin(begin);
                }
            }
            Some(_) if v < self.at(t - 1) => self.peaked = true,
            _ => {}
        }
    }

    /// A segment starts at frame `s`, one of the recent frames.
    fn begin(&mut self, s: usize) {
        self.start = Some(s);
        self.peaked = false;
        self.earlier_peak = 0.0;
    }

    /// Keeps the segment `start..end` (`start` that of the segment under way, `end` at most
    /// the next frame) if it is long enough.
    fn push(&mut self, start: usize, end: usize) {
        if end - start >= self.min_frames.max(1) {
            let first = self.next - self.recent.len();
            let mut peak = if start < first {
                self.earlier_peak
            } else {
                0.0
            };
            for t in start.max(first)..end {
                peak = peak.max(self.at(t));
            }
            self.out.push(Segment { start, end, peak });
        }
    }
}

/// MIDI velocity for a note whose activation peaks at `peak` when the loudest reaches
/// `global_peak`: 127 times the square root of their ratio (amplitude to a rough loudness),
/// at least 1.
pub(crate) fn velocity(peak: f32, global_peak: f32) -> u8 {
    if global_peak.is_nan() || global_peak <= 0.0 {
        return 1;
    }
    (127.0 * (peak / global_peak).clamp(0.0, 1.0).sqrt())
        .round()
        .clamp(1.0, 127.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, ArrayView1};

    /// The segments of all of `h`, fed at once.
    fn segments(
        h: ArrayView1<f32>,
        global_peak: f32,
        frame_s: f64,
        params: &TranscribeParams,
    ) -> Vec<Segment> {
        let peak = h.iter().copied().fold(0.0, f32::max);
        let mut segmenter = Segmenter::new(peak, global_peak, frame_s, params);
        segmenter.feed(h.iter().copied());
        segmenter.finish()
    }

    #[test]
    fn a_gated_activation_gives_one_segment_from_the_foot_of_its_rise() {
        // The onset is the last frame before the rise, as for re-onsets.
        let h = Array1::from_iter((0..100).map(|t| if (20..60).contains(&t) { 1.0 } else { 0.01 }));
        let s = segments(h.view(), 1.0, 0.01, &TranscribeParams::default());
        assert_eq!(
            s,
            [Segment {
                start: 19,
                end: 60,
                peak: 1.0
            }]
        );
    }

    #[test]
    fn a_repeated_note_gives_two_segments() {
        // Decays, then struck again at frame 50 without falling below the offset level.
        let h = Array1::from_iter((0..100).map(|t| match t {
            0..10 => 0.0,
            10..50 => 0.9f32.powi(t - 10).max(0.4),
            _ => 0.9f32.powi(t - 50).max(0.4),
        }));
        let s = segments(h.view(), 1.0, 0.01, &TranscribeParams::default());
        let starts: Vec<usize> = s.iter().map(|s| s.start).collect();
        assert_eq!(starts, [9, 49]);
    }

    #[test]
    fn quiet_components_and_short_blips_give_nothing() {
        let quiet = Array1::from_elem(50, 0.1f32);
        assert!(segments(quiet.view(), 1.0, 0.01, &TranscribeParams::default()).is_empty());
        let blip = Array1::from_iter((0..50).map(|t| if t == 25 { 1.0 } else { 0.0 }));
        assert!(segments(blip.view(), 1.0, 0.01, &TranscribeParams::default()).is_empty());
    }

    /// The segments as found before they were found block by block: the whole activation at
    /// hand, looked back into freely.
    fn reference(
        h: ArrayView1<f32>,
        global_peak: f32,
        frame_s: f64,
        params: &TranscribeParams,
    ) -> Vec<Segment> {
        let peak = h.iter().copied().fold(0.0, f32::max);
        let on_level = (params.onset * peak).max(params.min_level * global_peak);
        if peak.is_nan() || peak <= 0.0 || peak < on_level {
            return Vec::new();
        }
        let off_level = params.offset * on_level;
        let min_frames = (params.min_duration_s / frame_s).ceil() as usize;
        let foot = (FOOT_S / frame_s + 0.5).floor() as usize;
        let mut out = Vec::new();
        let mut push = |start: usize, end: usize| {
            if end - start >= min_frames.max(1) {
                let peak = h
                    .slice(ndarray::s![start..end])
                    .iter()
                    .copied()
                    .fold(0.0, f32::max);
                out.push(Segment { start, end, peak });
            }
        };
        let mut start: Option<usize> = None;
        let mut last_end = 0;
        // Whether the activation has fallen since the note began: a re-onset comes after the
        // peak of the note it repeats, never within one attack spread over several frames.
        let mut peaked = false;
        for (t, &v) in h.iter().enumerate() {
            match start {
                None if v >= on_level => {
                    // The threshold is crossed part way up the attack: the note began where the
                    // rise began, at most FOOT_S earlier.
                    let mut s = t;
                    while s > last_end && t - s < foot && h[s - 1] < h[s] {
                        s -= 1;
                    }
                    start = Some(s);
                    peaked = false;
                }
                Some(s) if v < off_level => {
                    push(s, t);
                    last_end = t;
                    start = None;
                }
                Some(s)
                    if params.reonset > 0.0
                        && peaked
                        && t >= s + 2 * RISE_FRAMES
                        && v > params.reonset * h[t - RISE_FRAMES] =>
                {
                    // The rise began at the last lowest point of the last few frames.
                    let begin = (t - RISE_FRAMES..=t)
                        .min_by(|&a, &b| h[a].total_cmp(&h[b]).then(b.cmp(&a)))
                        .unwrap_or(t);
                    if begin > s {
                        push(s, begin);
                        last_end = begin;
                        start = Some(begin);
                        peaked = false;
                    }
                }
                Some(_) if v < h[t - 1] => peaked = true,
                _ => {}
            }
        }
        if let Some(s) = start {
            push(s, h.len());
        }
        out
    }

    #[test]
    fn segments_fed_in_blocks_are_those_of_the_whole_activation() {
        // Notes of many lengths, repeated keys and noise, the foot of an onset up to 4 frames.
        let mut rng = crate::nmf::Rng::new(12_345);
        let mut uniform = move || rng.uniform() as f32;
        let h = Array1::from_iter((0..3000).map(|t| {
            let envelope = if (t / 97) % 3 == 0 {
                0.0
            } else {
                0.97f32.powi(t % 97)
            };
            envelope + 0.05 * uniform()
        }));
        let peak = h.iter().copied().fold(0.0, f32::max);
        for frame_s in [0.023, 0.006] {
            let params = TranscribeParams::default().with_min_level(0.05);
            let whole = reference(h.view(), 1.0, frame_s, &params);
            assert!(whole.len() >= 15, "{}", whole.len());
            // Some notes end where the next, a repeated key, begins.
            assert!(
                whole.windows(2).any(|w| w[0].end == w[1].start),
                "re-onsets"
            );
            for block in [1, 2, 5, 64, 999] {
                let mut segmenter = Segmenter::new(peak, 1.0, frame_s, &params);
                for chunk in h.as_slice().unwrap().chunks(block) {
                    segmenter.feed(chunk.iter().copied());
                }
                assert_eq!(segmenter.finish(), whole, "blocks of {block}, {frame_s} s");
            }
        }
    }

    #[test]
    fn velocities_follow_the_level() {
        assert_eq!(velocity(1.0, 1.0), 127);
        assert_eq!(velocity(0.25, 1.0), 64);
        assert_eq!(velocity(0.0, 1.0), 1);
        assert_eq!(velocity(1.0, 0.0), 1);
    }
}
