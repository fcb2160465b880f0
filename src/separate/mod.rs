//! The separation pipeline: audio → magnitude spectrogram → NMF → soft masks (or the
//! multichannel Wiener filter) → inverse STFT, one signal per source, written as WAV files.
//!
//! [`SeparateParams::check`] turns the settings into a [`Separator`] once; the separator then
//! [analyzes](Separator::analyze) recordings into [`Separation`]s, which render the stems.
//! Several channels share one factorisation: the NMF runs on the sum of the channels'
//! magnitude spectrograms, and each source's masks are applied to the complex STFT of every
//! channel, so each stem keeps the stereo (or multichannel) image of the mixture.

use crate::audio::Audio;
use crate::error::{Param, ParamError, Result};
use crate::nmf::{Loss, NmfParams, Progress, RankParams, available_memory};
use crate::sources::{
    DEFAULT_PITCH_SHIFTS, DEFAULT_SHIFT_PENALTY, MAX_PITCH_SHIFTS, MAX_SHIFT_PENALTY, OTHER,
    Templates, check_source_name, shift_handicaps, with_stacked,
};
use crate::spectral::{Bands, Stft, StftParams};
use coarse::CoarseFit;
pub use coarse::{BAND_ITERATIONS, KEEP_SHARE};

mod analyze;
mod balance;
mod blocks;
mod coarse;
mod output;
mod render;
mod stream;
mod wiener;

pub(crate) use blocks::{BlockSink, Blocks};
pub(crate) use output::write_stems;
pub use output::{OutputOptions, StemReport, TrackReport, separate_file};
pub use render::{Separation, StemSink};
pub(crate) use stream::{Activations, Gathering, Input, Scan, Stored};

/// Settings of a separation: STFT, NMF and mask.
#[derive(Debug, Clone, PartialEq)]
pub struct SeparateParams {
    /// The STFT front end (default: 2048-point Hann frames, hop 512).
    pub stft: StftParams,
    /// The factorisation (default: 4 components, KL, 200 iterations, NNDSVDA).
    pub nmf: NmfParams,
    /// Exponent p of the soft masks `S_s^p / Σ S_r^p` (default `None`: when the multichannel
    /// Wiener filter renders, whose source powers start from these masks,
    /// [`SPATIAL_MASK_POWER`] for learned templates and [`BLIND_SPATIAL_MASK_POWER`] for
    /// sources grouped blind; [`DEFAULT_MASK_POWER`] when the masks render).
    pub mask_power: Option<f32>,
    /// Learned templates of named sources, held fixed (default none). With templates, the
    /// NMF's free components (`nmf.components()`, may be 0) are rendered together as `other`.
    pub templates: Vec<Templates>,
    /// Beside every single-frame learned template, copies of it shifted by ±1 … ±N semitones,
    /// so that notes the training recordings did not play are still explained by their own
    /// source (default [`DEFAULT_PITCH_SHIFTS`]; 0 uses the templates as learned; at most
    /// [`MAX_PITCH_SHIFTS`]). See [`Templates::with_pitch_shifts`].
    pub pitch_shifts: u32,
    /// The handicap of a pitch-shifted copy per semitone beyond ±[`FREE_SHIFTS`](crate::sources::FREE_SHIFTS)
    /// (default [`DEFAULT_SHIFT_PENALTY`]; 0 trusts every copy as the learned templates; at
    /// most [`MAX_SHIFT_PENALTY`]). See [`shift_handicaps`] and
    /// [`NmfParams::with_handicaps`]: [`Self::check`] sets the fit's handicaps from it when it
    /// makes copies, in place of any that `nmf` holds.
    pub shift_penalty: f32,
    /// Begin the fit of the activations on frequency bands this many per octave, each band
    /// weighed as the bins it sums, for its first [`BAND_ITERATIONS`]; then drop the templates
    /// whose share of the model stays below [`KEEP_SHARE`] in every frame and fit the rest on
    /// every bin (a fit of no more iterations runs on every bin throughout). Faster than every
    /// bin throughout (most of the pitch-shifted copies are dropped) and as good on the
    /// quality corpus; the masks use the whole templates, and the fit's costs are of every
    /// bin. Only with learned
    /// templates alone (no free components, no penalties). Default `None`:
    /// [`DEFAULT_BANDS_PER_OCTAVE`] where the fit allows bands, every bin throughout where it
    /// does not; `Some(0)`: every bin throughout; at most [`MAX_BANDS_PER_OCTAVE`]. See
    /// [`Bands`] and docs/quality.md, "Bands, then every bin".
    pub bands_per_octave: Option<u32>,
    /// Group the free components into this many sources by what they sound like (default
    /// none: one source per component).
    pub groups: Option<usize>,
    /// Render multichannel input with the multichannel Wiener filter when every learned
    /// source brings a spatial covariance for its channel count, or the sources are grouped
    /// blind (default on).
    pub spatial: bool,
    /// Times the spatial covariances are re-estimated on the mixture (default 1).
    pub spatial_iterations: usize,
    /// Most spectrogram frames fitted at once (default 32768: 6.3 min at 44.1 kHz with hop 512).
    /// Longer recordings learn their templates on an evenly spaced sample of this many frames
    /// and solve the activations block by block, so memory does not grow with their length.
    pub max_frames: usize,
    /// Choose the number of free components per recording with this rank selection instead
    /// of `nmf`'s (`-k auto`; default none). Not with templates; with `groups`, K is at least
    /// the number of groups.
    pub rank: Option<RankParams>,
}

