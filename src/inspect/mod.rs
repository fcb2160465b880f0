//! What plays when, at which pitch: NMF templates and activations as data and pictures.
//!
//! [`inspect`] factorises a recording's magnitude spectrogram as the separation does, with
//! either free components or one harmonic template per semitone of a note range
//! ([`NoteTemplates`]), then describes every component: its estimated fundamental and note
//! ([`estimate_pitch`]), its share of the energy, and when it is active. With note templates
//! the activations read as a piano roll, and [`Inspection::notes`] turns them into note
//! events for a MIDI file. [`inspect_file`] writes all of it into a folder: CSV, `.npy`,
//! JSON, PNG charts, and optionally one WAV per component and a MIDI file.
//!
//! Long recordings are inspected in bounded memory, as they are separated: beyond
//! [`InspectParams::max_frames`] frames the templates are fitted on a sample of that many
//! frames and the activations solved block by block; [`inspect_file`] reads the file in
//! passes, keeps the activations in a file, writes the tables and arrays as it reads them
//! back, and draws the charts from their pixel columns ([`Overview`]).

mod activity;
mod charts;
mod export;
mod fit;
mod learn;
mod note_model;
pub mod notes;
mod overview;
mod params;
mod pitch;
mod tables;
mod transcribe;

pub use charts::{
    CHART_HEIGHT, CHART_WIDTH, NOTE_BOX, activations_chart, spectrogram_chart, templates_chart,
};
pub use export::{InspectOutput, InspectReport, OUTPUT_NAMES, inspect_file, midi_apart};
pub use learn::{LEARN_NOTES_ITER, LearnedNotes, learn_notes, learn_notes_params};
pub use overview::Overview;
pub use params::{
    ADAPT_ITERATIONS, InspectParams, Inspector, NOTES_N_FFT, NoteTemplates, notes_stft, scaled_stft,
};
pub use pitch::{MIN_EXCESS_FRACTION, MIN_HARMONIC_FRACTION, PitchEstimate, estimate_pitch};
pub use transcribe::{DEFAULT_CONFIDENCE, NOTES_MIN_LEVEL, TranscribeParams};

use std::path::PathBuf;

use ndarray::{Array2, Axis};

use crate::audio::Audio;
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::formats::midi::NoteEvent;
use crate::nmf::{Nmf, Progress, RankReport};
use crate::separate::{Input, Separation, Stored};
use crate::sources::{Source, one_source_per_component};
use crate::spectral::{Stft, channel_summed_magnitude, check_length};
use fit::Fitted;

/// Lowest fundamental searched for in a template, in Hz (just below A0).
pub const MIN_PITCH_HZ: f64 = 25.0;
/// Highest fundamental searched for in a template, in Hz (just above C8).
pub const MAX_PITCH_HZ: f64 = 4500.0;

/// A stretch of time in which a component is active.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activity {
    /// Start in seconds.
    pub start_s: f64,
    /// End in seconds.
    pub end_s: f64,
    /// The largest activation within.
    pub peak: f32,
}

/// What is known about one component.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Its name in file names and column headers: the note (`A4`, `C#5`) for note templates,
    /// for free components the name `demix separate` gives the same component (`source1` for
    /// the loudest, ...; listed by pitch, unpitched last), and `free1`, ... for free
    /// components added to note templates.
    pub id: String,
    /// The note of its template, for note templates.
    pub note: Option<u8>,
    /// The estimated fundamental of its (fitted) template, or `None` when unpitched.
    pub pitch: Option<PitchEstimate>,
    /// Its share of the summed energies `|W_k|² |H_k|²` of all components.
    pub energy_share: f64,
    /// When it is active, by the transcription thresholds.
    pub active: Vec<Activity>,
}

impl Component {
    /// The estimated pitch as a note with cents (`A4 +3`), or `unpitched`.
    pub fn pitch_label(&self) -> String {
        self.pitch
            .map_or_else(|| "unpitched".into(), |p| notes::pitch_label(p.f0_hz))
    }

    /// The MIDI note its activity is written as: the template's note, else (for free
    /// components) the nearest note to its estimated pitch.
    fn midi_note(&self, notes_mode: bool) -> Option<u8> {
        if notes_mode {
            return self.note;
        }
        let (midi, _) = notes::nearest_note(self.pitch?.f0_hz);
        u8::try_from(midi).ok().filter(|&m| m <= 127)
    }
}

