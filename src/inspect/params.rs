//! The settings of an inspection, checked once into an [`Inspector`].

use ndarray::Array2;

use super::TranscribeParams;
use super::notes::{HarmonicShape, NoteRange};
use crate::error::{Param, ParamError};
use crate::nmf::{NmfParams, RankParams};
use crate::sources::Templates;
use crate::spectral::StftParams;

/// Frame length of note templates by default: 4096 points resolve neighbouring semitones
/// down to the second octave at 44.1 kHz (on the corpus's tuning split, onset F 0.70 against
/// 0.52 with 2048 points and 0.43 with 8192, with the thresholds of the time).
pub const NOTES_N_FFT: usize = 4096;

/// The STFT of note templates by default: [`NOTES_N_FFT`]-point frames and their default hop.
pub fn notes_stft() -> StftParams {
    StftParams::new(NOTES_N_FFT)
}

/// `stft` (meant for 44.1 kHz) scaled to `sample_rate`: frame length and hop times
/// `sample_rate / 44100`, each rounded to a power of two.
///
/// ```
/// use demix::inspect::{notes_stft, scaled_stft};
/// assert_eq!(scaled_stft(&notes_stft(), 44_100).n_fft(), 4096);
/// assert_eq!(scaled_stft(&notes_stft(), 22_050).n_fft(), 2048);
/// assert_eq!(scaled_stft(&notes_stft(), 96_000).hop(), 2048);
/// ```
pub fn scaled_stft(stft: &StftParams, sample_rate: u32) -> StftParams {
    let ratio = f64::from(sample_rate) / 44_100.0;
    let scale = |n: usize| {
        let exponent = (n as f64 * ratio).max(1.0).log2().round().clamp(0.0, 30.0);
        1usize << (exponent as u32)
    };
    let n_fft = scale(stft.n_fft()).clamp(StftParams::MIN_N_FFT, StftParams::MAX_N_FFT);
    StftParams::new(n_fft)
        .with_hop(scale(stft.hop()).clamp(1, n_fft))
        .with_window(stft.window())
}

/// Iterations that adapt note templates and activations together after the fit with the
/// templates fixed. Chosen on the quality corpus's tuning split: with 30 the templates of dense
/// piano pieces drifted (a note's template took up another's high partials or an octave's
/// comb) and the worst piece fell to onset F 0.68; with 10 it is 0.85, the mean F over the 24
/// pieces 0.883 against 0.872 (docs/quality.md, "Shorter adaptation").
pub const ADAPT_ITERATIONS: usize = 10;

/// One harmonic template per semitone of a note range, instead of free components.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteTemplates {
    /// The notes, one template each.
    pub range: NoteRange,
    /// Hold the templates fixed and fit only the activations (default false: fit the
    /// activations with the templates fixed, then adapt both for [`Self::adapt_iter`]
    /// iterations, which keeps each template's zeros and so its harmonic comb).
    pub fixed: bool,
    /// How the partials are shaped (default [`HarmonicShape::default`]).
    pub shape: HarmonicShape,
    /// Iterations of adaptation after the fit with fixed templates (default
    /// [`ADAPT_ITERATIONS`]).
    pub adapt_iter: usize,
    /// Templates learned from recordings of the instrument's notes
    /// ([`learn_notes`](super::learn_notes)), one per note of `range`, to start from instead
    /// of harmonic combs (default none; `shape` then does not apply). The inspection must use
    /// the frames they were learned with.
    pub learned: Option<Templates>,
}

impl NoteTemplates {
    /// Adapted templates for `range` with the default shape.
    pub fn new(range: NoteRange) -> NoteTemplates {
        NoteTemplates {
            range,
            fixed: false,
            shape: HarmonicShape::default(),
            adapt_iter: ADAPT_ITERATIONS,
            learned: None,
        }
    }

    /// Adapted templates starting from `learned`, note templates learned by
    /// [`learn_notes`](super::learn_notes) (whose [`Templates::notes`] give the range).
    ///
    /// # Errors
    /// [`ParamError::Conflict`] for templates without notes.
    pub fn learned(learned: Templates) -> Result<NoteTemplates, ParamError> {
        let range = match learned.notes.as_deref() {
            Some([low, .., high]) => NoteRange::new(*low, *high)?,
            Some(&[one]) => NoteRange::new(one, one)?,
            _ => {
                return Err(ParamError::Conflict {
                    param: Param::Templates,
                    message: "these templates were not learned one per note (demix learn --notes)",
                });
            }
        };
        Ok(NoteTemplates {
            learned: Some(learned),
            ..NoteTemplates::new(range)
        })
    }

