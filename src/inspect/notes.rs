//! Musical notes: names and MIDI numbers, note ranges such as `A0-C8`, and harmonic spectral
//! templates, one per semitone, for NMF with pitched components.
//!
//! Pitches follow MIDI and scientific pitch notation: A4 (MIDI 69) is 440 Hz, middle C is C4
//! (MIDI 60), and the lowest MIDI note, 0, is C-1.

use std::fmt;
use std::str::FromStr;

use ndarray::Array2;

use crate::error::{Param, ParamError};
use crate::spectral::StftParams;

/// Frequency in Hz of a (possibly fractional) MIDI note number, with A4 = 69 = 440 Hz.
///
/// ```
/// assert_eq!(demix::inspect::notes::midi_to_hz(69.0), 440.0);
/// assert!((demix::inspect::notes::midi_to_hz(60.0) - 261.626).abs() < 1e-3);
/// ```
pub fn midi_to_hz(midi: f64) -> f64 {
    440.0 * 2f64.powf((midi - 69.0) / 12.0)
}

/// The fractional MIDI note number of a frequency in Hz (the inverse of [`midi_to_hz`]).
pub fn hz_to_midi(hz: f64) -> f64 {
    69.0 + 12.0 * (hz / 440.0).log2()
}

const NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// The name of a MIDI note with sharps and octave: 60 is `C4`, 61 `C#4`, 21 `A0`, 0 `C-1`.
pub fn note_name(midi: i32) -> String {
    let octave = midi.div_euclid(12) - 1;
    format!("{}{octave}", NAMES[midi.rem_euclid(12) as usize])
}

/// A frequency as the nearest note and its deviation in cents, e.g. `A4 +3`, `C#5 -12`,
/// `E2 +0`.
///
/// ```
/// assert_eq!(demix::inspect::notes::pitch_label(440.0 * 2f64.powf(3.0 / 1200.0)), "A4 +3");
/// assert_eq!(demix::inspect::notes::pitch_label(261.0), "C4 -4");
/// ```
pub fn pitch_label(hz: f64) -> String {
    let (midi, cents) = nearest_note(hz);
    format!("{} {cents:+}", note_name(midi))
}

/// The nearest MIDI note to a frequency and the deviation from it in whole cents (-50..=50).
pub fn nearest_note(hz: f64) -> (i32, i32) {
    let m = hz_to_midi(hz);
    let midi = m.round() as i32;
    (midi, ((m - f64::from(midi)) * 100.0).round() as i32)
}

/// Parses one note: a MIDI number `0..=127`, or a name such as `A4`, `c#3`, `Bb2`, `C-1`
/// (letter, optional `#` or `b`, octave).
///
/// # Errors
/// [`ParamError::BadNote`] for anything else or a note outside MIDI's `0..=127`.
///
/// ```
/// use demix::inspect::notes::parse_note;
/// assert_eq!(parse_note("A0"), Ok(21));
/// assert_eq!(parse_note("C8"), Ok(108));
/// assert_eq!(parse_note("Bb3"), Ok(58));
/// assert_eq!(parse_note("60"), Ok(60));
/// assert!(parse_note("H2").is_err());
/// ```
pub fn parse_note(s: &str) -> Result<u8, ParamError> {
    let text = s.trim();
    let bad = |reason: &'static str| ParamError::BadNote {
        note: s.to_string(),
        reason,
    };
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(m) if m <= 127 => Ok(m as u8),
            _ => Err(bad("MIDI numbers go from 0 to 127")),
        };
    }
    let mut chars = text.chars();
    let letter = chars.next().expect("not empty").to_ascii_uppercase();
    let base: i32 = match letter {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return Err(bad("expected a note letter A to G or a MIDI number")),
    };
    let rest = chars.as_str();
    let (accidental, octave) = if let Some(r) = rest.strip_prefix('#') {
        (1, r)
    } else if let Some(r) = rest.strip_prefix('b') {
        (-1, r)
    } else {
        (0, rest)
    };
    let octave: i32 = octave
        .parse()
        .map_err(|_| bad("expected an octave number after the note letter, as in A4"))?;
    let midi = (octave + 1) * 12 + base + accidental;
    u8::try_from(midi)
        .ok()
        .filter(|&m| m <= 127)
        .ok_or_else(|| bad("outside the MIDI range C-1 to G9"))
}

/// An inclusive range of MIDI notes, such as `A0-C8` (the piano) or `36-84`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteRange {
    low: u8,
    high: u8,
}

impl NoteRange {
    /// The 88 keys of a piano, A0 (21) to C8 (108).
    pub const PIANO: NoteRange = NoteRange { low: 21, high: 108 };