impl Default for SeparateParams {
    fn default() -> Self {
        SeparateParams {
            stft: StftParams::default(),
            nmf: NmfParams::default(),
            mask_power: None,
            templates: Vec::new(),
            pitch_shifts: DEFAULT_PITCH_SHIFTS,
            shift_penalty: DEFAULT_SHIFT_PENALTY,
            bands_per_octave: None,
            groups: None,
            spatial: true,
            spatial_iterations: 1,
            max_frames: 32_768,
            rank: None,
        }
    }
}

/// The most iterations `demix separate` gives a fit with learned templates held fixed, when
/// `--iter` does not say: on the quality corpus's tuning split (templates only, no free
/// components), 100 separated as well as 200 (median SDR 9.35 against 9.38 dB, median change
/// per source -0.01 dB) in about half the time. [`NmfParams`]'s own default is 200. With
/// Itakura-Saito or KL, [`template_fit`] takes [`TEMPLATE_ITERATIONS_IS`] or
/// [`TEMPLATE_ITERATIONS_KL`] longer steps instead.
pub const TEMPLATE_ITERATIONS: usize = 100;

/// [`TEMPLATE_ITERATIONS`] for Itakura-Saito (every mix without a percussive source), whose
/// steps [`template_fit`] takes with exponent [`TEMPLATE_STEP_EXPONENT`]. On the quality
/// corpus's tuning split (its 28 songs without drums, 68 sources, the same templates) 35
/// steps of 1.5 separated as well as the 50 of exponent 1 taken before (median change per
/// source +0.002 dB, every family within 0.02 dB); 35 steps of 1 lost 0.02 dB (bowed strings
/// 0.10) and 30 of 1.5 lost 0.01. Earlier, 50 of exponent 1 had matched 100 of 1/2, where 50
/// of 1/2 lost 0.07 dB.
pub const TEMPLATE_ITERATIONS_IS: usize = 35;

/// [`TEMPLATE_ITERATIONS`] for KL (every mix with a percussive source), steps of exponent
/// [`TEMPLATE_STEP_EXPONENT`]: on the tuning split's 12 songs with drums (40 sources, the
/// same templates) 70 such steps separated as well as 100 of exponent 1 (median change per
/// source 0.000 dB, every family within 0.01 dB), where 50 of 1.5 lost 0.005 (the leads 0.07)
/// and 50 of 1 lost 0.03.
pub const TEMPLATE_ITERATIONS_KL: usize = 70;

/// The exponent of [`template_fit`]'s Itakura-Saito and KL steps `(num / den)^γ`: past the 1 of
/// the heuristic Itakura-Saito update and of KL's own, for a cost that falls in fewer steps.
/// Steps of 1.75 were as good on the tuning split (30 of them for Itakura-Saito, 60 for
/// KL), but steps of 2 make the cost rise at once on the supervised benchmark's mix and on a
/// song with drums, so 1.5 keeps a margin.
pub const TEMPLATE_STEP_EXPONENT: f32 = 1.5;