    /// Holds the templates fixed (default false).
    pub fn with_fixed(mut self, fixed: bool) -> Self {
        self.fixed = fixed;
        self
    }
}

/// Settings of an inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectParams {
    /// The STFT front end (default: 2048-point Hann frames, hop 512).
    pub stft: StftParams,
    /// The factorisation (default: 4 components, KL, 200 iterations, NNDSVDA). With note
    /// templates, its components are free components added to the notes (usually 0), its
    /// fixed templates and initial factors are replaced, and its restarts repeat the fit with
    /// fixed templates (the adaptation then starts once from the best).
    pub nmf: NmfParams,
    /// Note templates instead of free components (default none).
    pub notes: Option<NoteTemplates>,
    /// Exponent of the soft masks of the per-component audio (default
    /// [`DEFAULT_MASK_POWER`](crate::separate::DEFAULT_MASK_POWER)).
    pub mask_power: f32,
    /// Thresholds that decide when components are active and which notes they play.
    pub transcribe: TranscribeParams,
    /// Learned templates held fixed, one source each, instead of free components (default
    /// none); `nmf`'s components are then free components added to them. Each template is a
    /// component, pitched by [`estimate_pitch`](super::estimate_pitch), so recordings of an
    /// instrument's notes, learned with `demix learn`, transcribe that instrument.
    pub templates: Vec<Templates>,
    /// Scale the frames to each recording's sample rate: `stft` is then for 44.1 kHz, and a
    /// recording at rate `r` gets its frame length and hop times `r / 44100`, rounded to
    /// powers of two (default false; true for note templates, whose frames then last about
    /// 93 ms at any rate).
    pub scale_frames: bool,
    /// Most spectrogram frames fitted at once (default 32768: 6.3 min at 44.1 kHz with hop
    /// 512, 12.7 min with the note templates' hop of 1024). Longer recordings fit their
    /// templates on an evenly spaced sample of this many frames and solve the activations
    /// block by block with the templates fixed, so that memory does not grow with their
    /// length; [`inspect_file`](super::inspect_file) then keeps the activations in a file.
    pub max_frames: usize,
    /// Choose the number of free components per recording with this rank selection, then
    /// fit that many (`-k auto`; default none: `nmf`'s number). Not with note templates or
    /// learned templates. For a recording longer than `max_frames` frames, K is chosen on
    /// the sample of frames its templates are fitted on.
    pub rank: Option<RankParams>,
}

impl Default for InspectParams {
    fn default() -> Self {
        InspectParams {
            stft: StftParams::default(),
            nmf: NmfParams::new(4),
            notes: None,
            mask_power: crate::separate::DEFAULT_MASK_POWER,
            transcribe: TranscribeParams::default(),
            templates: Vec::new(),
            scale_frames: false,
            max_frames: 32_768,
            rank: None,
        }
    }
}

impl InspectParams {
    /// `k` free components, everything else default.
    pub fn free(k: usize) -> InspectParams {
        InspectParams {
            nmf: NmfParams::new(k),
            ..Default::default()
        }
    }

    /// One adapted harmonic template per note of `range` and no free components, on
    /// [`notes_stft`] frames, with [`TranscribeParams::for_notes`].
    pub fn notes(range: NoteRange) -> InspectParams {
        InspectParams {
            stft: notes_stft(),
            nmf: NmfParams::new(0),
            notes: Some(NoteTemplates::new(range)),
            transcribe: TranscribeParams::for_notes(),
            scale_frames: true,
            ..Default::default()
        }
    }

    /// Note templates learned by [`learn_notes`](super::learn_notes) (see
    /// [`NoteTemplates::learned`]), on the frames they were learned with, transcribed as
    /// [`Self::notes`] transcribes.
    ///
    /// # Errors
    /// As [`NoteTemplates::learned`].
    pub fn learned_notes(learned: Templates) -> Result<InspectParams, ParamError> {
        Ok(InspectParams {
            stft: learned.stft_params(),
            nmf: NmfParams::new(0),
            notes: Some(NoteTemplates::learned(learned)?),
            transcribe: TranscribeParams::for_notes(),
            ..Default::default()
        })
    }