/// The result of [`inspect`]: the factorisation and a description of every component.
#[derive(Debug)]
pub struct Inspection {
    /// Templates W `(bins, K)` and activations H `(K, frames)`, components in the order of
    /// [`Self::components`].
    pub nmf: Nmf,
    /// Every component, in the order of W's columns.
    pub components: Vec<Component>,
    /// The channel-summed magnitude spectrogram, `(frames, bins)`.
    pub spectrogram: Array2<f32>,
    /// The input's sample rate.
    pub sample_rate: u32,
    /// The rank selection that chose the number of components (`-k auto`), if one ran.
    pub rank: Option<RankReport>,
    stft: Stft,
    mask_power: f32,
    notes_mode: bool,
    /// The loudest activation of the components that can be transcribed.
    global: f32,
}

impl Inspection {
    /// Hz between frequency bins.
    pub fn bin_hz(&self) -> f64 {
        f64::from(self.sample_rate) / self.stft.n_fft() as f64
    }

    /// Seconds between frames.
    pub fn frame_s(&self) -> f64 {
        self.stft.hop() as f64 / f64::from(self.sample_rate)
    }

    /// The frequency of every bin in Hz.
    pub fn freq_hz(&self) -> Vec<f64> {
        (0..self.stft.n_bins())
            .map(|k| k as f64 * self.bin_hz())
            .collect()
    }

    /// The time of every frame's centre in seconds.
    pub fn time_s(&self) -> Vec<f64> {
        (0..self.nmf.h.ncols())
            .map(|t| frame_time(&self.stft, self.sample_rate, t))
            .collect()
    }

    /// Whether the components are note templates.
    pub fn has_note_templates(&self) -> bool {
        self.notes_mode
    }

    /// The STFT of the analysis.
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// The note events of the activity of every pitched component (with note templates,
    /// only the notes), sorted by onset, velocity from the activation level.
    pub fn notes(&self) -> Vec<NoteEvent> {
        sorted_notes(self.transcription())
    }

    /// The events of [`Self::notes`], each with the component it comes from, in component
    /// order.
    pub(crate) fn transcription(&self) -> Vec<(usize, NoteEvent)> {
        transcription(&self.components, self.notes_mode, self.global)
    }

    /// A separation with one source per component, named by its id, to render each
    /// component's audio as `demix separate` does.
    pub fn separation(&self) -> Separation {
        let sources = self
            .components
            .iter()
            .enumerate()
            .map(|(i, c)| Source {
                name: c.id.clone(),
                components: vec![i],
            })
            .collect();
        Separation::new(
            self.nmf.clone(),
            sources,
            self.stft.clone(),
            self.mask_power,
        )
    }
}

/// The time of the centre of frame `t` in seconds.
fn frame_time(stft: &Stft, sample_rate: u32, t: usize) -> f64 {
    (t * stft.hop()) as f64 / f64::from(sample_rate)
}

/// The note events of the activity of every component of `components` that has a note (with
/// note templates, only the notes), each with its component's index, in component order;
/// velocities relative to the loudest activation `global`.
fn transcription(
    components: &[Component],
    notes_mode: bool,
    global: f32,
) -> Vec<(usize, NoteEvent)> {
    components
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, c, c.midi_note(notes_mode)?)))
        .flat_map(|(i, c, pitch)| {
            c.active.iter().map(move |a| {
                let note = NoteEvent {
                    onset_s: a.start_s,
                    offset_s: a.end_s,
                    pitch,
                    velocity: transcribe::velocity(a.peak, global),
                };
                (i, note)
            })
        })
        .collect()
}

/// The events of a transcription sorted by onset, then pitch.
fn sorted_notes(transcription: Vec<(usize, NoteEvent)>) -> Vec<NoteEvent> {
    let mut notes: Vec<NoteEvent> = transcription.into_iter().map(|(_, n)| n).collect();
    notes.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s).then(a.pitch.cmp(&b.pitch)));
    notes
}