/// `nmf` as `demix separate` fits learned templates when not told otherwise: Itakura-Saito
/// for [`TEMPLATE_ITERATIONS_IS`] and KL for [`TEMPLATE_ITERATIONS_KL`], both with steps of
/// exponent [`TEMPLATE_STEP_EXPONENT`] (see [`NmfParams::with_step_exponent`]); another loss
/// for [`TEMPLATE_ITERATIONS`] with its own steps. With a sparsity or smoothness penalty the
/// steps are the penalty's own, whatever the exponent.
///
/// ```
/// use demix::nmf::{Loss, NmfParams};
/// use demix::separate::template_fit;
/// let is = template_fit(NmfParams::new(0).with_loss(Loss::ItakuraSaito));
/// assert_eq!((is.max_iter(), is.step_exponent()), (35, 1.5));
/// let kl = template_fit(NmfParams::new(0).with_loss(Loss::KullbackLeibler));
/// assert_eq!((kl.max_iter(), kl.step_exponent()), (70, 1.5));
/// let euclidean = template_fit(NmfParams::new(0).with_loss(Loss::Euclidean));
/// assert_eq!((euclidean.max_iter(), euclidean.step_exponent()), (100, 1.0));
/// ```
pub fn template_fit(nmf: NmfParams) -> NmfParams {
    let longer = Some(TEMPLATE_STEP_EXPONENT);
    match nmf.loss() {
        Loss::ItakuraSaito => nmf
            .with_max_iter(TEMPLATE_ITERATIONS_IS)
            .with_step_exponent(longer),
        Loss::KullbackLeibler => nmf
            .with_max_iter(TEMPLATE_ITERATIONS_KL)
            .with_step_exponent(longer),
        _ => nmf.with_max_iter(TEMPLATE_ITERATIONS),
    }
}

/// Bands per octave of the first iterations of a fit of learned templates alone when
/// [`SeparateParams::bands_per_octave`] does not say (see there). Chosen for speed at the
/// third stop of 2026-12-07, when the whole fit ran on bands; since the fit ends on every bin,
/// the bands decide which templates it keeps and where its iterations on every bin start.
pub const DEFAULT_BANDS_PER_OCTAVE: u32 = 48;

/// Most bands per octave: at 1200 (a cent), two bins make a band only from bin 3462 on
/// (18.6 kHz at 44.1 kHz with 8192-point frames).
pub const MAX_BANDS_PER_OCTAVE: u32 = 1200;

/// Most re-estimations of the spatial covariances (each is one pass over the recording).
const MAX_SPATIAL_ITERATIONS: usize = 20;

/// The default exponent of the soft masks when they render the stems: the usual Wiener mask.
pub const DEFAULT_MASK_POWER: f32 = 2.0;

/// The default exponent of the masks whose source powers start the multichannel Wiener
/// filter with learned templates, chosen on the quality corpus's 80 tuning songs
/// (docs/quality.md, "The masks that start the spatial filter"): softer masks than the
/// masks' own 2 leave more of the separation to the spatial model, but 0.5 left too much.
pub const SPATIAL_MASK_POWER: f32 = 0.75;

/// [`SPATIAL_MASK_POWER`] for sources grouped blind, whose filter starts without spatial
/// covariances (the identity) and learns them on the mixture: chosen on the tuning split
/// (0.75 lost 0.13 dB per source on its first 40 songs).
pub const BLIND_SPATIAL_MASK_POWER: f32 = 0.5;