    /// The learned `templates` held fixed, on the frames they were learned with, fitted with
    /// their loss, and no free components.
    pub fn sources(templates: Vec<Templates>) -> InspectParams {
        let mut nmf = NmfParams::new(0);
        if let Some(first) = templates.first() {
            nmf = nmf.with_loss(first.loss);
        }
        InspectParams {
            stft: templates
                .first()
                .map_or_else(StftParams::default, Templates::stft_params),
            nmf,
            templates,
            ..Default::default()
        }
    }

    /// The NMF parameters of the fit: the learned templates, if any, held fixed.
    pub(super) fn nmf_params(&self) -> NmfParams {
        if self.templates.is_empty() {
            self.nmf.clone()
        } else {
            self.nmf
                .clone()
                .with_fixed_templates(crate::sources::stack(&self.templates))
        }
    }

    /// Checks every part once, into the [`Inspector`] that inspects recordings with them.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check(&self) -> Result<Inspector, ParamError> {
        self.stft.check()?;
        if self.nmf.frames() > 1 {
            return Err(ParamError::Conflict {
                param: Param::TemplateFrames,
                message: "inspect fits components of one frame",
            });
        }
        if !self.templates.is_empty() {
            if self.notes.is_some() {
                return Err(ParamError::Conflict {
                    param: Param::Templates,
                    message: "learned templates cannot be combined with note templates",
                });
            }
            if self.scale_frames {
                return Err(ParamError::Conflict {
                    param: Param::Templates,
                    message: "learned templates keep the frames they were learned with",
                });
            }
            if self.templates.iter().any(|t| t.frames > 1) {
                return Err(ParamError::Conflict {
                    param: Param::Templates,
                    message: "inspect takes templates of one frame; these are convolutive \
                              (learned from a percussive recording, or with --frames above 1), \
                              which only separate uses",
                });
            }
            let mut names = Vec::new();
            for t in &self.templates {
                t.check_stft(&self.stft)?;
                if names.contains(&&t.name) {
                    return Err(ParamError::SourceName {
                        name: t.name.clone(),
                        reason: "is used for two sources",
                    });
                }
                names.push(&t.name);
            }
        }
        match (&self.notes, &self.rank) {
            (None, None) => self.nmf_params().check()?,
            (None, Some(rank)) if self.templates.is_empty() => rank.check_with(&self.nmf)?,
            (_, Some(_)) => {
                return Err(ParamError::Conflict {
                    param: Param::Components,
                    message: "-k auto (a rank selection) chooses free components only; it \
                              cannot be combined with note templates or learned templates",
                });
            }
            // Zero free components are fine here: the notes are components too.
            (Some(notes), None) => {
                notes.shape.check()?;
                if let Some(learned) = &notes.learned {
                    self.check_learned_notes(learned, notes.range)?;
                }
                self.nmf
                    .clone()
                    .with_fixed_templates(Array2::zeros((1, 1)))
                    .check()?
            }
        }
        self.transcribe.check()?;
        if self.max_frames < 256 {
            return Err(ParamError::OutOfRange {
                param: Param::MaxFrames,
                expected: "at least 256",
                got: self.max_frames as f64,
            });
        }
        if !(self.mask_power.is_finite() && self.mask_power > 0.0) {
            return Err(ParamError::OutOfRange {
                param: Param::MaskPower,
                expected: "a finite number above 0",
                got: f64::from(self.mask_power),
            });
        }
        Ok(Inspector {
            params: self.clone(),
        })
    }

    /// Refuses learned note templates that are not one per note of `range` on these frames.
    fn check_learned_notes(&self, learned: &Templates, range: NoteRange) -> Result<(), ParamError> {
        let conflict = |message| ParamError::Conflict {
            param: Param::Templates,
            message,
        };
        if self.scale_frames {
            return Err(conflict(
                "learned templates keep the frames they were learned with",
            ));
        }
        learned.check_stft(&self.stft)?;
        let one_per_note = learned.frames == 1
            && learned.len() == range.len()
            && learned
                .notes
                .as_ref()
                .is_some_and(|n| n.iter().copied().eq(range.iter()));
        if !one_per_note {
            return Err(conflict(
                "the learned note templates are not one per note of the range",
            ));
        }
        Ok(())
    }
}

/// Inspection parameters that passed [`InspectParams::check`]: cheap to clone for workers.
#[derive(Debug, Clone)]
pub struct Inspector {
    pub(super) params: InspectParams,
}

impl Inspector {
    /// The parameters this inspector was checked from.
    pub fn params(&self) -> &InspectParams {
        &self.params
    }
}
