//! What plays when, at which pitch: NMF templates and activations as data and pictures.
//!
//! [`inspect`] factorises a recording's magnitude spectrogram as the separation does, with
//! either free components or one harmonic template per semitone of a note range
//! ([`NoteTemplates`]), then describes every component: its estimated fundamental and note
//! ([`estimate_pitch`]), its share of the energy, and when it is active. With note templates
//! the activations read as a piano roll, and [`Inspection::notes`] turns them into note
//! events for a MIDI file. [`inspect_file`] writes all of it into a folder: CSV, `.npy`,
//! JSON, PNG charts, and optionally one WAV per component and a MIDI file.

mod charts;
mod export;
mod note_model;
pub mod notes;
mod params;
mod pitch;
mod transcribe;

pub use charts::{
    CHART_HEIGHT, CHART_WIDTH, NOTE_BOX, activations_chart, spectrogram_chart, templates_chart,
};
pub use export::{InspectOutput, InspectReport, OUTPUT_NAMES, inspect_file, midi_apart};
pub use params::{InspectParams, Inspector, NOTES_N_FFT, NoteTemplates, notes_stft, scaled_stft};
pub use pitch::{MIN_EXCESS_FRACTION, MIN_HARMONIC_FRACTION, PitchEstimate, estimate_pitch};
pub use transcribe::{DEFAULT_CONFIDENCE, NOTES_MIN_LEVEL, TranscribeParams};

use ndarray::{Array2, Axis};

use crate::audio::Audio;
use crate::error::Result;
use crate::formats::midi::NoteEvent;
use crate::nmf::{self, CostPoint, Nmf, Progress, RankReport};
use crate::separate::Separation;
use crate::sources::{Source, sources_loudest_first};
use crate::spectral::{Stft, channel_summed_magnitude, check_usable};
use notes::harmonic_templates;

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
            .map(|t| (t * self.stft.hop()) as f64 / f64::from(self.sample_rate))
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
        let mut notes: Vec<NoteEvent> = self.transcription().into_iter().map(|(_, n)| n).collect();
        notes.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s).then(a.pitch.cmp(&b.pitch)));
        notes
    }

    /// The events of [`Self::notes`], each with the component it comes from, in component
    /// order.
    pub(crate) fn transcription(&self) -> Vec<(usize, NoteEvent)> {
        let global = self.global_peak();
        self.components
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c, c.midi_note(self.notes_mode)?)))
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

    /// The loudest activation of the components that can be transcribed.
    fn global_peak(&self) -> f32 {
        global_peak(&self.nmf.h, &self.components, self.notes_mode)
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

fn global_peak(h: &Array2<f32>, components: &[Component], notes_mode: bool) -> f32 {
    h.outer_iter()
        .zip(components)
        .filter(|(_, c)| !notes_mode || c.note.is_some())
        .flat_map(|(row, _)| row.into_iter().copied())
        .fold(0.0, f32::max)
}

/// Factorises `audio` and describes every component; see the [module](self) documentation.
///
/// # Errors
/// [`Error::Param`](crate::Error::Param) for invalid parameters or notes above the audio's
/// Nyquist frequency, [`Error::NonFinite`](crate::Error::NonFinite) for NaN or infinite
/// samples, [`Error::TooShort`](crate::Error::TooShort) for audio shorter than one frame.
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
        inspect_checked(audio, &self.params, progress)
    }
}