    /// The notes `low..=high`.
    ///
    /// # Errors
    /// [`ParamError::BadNoteRange`] if `high` is below `low` or above 127.
    pub fn new(low: u8, high: u8) -> Result<NoteRange, ParamError> {
        if high < low || high > 127 {
            return Err(ParamError::BadNoteRange(format!(
                "{}-{}",
                note_name(low.into()),
                note_name(high.into())
            )));
        }
        Ok(NoteRange { low, high })
    }

    /// The lowest note.
    pub fn low(&self) -> u8 {
        self.low
    }

    /// The highest note.
    pub fn high(&self) -> u8 {
        self.high
    }

    /// Number of notes in the range.
    pub fn len(&self) -> usize {
        usize::from(self.high - self.low) + 1
    }

    /// Always false: a range holds at least one note.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The notes, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = u8> + use<> {
        self.low..=self.high
    }
}

impl FromStr for NoteRange {
    type Err = ParamError;

    /// `LOW-HIGH` with notes as [`parse_note`] reads them (`A0-C8`, `C#3-60`, `C-1-B0`), or a
    /// single note for a range of one.
    fn from_str(s: &str) -> Result<NoteRange, ParamError> {
        let text = s.trim();
        if let Ok(note) = parse_note(text) {
            return NoteRange::new(note, note);
        }
        // A '-' may also be an octave's sign (C-1), so try every split.
        let mut reason = None;
        for (i, _) in text.match_indices('-') {
            match (parse_note(&text[..i]), parse_note(&text[i + 1..])) {
                (Ok(low), Ok(high)) => {
                    return NoteRange::new(low, high)
                        .map_err(|_| ParamError::BadNoteRange(s.to_string()));
                }
                (Err(e), _) | (_, Err(e)) => reason = reason.or(Some(e)),
            }
        }
        Err(reason.unwrap_or_else(|| ParamError::BadNoteRange(s.to_string())))
    }
}

impl fmt::Display for NoteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            note_name(self.low.into()),
            note_name(self.high.into())
        )
    }
}

/// How harmonic note templates are shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HarmonicShape {
    /// Partial `n` has amplitude `n^-decay` (default 1; chosen on the corpus's tuning split
    /// with the note model: onset F 0.894 against 0.887 for 1.25, 0.865 for 1.5, 0.829 for
    /// 0.75 and 0.773 for 2).
    pub decay: f32,
    /// Most partials per note (default 40); partials above 95% of the Nyquist frequency are
    /// left out.
    pub max_partials: usize,
}

impl Default for HarmonicShape {
    fn default() -> Self {
        HarmonicShape {
            decay: 1.0,
            max_partials: 40,
        }
    }
}

impl HarmonicShape {
    /// Checks the decay: finite and at least 0.
    ///
    /// # Errors
    /// [`ParamError::OutOfRange`] naming the harmonic decay.
    pub fn check(&self) -> Result<(), ParamError> {
        if self.decay.is_finite() && self.decay >= 0.0 {
            Ok(())
        } else {
            Err(ParamError::OutOfRange {
                param: Param::HarmonicDecay,
                expected: "a finite number of at least 0",
                got: f64::from(self.decay),
            })
        }
    }
}

/// Harmonic templates, one column per note of `range`, shape `(n_fft / 2 + 1, notes)`, for
/// magnitude spectrograms made with `stft` at `sample_rate`.
///
/// Partial `n` of a note of frequency `f0` sits at `n f0` with amplitude `n^-decay`, and is
/// drawn as the magnitude of the STFT window's transform around that frequency, over its main
/// lobe only: every other bin is exactly zero. NMF's multiplicative updates keep zeros at
/// zero, so templates adapted by the factorisation stay harmonic. Each column sums to 1.
///
/// # Errors
/// [`ParamError::NoteAboveNyquist`] if a note's fundamental is at or above 95% of the Nyquist
/// frequency; the errors of [`StftParams::check`].
///
/// ```
/// use demix::inspect::notes::{harmonic_templates, HarmonicShape, NoteRange};
/// use demix::spectral::StftParams;
/// let range: NoteRange = "A3-A4".parse()?;
/// let w = harmonic_templates(range, 16_000, &StftParams::new(1024), &HarmonicShape::default())?;
/// assert_eq!(w.dim(), (513, 13));
/// // A4's strongest bin is its fundamental, 440 Hz = bin 28.2.
/// let a4 = w.column(12);
/// let peak = (0..513).max_by(|&a, &b| a4[a].total_cmp(&a4[b])).unwrap();
/// assert_eq!(peak, 28);
/// # Ok::<(), demix::ParamError>(())
/// ```
pub fn harmonic_templates(
    range: NoteRange,
    sample_rate: u32,
    stft: &StftParams,
    shape: &HarmonicShape,
) -> Result<Array2<f32>, ParamError> {
    stft.check()?;
    shape.check()?;
    let n_fft = stft.n_fft();
    let nyquist = f64::from(sample_rate) / 2.0;
    let top = 0.95 * nyquist;
    let high_hz = midi_to_hz(f64::from(range.high()));
    if high_hz >= top {
        return Err(ParamError::NoteAboveNyquist {
            note: note_name(range.high().into()),
            hz: high_hz,
            nyquist,
        });
    }
    let lobe = WindowLobe::new(&stft.window().coefficients(n_fft));
    let bins = n_fft / 2 + 1;
    let bin_hz = f64::from(sample_rate) / n_fft as f64;
    let mut w = Array2::<f32>::zeros((bins, range.len()));
    for (j, note) in range.iter().enumerate() {
        let f0 = midi_to_hz(f64::from(note));
        let mut column = vec![0f64; bins];
        for n in 1..=shape.max_partials.max(1) {
            let f = n as f64 * f0;
            if f > top {
                break;
            }
            let centre = f / bin_hz;
            let amp = (n as f64).powf(-f64::from(shape.decay));
            let first = (centre - lobe.half_width).ceil().max(0.0) as usize;
            let last = ((centre + lobe.half_width).floor() as usize).min(bins - 1);
            for (k, c) in column.iter_mut().enumerate().take(last + 1).skip(first) {
                *c += amp * lobe.at((k as f64 - centre).abs());
            }
        }
        let sum: f64 = column.iter().sum();
        for (dst, c) in w.column_mut(j).iter_mut().zip(&column) {
            *dst = (c / sum) as f32;
        }
    }
    Ok(w)
}