impl SeparateParams {
    /// Checks every part once and plans the work: the STFT, the templates with their
    /// pitch-shifted copies, stacked, and the NMF parameters that every recording separated
    /// with the result shares.
    ///
    /// # Errors
    /// The first [`ParamError`] found.
    pub fn check(&self) -> Result<Separator, ParamError> {
        let stft = Stft::new(&self.stft)?;
        // Before the templates are stacked: they must share this run's STFT settings.
        for t in &self.templates {
            t.check_stft(&self.stft)?;
        }
        if self.pitch_shifts > MAX_PITCH_SHIFTS {
            return Err(ParamError::OutOfRange {
                param: Param::PitchShifts,
                expected: "at most 6 semitones",
                got: f64::from(self.pitch_shifts),
            });
        }
        if !(self.shift_penalty.is_finite()
            && (0.0..=MAX_SHIFT_PENALTY).contains(&self.shift_penalty))
        {
            return Err(ParamError::OutOfRange {
                param: Param::ShiftPenalty,
                expected: "between 0 and 10",
                got: f64::from(self.shift_penalty),
            });
        }
        self.check_bands()?;
        self.check_copies_fit()?;
        let handicaps = shift_handicaps(&self.templates, self.pitch_shifts, self.shift_penalty);
        let mut params = self.clone();
        params.templates = (params.templates.into_iter())
            .map(|t| t.with_pitch_shifts(self.pitch_shifts))
            .collect();
        // The copies are made: checking these parameters again must not copy the copies.
        params.pitch_shifts = 0;
        params.bands_per_octave = Some(self.bands());
        if self.pitch_shifts > 0 {
            // In the checked parameters' fit, so that checking them again (no copies left to
            // make) keeps them; the free components (`other`) come after the templates,
            // unhandicapped.
            let free = std::iter::repeat_n(0.0, params.nmf.free_columns());
            params.nmf.handicaps = (handicaps.iter().any(|&c| c > 0.0))
                .then(|| handicaps.into_iter().chain(free).collect());
        }
        let nmf = params.nmf_params();
        if let Some(rank) = &self.rank {
            if !self.templates.is_empty() {
                return Err(ParamError::Conflict {
                    param: Param::Components,
                    message: "-k auto (a rank selection) cannot be combined with learned templates",
                });
            }
            rank.check_with(&nmf)?;
        } else {
            nmf.check()?;
        }
        if self.nmf.frames() > 1 {
            return Err(ParamError::Conflict {
                param: Param::TemplateFrames,
                message: "free components of several frames cannot be rendered as sources; \
                          learn convolutive templates instead",
            });
        }
        if self.max_frames < 256 {
            return Err(ParamError::OutOfRange {
                param: Param::MaxFrames,
                expected: "at least 256",
                got: self.max_frames as f64,
            });
        }
        if let Some(p) = self.mask_power
            && !(p.is_finite() && p > 0.0)
        {
            return Err(ParamError::OutOfRange {
                param: Param::MaskPower,
                expected: "a finite number above 0",
                got: f64::from(p),
            });
        }
        if self.spatial_iterations > MAX_SPATIAL_ITERATIONS {
            return Err(ParamError::OutOfRange {
                param: Param::SpatialIterations,
                expected: "at most 20",
                got: self.spatial_iterations as f64,
            });
        }
        if let Some(groups) = self.groups {
            if !self.templates.is_empty() {
                return Err(ParamError::Conflict {
                    param: Param::Sources,
                    message: "grouping into sources cannot be combined with learned templates",
                });
            }
            // With a rank selection, K is chosen at least `groups`, at most the range's top.
            let most = match &self.rank {
                Some(rank) => rank.range().high(),
                None => self.nmf.components(),
            };
            if groups == 0 || groups > most {
                return Err(ParamError::OutOfRange {
                    param: Param::Sources,
                    expected: "between 1 and the number of components",
                    got: groups as f64,
                });
            }
        }
        let mut names: Vec<&str> = self.templates.iter().map(|t| t.name.as_str()).collect();
        if !self.templates.is_empty() && self.nmf.components() > 0 {
            names.push(OTHER);
        }
        for (i, name) in names.iter().enumerate() {
            check_source_name(name)?;
            if names[..i].contains(name) {
                return Err(ParamError::SourceName {
                    name: name.to_string(),
                    reason: "is used for two sources",
                });
            }
        }
        // `check_bands` made sure that bands fit templates alone.
        let coarse = (self.bands() > 0).then(|| {
            CoarseFit::new(
                Bands::per_octave(stft.n_bins(), self.bands()),
                &params.templates,
            )
        });
        Ok(Separator {
            params,
            stft,
            nmf,
            coarse,
        })
    }

    /// Refuses more than [`MAX_BANDS_PER_OCTAVE`] bands per octave, and bands where the fit
    /// is not of learned templates alone or has penalties (whose steps are not weighed by
    /// band).
    fn check_bands(&self) -> Result<(), ParamError> {
        let Some(bands_per_octave) = self.bands_per_octave.filter(|&n| n > 0) else {
            return Ok(());
        };
        let conflict = |message| {
            Err(ParamError::Conflict {
                param: Param::BandsPerOctave,
                message,
            })
        };
        if bands_per_octave > MAX_BANDS_PER_OCTAVE {
            return Err(ParamError::OutOfRange {
                param: Param::BandsPerOctave,
                expected: "at most 1200",
                got: f64::from(bands_per_octave),
            });
        }
        if self.templates.is_empty() || self.nmf.components() > 0 {
            return conflict("bands need learned templates and no free components");
        }
        if self.nmf.sparsity() > 0.0 || self.nmf.smoothness() > 0.0 {
            return conflict("bands cannot be combined with --sparsity or --smoothness");
        }
        Ok(())
    }

    /// The bands per octave the fit uses (0: every bin): as given, or by default
    /// [`DEFAULT_BANDS_PER_OCTAVE`] where the fit is of learned templates alone without
    /// penalties, every bin elsewhere.
    pub fn bands(&self) -> u32 {
        self.bands_per_octave.unwrap_or_else(|| {
            let templates_alone = !self.templates.is_empty() && self.nmf.components() == 0;
            let penalties = self.nmf.sparsity() > 0.0 || self.nmf.smoothness() > 0.0;
            if templates_alone && !penalties {
                DEFAULT_BANDS_PER_OCTAVE
            } else {
                0
            }
        })
    }