/// [`inspect`] with parameters already checked.
fn inspect_checked(
    audio: &Audio,
    params: &InspectParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Inspection> {
    let stft_params = if params.scale_frames {
        scaled_stft(&params.stft, audio.sample_rate)
    } else {
        params.stft
    };
    let stft = Stft::new(&stft_params)?;
    check_usable(audio, stft.n_fft())?;
    let spectrogram = channel_summed_magnitude(&stft, audio);
    let v = spectrogram.t();
    let mut rank = None;
    let (mut nmf, template_notes) = match &params.notes {
        None => {
            for t in &params.templates {
                t.check_compatible(&stft_params, audio.sample_rate)?;
            }
            let mut fit = params.nmf_params();
            if let Some(selection) = &params.rank {
                let report = nmf::select_rank(v, &params.nmf, selection)?;
                fit = report.fit_params(&fit);
                rank = Some(report);
            }
            let nmf = nmf::fit_with_progress(v, &fit, progress)?;
            let k = nmf.w.ncols();
            (nmf, vec![None; k])
        }
        Some(templates) => {
            let w0 = harmonic_templates(
                templates.range,
                audio.sample_rate,
                &stft_params,
                &templates.shape,
            )?;
            let mut names: Vec<Option<u8>> = templates.range.iter().map(Some).collect();
            names.extend(std::iter::repeat_n(None, params.nmf.components()));
            (
                fit_note_templates(v, params, templates, w0, progress)?,
                names,
            )
        }
    };

    let bin_hz = f64::from(audio.sample_rate) / stft.n_fft() as f64;
    let k = nmf.w.ncols();
    let pitches: Vec<Option<PitchEstimate>> = (0..k)
        .map(|c| {
            let column = nmf.w.column(c).to_vec();
            estimate_pitch(&column, bin_hz, MIN_PITCH_HZ, MAX_PITCH_HZ)
        })
        .collect();
    let energies = nmf.component_energies();

    // Free components are listed by pitch, unpitched ones after them, loudest first.
    let order: Vec<usize> = if params.notes.is_some() {
        (0..k).collect()
    } else {
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| match (pitches[a], pitches[b]) {
            (Some(pa), Some(pb)) => pa.f0_hz.total_cmp(&pb.f0_hz),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => energies[b].total_cmp(&energies[a]),
        });
        nmf.w = nmf.w.select(Axis(1), &order);
        nmf.h = nmf.h.select(Axis(0), &order);
        order
    };
    let total_energy: f64 = energies.iter().sum();
    // Free components take the names `demix separate` gives the same components: source1 for
    // the loudest, and so on.
    let mut separate_names = vec![String::new(); k];
    let learned = learned_names(&params.templates);
    let added_free = params.notes.is_some() || !learned.is_empty();
    if !added_free {
        let singles = (0..k).map(|c| vec![c]).collect();
        for source in sources_loudest_first(singles, &energies) {
            separate_names[source.components[0]] = source.name;
        }
    }
    let mut free_count = 0;
    let mut components: Vec<Component> = order
        .iter()
        .map(|&c| {
            let note = template_notes[c];
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

    let notes_mode = params.notes.is_some();
    let frame_s = stft.hop() as f64 / f64::from(audio.sample_rate);
    let global = global_peak(&nmf.h, &components, notes_mode);
    let mut segments: Vec<Vec<transcribe::Segment>> = (0..k)
        .map(|c| transcribe::segments(nmf.h.row(c), global, frame_s, &params.transcribe))
        .collect();
    let least = params.transcribe.confidence();
    if let Some(templates) = &params.notes
        && least > 0.0
    {
        // The note rows come first, one per semitone.
        let n = templates.range.len();
        let notes = nmf.h.slice(ndarray::s![..n, ..]);
        let confidences = note_model::confidences(notes, &segments[..n], frame_s);
        for (row, confidence) in segments.iter_mut().zip(confidences) {
            let mut confidence = confidence.into_iter();
            row.retain(|_| confidence.next().is_some_and(|c| c >= least));
        }
    }
    for (component, segments) in components.iter_mut().zip(segments) {
        component.active = segments
            .into_iter()
            .map(|s| Activity {
                start_s: s.start as f64 * frame_s,
                end_s: s.end as f64 * frame_s,
                peak: s.peak,
            })
            .collect();
    }
    Ok(Inspection {
        nmf,
        components,
        spectrogram,
        sample_rate: audio.sample_rate,
        rank,
        stft,
        mask_power: params.mask_power,
        notes_mode,
    })
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

/// Fits activations to fixed note templates `w0` (plus any free components), then, unless
/// the templates are fixed, adapts templates and activations together.
fn fit_note_templates(
    v: ndarray::ArrayView2<f32>,
    params: &InspectParams,
    templates: &NoteTemplates,
    w0: Array2<f32>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Nmf> {
    let adapt = if templates.fixed {
        0
    } else {
        templates.adapt_iter
    };
    // With restarts, the first fit reports restarts × its iterations.
    let max_iter = params.nmf.restarts() * params.nmf.max_iter() + adapt;
    let mut fixed = params.nmf.clone();
    fixed.initial = None;
    let fixed = fixed.with_fixed_templates(w0);
    let mut reached = 0;
    let first = nmf::fit_with_progress(v, &fixed, &mut |p| {
        reached = p.iteration;
        progress(Progress { max_iter, ..p });
    })?;
    if adapt == 0 {
        return Ok(first);
    }
    let done = first.iterations;
    let mut adapted = params.nmf.clone();
    adapted.components = first.w.ncols();
    adapted.fixed_w = None;
    // It starts from the best first fit (so it is fitted once, whatever `restarts`).
    let adapted = adapted
        .with_initial(first.w.clone(), first.h.clone())
        .with_max_iter(adapt);
    let second = nmf::fit_with_progress(v, &adapted, &mut |p| {
        progress(Progress {
            iteration: reached + p.iteration,
            max_iter: reached + adapt,
            cost: p.cost,
        });
    })?;
    let mut history = first.cost_history;
    history.extend(second.cost_history.iter().skip(1).map(|c| CostPoint {
        iteration: done + c.iteration,
        cost: c.cost,
    }));
    Ok(Nmf {
        w: second.w,
        h: second.h,
        cost_history: history,
        iterations: done + second.iterations,
        converged: first.converged,
    })
}