/// The main lobe of a window's transform magnitude, tabulated at fractions of a bin and
/// normalised to 1 at the centre.
struct WindowLobe {
    /// Half the main lobe's width in bins (2 for Hann and Hamming).
    half_width: f64,
    /// Magnitudes at `i / STEPS` bins from the centre.
    table: Vec<f64>,
}

impl WindowLobe {
    /// Table points per bin.
    const STEPS: usize = 64;

    fn new(window: &[f32]) -> WindowLobe {
        let n = window.len() as f64;
        let dtft = |offset: f64| {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &w) in window.iter().enumerate() {
                let phase = 2.0 * std::f64::consts::PI * offset * i as f64 / n;
                re += f64::from(w) * phase.cos();
                im -= f64::from(w) * phase.sin();
            }
            (re * re + im * im).sqrt()
        };
        let centre = dtft(0.0).max(f64::MIN_POSITIVE);
        let mut table = vec![1.0];
        // Follow the lobe down to its first minimum (at most 4 bins out).
        for i in 1..=4 * Self::STEPS {
            let v = dtft(i as f64 / Self::STEPS as f64) / centre;
            if v > *table.last().expect("not empty") {
                break;
            }
            table.push(v);
        }
        WindowLobe {
            half_width: (table.len() - 1) as f64 / Self::STEPS as f64,
            table,
        }
    }

    /// The magnitude `distance` bins from the centre (0 beyond the lobe).
    fn at(&self, distance: f64) -> f64 {
        let x = distance * Self::STEPS as f64;
        let i = x.floor() as usize;
        if i + 1 >= self.table.len() {
            return 0.0;
        }
        let frac = x - i as f64;
        self.table[i] * (1.0 - frac) + self.table[i + 1] * frac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse_note() {
        for m in 0..=127u8 {
            assert_eq!(parse_note(&note_name(m.into())), Ok(m), "{m}");
        }
        assert_eq!(parse_note("Db4"), parse_note("C#4"));
        assert_eq!(parse_note("cb4"), parse_note("B3"));
        assert_eq!(note_name(69), "A4");
    }

    #[test]
    fn ranges_parse_by_name_and_number() {
        let piano: NoteRange = "A0-C8".parse().unwrap();
        assert_eq!(piano, NoteRange::PIANO);
        assert_eq!(piano.len(), 88);
        assert_eq!("21-108".parse::<NoteRange>(), Ok(NoteRange::PIANO));
        assert_eq!(
            "C-1-B0".parse::<NoteRange>().map(|r| (r.low(), r.high())),
            Ok((0, 23))
        );
        assert_eq!(
            "A4".parse::<NoteRange>().map(|r| (r.low(), r.high())),
            Ok((69, 69))
        );
        assert!("C8-A0".parse::<NoteRange>().is_err());
        assert!("A0-X8".parse::<NoteRange>().is_err());
        assert!("A0-".parse::<NoteRange>().is_err());
        assert!("0-128".parse::<NoteRange>().is_err());
    }

    #[test]
    fn hann_lobe_is_two_bins_wide() {
        let lobe = WindowLobe::new(&crate::spectral::Window::Hann.coefficients(1024));
        assert!((lobe.half_width - 2.0).abs() < 0.05, "{}", lobe.half_width);
        // |W(1 bin)| / |W(0)| = 1/2 for a periodic Hann window.
        assert!((lobe.at(1.0) - 0.5).abs() < 1e-3);
    }
}