    /// Refuses pitch-shifted copies whose templates (`w`, `w_kl` and their stacked copy)
    /// would not fit in the memory the fit may use, before they are made.
    fn check_copies_fit(&self) -> Result<(), ParamError> {
        if self.pitch_shifts == 0 {
            return Ok(());
        }
        let copies = 2 * u64::from(self.pitch_shifts) + 1;
        let bytes = (self.templates.iter())
            .map(|t| {
                let columns = t.len() as u64 * if t.frames > 1 { 1 } else { copies };
                // W and W_kl with their copies, and the stack of every source's.
                (t.w.nrows() as u64)
                    .saturating_mul(columns)
                    .saturating_mul(12)
            })
            .fold(0u64, u64::saturating_add);
        match self.nmf.max_memory().or_else(available_memory) {
            Some(limit) if bytes > limit => Err(ParamError::OutOfRange {
                param: Param::PitchShifts,
                expected: "fewer copies: the templates' copies need more than the memory allowed",
                got: f64::from(self.pitch_shifts),
            }),
            _ => Ok(()),
        }
    }

    /// The NMF parameters with the learned templates, if any, as fixed templates.
    fn nmf_params(&self) -> NmfParams {
        if self.templates.is_empty() {
            self.nmf.clone()
        } else {
            with_stacked(self.nmf.clone(), &self.templates)
        }
    }
}

/// Settings checked once and planned: what separates recordings, cheap to clone for workers.
///
/// Made by [`SeparateParams::check`].
#[derive(Debug, Clone)]
pub struct Separator {
    params: SeparateParams,
    stft: Stft,
    /// The NMF parameters, with the learned templates stacked as fixed templates.
    nmf: NmfParams,
    /// The bands the fit begins on and the sources' columns, if it does not run on every bin
    /// throughout.
    coarse: Option<CoarseFit>,
}

impl Separator {
    /// The parameters this separator was checked from, its templates with their
    /// pitch-shifted copies already made (and `pitch_shifts` therefore 0), the copies'
    /// handicaps in `nmf`, and `bands_per_octave` as the fit uses it.
    pub fn params(&self) -> &SeparateParams {
        &self.params
    }

    /// The planned STFT.
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// Separates `audio` in memory, as [`separate`].
    ///
    /// # Errors
    /// As [`Separator::analyze`].
    pub fn separate(&self, audio: &Audio) -> Result<Vec<Audio>> {
        self.analyze(audio, &mut |_| {})?.render_to_memory(audio)
    }
}

/// Fits the factorisation of `audio` and names its sources: [`SeparateParams::check`], then
/// [`Separator::analyze`].
///
/// # Errors
/// [`Error::Param`](crate::Error::Param) for invalid parameters, and those of
/// [`Separator::analyze`].
pub fn analyze(
    audio: &Audio,
    params: &SeparateParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Separation> {
    params.check()?.analyze(audio, progress)
}

/// Separates `audio` in memory: one [`Audio`] per source, loudest first, each with the
/// input's length, sample rate and channels. The sources add up to the input.
///
/// # Errors
/// As [`analyze`], and [`Error::Param`](crate::Error::Param) for invalid parameters.
///
/// ```
/// use demix::audio::Audio;
/// use demix::nmf::NmfParams;
/// use demix::separate::{separate, SeparateParams};
/// // A low tone for the first second, then a high one, at 8 kHz.
/// let signal: Vec<f32> = (0..16000)
///     .map(|i| {
///         let t = i as f32 / 8000.0;
///         let f = if i < 8000 { 220.0 } else { 880.0 };
///         0.5 * (2.0 * std::f32::consts::PI * f * t).sin()
///     })
///     .collect();
/// let mix = Audio::new(8000, vec![signal.clone()])?;
/// let params = SeparateParams { nmf: NmfParams::new(2), ..Default::default() };
/// let stems = separate(&mix, &params)?;
/// assert_eq!(stems.len(), 2);
/// let sum: Vec<f32> = (0..16000).map(|i| stems[0].channels[0][i] + stems[1].channels[0][i]).collect();
/// assert!(sum.iter().zip(&signal).all(|(a, b)| (a - b).abs() < 1e-4));
/// # Ok::<(), demix::Error>(())
/// ```
pub fn separate(audio: &Audio, params: &SeparateParams) -> Result<Vec<Audio>> {
    params.check()?.separate(audio)
}