/// Factorises `audio` and describes every component; see the [module](self) documentation.
///
/// A recording longer than [`InspectParams::max_frames`] frames has its templates fitted on
/// an evenly spaced sample of that many frames and its activations solved block by block with
/// the templates fixed, as `demix separate` does.
///
/// # Errors
/// [`Error::Param`] for invalid parameters or notes above the audio's
/// Nyquist frequency, [`Error::NonFinite`] for NaN or infinite
/// samples, [`Error::TooShort`] for audio shorter than one frame.
///
/// ```
/// use demix::audio::Audio;
/// use demix::inspect::{inspect, InspectParams};
/// // One second of A4 (440 Hz) with three partials, at 16 kHz.
/// let tone: Vec<f32> = (0..16_000)
///     .map(|i| {
///         let t = i as f32 / 16_000.0;
///         (1..=3).map(|n| (2.0 * std::f32::consts::PI * 440.0 * n as f32 * t).sin() / n as f32).sum()
///     })
///     .collect();
/// let audio = Audio::new(16_000, vec![tone])?;
/// let result = inspect(&audio, &InspectParams::free(1), &mut |_| {})?;
/// assert_eq!(result.components[0].pitch_label(), "A4 +0");
///
/// let notes = inspect(&audio, &InspectParams::notes("A3-A5".parse()?), &mut |_| {})?.notes();
/// assert_eq!(notes.len(), 1);
/// assert_eq!(notes[0].pitch, 69);
/// # Ok::<(), demix::Error>(())
/// ```
pub fn inspect(
    audio: &Audio,
    params: &InspectParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Inspection> {
    params.check()?.inspect(audio, progress)
}

impl Inspector {
    /// Inspects `audio`, as [`inspect`] does.
    ///
    /// # Errors
    /// As [`inspect`], except for parameter errors.
    pub fn inspect(&self, audio: &Audio, progress: &mut dyn FnMut(Progress)) -> Result<Inspection> {
        audio.check_finite()?;
        let analysis = self.analyze(Input::Memory(audio), progress, None)?;
        let spectrogram = channel_summed_magnitude(&analysis.stft, audio);
        let w = analysis.templates();
        let Fitted {
            h: Stored::Memory(h),
            cost_history,
            iterations,
            converged,
            rank,
            ..
        } = analysis.fitted
        else {
            unreachable!("activations are spilled only to a file given");
        };
        Ok(Inspection {
            nmf: Nmf {
                w,
                h: h.select(Axis(0), &analysis.order),
                cost_history,
                iterations,
                converged,
            },
            components: analysis.components,
            spectrogram,
            sample_rate: audio.sample_rate,
            rank,
            stft: analysis.stft,
            mask_power: self.params.mask_power,
            notes_mode: analysis.notes_mode,
            global: analysis.global,
        })
    }

    /// Factorises `input` (its samples checked) and describes every component; the
    /// activations of a recording of more than `max_frames` frames go to the file `spill` if
    /// given.
    pub(crate) fn analyze(
        &self,
        input: Input<'_>,
        progress: &mut dyn FnMut(Progress),
        spill: Option<PathBuf>,
    ) -> Result<Analysis> {
        let params = &self.params;
        let rate = input.sample_rate();
        let stft_params = if params.scale_frames {
            scaled_stft(&params.stft, rate)
        } else {
            params.stft
        };
        let stft = Stft::new(&stft_params)?;
        check_length(input.len(), stft.n_fft())?;
        let fitted = fit::fit(input, params, (&stft_params, &stft), progress, spill)?;
        let bin_hz = f64::from(rate) / stft.n_fft() as f64;
        let (order, mut components) = describe(&fitted, params, bin_hz);
        let notes_mode = params.notes.is_some();
        let frame_s = stft.hop() as f64 / f64::from(rate);
        let transcribable: Vec<bool> = fitted
            .template_notes
            .iter()
            .map(|n| !notes_mode || n.is_some())
            .collect();
        // The note rows come first, one per semitone.
        let judged = params
            .notes
            .as_ref()
            .filter(|_| params.transcribe.confidence() > 0.0)
            .map(|t| t.range.len());
        let (segments, global) =
            activity::activity(&fitted, &transcribable, judged, frame_s, &params.transcribe)?;
        for (component, &c) in components.iter_mut().zip(&order) {
            component.active = segments[c]
                .iter()
                .map(|s| Activity {
                    start_s: s.start as f64 * frame_s,
                    end_s: s.end as f64 * frame_s,
                    peak: s.peak,
                })
                .collect();
        }
        Ok(Analysis {
            fitted,
            order,
            components,
            global,
            stft,
            sample_rate: rate,
            notes_mode,
            mask_power: params.mask_power,
        })
    }
}

/// An inspection whose activations may be in a file: what [`inspect_file`] writes out.
#[derive(Debug)]
pub(crate) struct Analysis {
    /// The factorisation, components in the order of the fit.
    pub(crate) fitted: Fitted,
    /// The fit's index of each component of `components`.
    pub(crate) order: Vec<usize>,
    /// Every component, as listed.
    pub(crate) components: Vec<Component>,
    /// The loudest activation of the components that can be transcribed.
    pub(crate) global: f32,
    pub(crate) stft: Stft,
    pub(crate) sample_rate: u32,
    pub(crate) notes_mode: bool,
    pub(crate) mask_power: f32,
}

impl Analysis {
    /// The templates, bins × K, in the order of the components.
    pub(crate) fn templates(&self) -> Array2<f32> {
        self.fitted.w.select(Axis(1), &self.order)
    }

    /// The note events, each with the index of its component.
    pub(crate) fn transcription(&self) -> Vec<(usize, NoteEvent)> {
        transcription(&self.components, self.notes_mode, self.global)
    }

    /// The note events sorted by onset, as [`Inspection::notes`].
    pub(crate) fn notes(&self) -> Vec<NoteEvent> {
        sorted_notes(self.transcription())
    }

    /// The time of the centre of frame `t` in seconds.
    pub(crate) fn time_of(&self, t: usize) -> f64 {
        frame_time(&self.stft, self.sample_rate, t)
    }

    /// The frequency of bin `k` in Hz.
    pub(crate) fn freq_of(&self, k: usize) -> f64 {
        k as f64 * (f64::from(self.sample_rate) / self.stft.n_fft() as f64)
    }
}

/// The order in which the components of `fitted` are listed (the fit's index of each) and a
/// description of each, in that order, without its activity: free components by pitch,
/// unpitched ones after them, loudest first.
fn describe(fitted: &Fitted, params: &InspectParams, bin_hz: f64) -> (Vec<usize>, Vec<Component>) {
    let w = &fitted.w;
    let k = w.ncols();
    let pitches: Vec<Option<PitchEstimate>> = (0..k)
        .map(|c| {
            let column = w.column(c).to_vec();
            estimate_pitch(&column, bin_hz, MIN_PITCH_HZ, MAX_PITCH_HZ)
        })
        .collect();
    let energies = fitted.sums.energies(w.view());
    let mut order: Vec<usize> = (0..k).collect();
    if params.notes.is_none() {
        order.sort_by(|&a, &b| match (pitches[a], pitches[b]) {
            (Some(pa), Some(pb)) => pa.f0_hz.total_cmp(&pb.f0_hz),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => energies[b].total_cmp(&energies[a]),
        });
    }
    let total_energy: f64 = energies.iter().sum();
    // Free components take the names `demix separate` gives the same components: source1 for
    // the loudest, and so on.
    let mut separate_names = vec![String::new(); k];
    let learned = learned_names(&params.templates);
    let added_free = params.notes.is_some() || !learned.is_empty();
    if !added_free {
        for source in one_source_per_component(&energies) {
            separate_names[source.components[0]] = source.name;
        }
    }
    let mut free_count = 0;
    let components = order
        .iter()
        .map(|&c| {
            let note = fitted.template_notes[c];
            let id = match note {
                Some(m) => notes::note_name(m.into()),
                None if c < learned.len() => learned[c].clone(),
                None if added_free => {
                    free_count += 1;
                    format!("free{free_count}")
                }
                None => std::mem::take(&mut separate_names[c]),
            };
            Component {
                id,
                note,
                pitch: pitches[c],
                energy_share: if total_energy > 0.0 {
                    energies[c] / total_energy
                } else {
                    0.0
                },
                active: Vec::new(),
            }
        })
        .collect();
    (order, components)
}

/// The ids of the components of learned templates: the source's name and the template's
/// number within it (`piano1`, ..., zero-padded from ten templates on: `piano01`).
fn learned_names(templates: &[crate::sources::Templates]) -> Vec<String> {
    templates
        .iter()
        .flat_map(|t| {
            let width = t.len().to_string().len();
            (1..=t.len()).map(move |i| format!("{}{i:0width$}", t.name))
        })
        .collect()
}
