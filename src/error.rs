//! The library's error types.
//!
//! [`ParamError`] is returned when parameters are checked, before any work starts; [`Error`] is
//! what the stages return while they run. Messages name the problem but not the input file: the
//! caller knows which file it was working on and adds it (the CLI prints `path: message`).

use std::io;
use std::path::PathBuf;

/// A `Result` whose error is the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which parameter a [`ParamError`] is about, so that a caller can name its own flag or field
/// for it (the CLI maps each to a flag in one place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Param {
    /// The number of NMF components.
    Components,
    /// The STFT frame length.
    NFft,
    /// The memory a computation may use.
    MaxMemory,
    /// The STFT hop.
    Hop,
    /// The divergence (loss) or its β.
    Loss,
    /// The NMF stopping tolerance.
    Tol,
    /// The spectrogram floor.
    Floor,
    /// The L1 penalty on the activations.
    Sparsity,
    /// The temporal-continuity penalty on the activations.
    Smoothness,
    /// The number of NMF restarts.
    Restarts,
    /// The exponent of the multiplicative steps.
    StepExponent,
    /// How often the NMF cost is computed.
    CostEvery,
    /// Given factor matrices (fixed templates, initial W or H, the data).
    Factors,
    /// The exponent of the soft masks.
    MaskPower,
    /// The re-estimations of the spatial covariances.
    SpatialIterations,
    /// The most spectrogram frames fitted at once.
    MaxFrames,
    /// The number of sources to group the components into.
    Sources,
    /// Learned templates (their settings, or their combination with other options).
    Templates,
    /// A source's name.
    SourceName,
    /// The example recordings templates are learned from.
    Examples,
    /// A note or note range.
    Notes,
    /// The decay of harmonic note templates.
    HarmonicDecay,
    /// The onset threshold of transcription.
    OnsetThreshold,
    /// The offset threshold of transcription.
    OffsetThreshold,
    /// The lowest level of a transcribed note.
    MinLevel,
    /// The re-onset factor of transcription.
    Reonset,
    /// The least confidence of a transcribed note.
    NoteConfidence,
    /// The shortest transcribed note.
    MinDuration,
    /// The MIDI file a command writes.
    Midi,
    /// The length of BSS Eval's distortion filters.
    FilterLen,
    /// The window of framewise evaluation, in seconds.
    EvalWindow,
    /// The range of component counts a rank selection tries.
    KRange,
    /// The seeded starts per component count of a rank selection.
    RankStarts,
    /// The fraction of entries a rank selection holds out.
    HeldOut,
    /// The hop of framewise evaluation, in seconds.
    EvalHop,
    /// The length in frames of convolutive templates.
    TemplateFrames,
    /// The semitones learned templates are shifted by each way.
    PitchShifts,
    /// Bands per octave of the fit with templates.
    BandsPerOctave,
    /// The handicaps of components' activations.
    Handicaps,
    /// The handicap of pitch-shifted copies per semitone beyond ±2.
    ShiftPenalty,
}

impl Param {
    /// The parameter's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Param::Components => "components",
            Param::NFft => "n_fft",
            Param::MaxMemory => "max memory",
            Param::Hop | Param::EvalHop => "hop",
            Param::Loss => "beta",
            Param::Tol => "tol",
            Param::Floor => "floor",
            Param::Sparsity => "sparsity",
            Param::Smoothness => "smoothness",
            Param::Restarts => "restarts",
            Param::StepExponent => "step exponent",
            Param::CostEvery => "cost_every",
            Param::Factors => "factors",
            Param::MaskPower => "mask power",
            Param::SpatialIterations => "spatial iterations",
            Param::MaxFrames => "max frames",
            Param::Sources => "sources",
            Param::Templates => "templates",
            Param::SourceName => "source name",
            Param::Examples => "examples",
            Param::Notes => "notes",
            Param::HarmonicDecay => "harmonic decay",
            Param::OnsetThreshold => "onset threshold",
            Param::OffsetThreshold => "offset threshold",
            Param::MinLevel => "minimum level",
            Param::Reonset => "re-onset factor",
            Param::NoteConfidence => "note confidence",
            Param::MinDuration => "minimum duration",
            Param::Midi => "MIDI file",
            Param::FilterLen => "filter length",
            Param::EvalWindow => "window",
            Param::KRange => "range of components",
            Param::RankStarts => "starts",
            Param::HeldOut => "held-out fraction",
            Param::TemplateFrames => "template frames",
            Param::PitchShifts => "pitch shifts",
            Param::BandsPerOctave => "bands per octave",
            Param::Handicaps => "handicaps",
            Param::ShiftPenalty => "shift penalty",
        }
    }
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parameter that is out of range or inconsistent with another.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The number of NMF components is zero.
    #[error("the number of components must be at least 1 (got {0})")]
    NoComponents(usize),
    /// The FFT size is too small to be useful.
    #[error("n_fft must be at least {min} (got {got})")]
    FftTooSmall {
        /// The smallest accepted size.
        min: usize,
        /// The size that was asked for.
        got: usize,
    },
    /// The hop is zero or longer than the frame.
    #[error("hop must be between 1 and n_fft ({n_fft}), got {hop}")]
    HopOutOfRange {
        /// The hop that was asked for.
        hop: usize,
        /// The frame length.
        n_fft: usize,
    },
    /// The hop leaves gaps that overlap-add cannot fill.
    #[error(
        "hop {hop} is too large for a {n_fft}-point {window} window: overlap-add could not \
         reconstruct the signal (use a hop of at most {max_hop})"
    )]
    HopTooLarge {
        /// The hop that was asked for.
        hop: usize,
        /// The frame length.
        n_fft: usize,
        /// The window's name.
        window: &'static str,
        /// The largest hop that still reconstructs reliably.
        max_hop: usize,
    },
    /// A numeric parameter is outside its valid range.
    #[error("{param} must be {expected} (got {got})")]
    OutOfRange {
        /// The parameter.
        param: Param,
        /// The valid range, in words.
        expected: &'static str,
        /// The value that was given.
        got: f64,
    },
    /// A loss name that is neither a known name nor a number.
    #[error("unknown loss '{0}': expected is, kl, euclidean or a beta value such as 0.5")]
    UnknownLoss(String),
    /// Given factor matrices whose shapes do not fit the data or each other.
    #[error("{what} has shape {actual:?}, expected {expected:?}")]
    Shape {
        /// Which matrix.
        what: &'static str,
        /// The shape it should have.
        expected: (usize, usize),
        /// The shape it has.
        actual: (usize, usize),
    },
    /// A given matrix holds negative, NaN or infinite values.
    #[error("{0} must be non-negative and finite")]
    NotNonNegative(&'static str),
    /// A source name that cannot name an output file, or is used twice.
    #[error("source name '{name}' {reason}")]
    SourceName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Options that cannot be used together.
    #[error("{message}")]
    Conflict {
        /// The parameter that cannot be used as given.
        param: Param,
        /// Why, in words.
        message: &'static str,
    },
    /// Templates learned with other STFT settings than the run's.
    #[error("templates '{name}' were learned with {what} {learned}, this run uses {used}")]
    TemplateSettings {
        /// The templates' source name.
        name: String,
        /// Which setting differs.
        what: &'static str,
        /// Its value when the templates were learned.
        learned: String,
        /// Its value now.
        used: String,
    },
    /// A note that is neither a note name nor a MIDI number.
    #[error("'{note}' is not a note: {reason}")]
    BadNote {
        /// The text given.
        note: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A fit that would need more memory than it may use.
    #[error(
        "the factorisation needs about {} for {components} components over {frames} frames \
         of {bins} bins, more than the {} allowed",
        bytes(*needs),
        bytes(*limit)
    )]
    MemoryLimit {
        /// The estimate, in bytes.
        needs: u64,
        /// The limit, in bytes.
        limit: u64,
        /// Components of the fit.
        components: usize,
        /// Frames of the data.
        frames: usize,
        /// Bins of the data.
        bins: usize,
    },
    /// A range of component counts that is not `LOW-HIGH` with `1 <= LOW <= HIGH`.
    #[error("'{0}' is not a range of components LOW-HIGH with 1 <= LOW <= HIGH (e.g. 2-32)")]
    BadRankRange(String),
    /// A range of component counts beyond what the data can hold, or beyond what demix tries.
    #[error("the range of components goes up to {high}, more than the {limit} {what}")]
    RankTooLarge {
        /// The top of the range.
        high: usize,
        /// The most components the data allow.
        limit: usize,
        /// What limits them (`frames of this input`, `components demix tries`).
        what: &'static str,
    },
    /// A note range whose high note is below its low note.
    #[error("'{0}' is not a note range LOW-HIGH with LOW at or below HIGH (e.g. A0-C8)")]
    BadNoteRange(String),
    /// A note whose fundamental is too close to the Nyquist frequency to model.
    #[error(
        "note {note} ({hz:.0} Hz) is too high for this audio, whose Nyquist frequency is \
         {nyquist:.0} Hz"
    )]
    NoteAboveNyquist {
        /// The note's name.
        note: String,
        /// Its fundamental frequency.
        hz: f64,
        /// Half the sample rate.
        nyquist: f64,
    },
}

/// A size in bytes as people read it: `512 B`, `3.2 MiB`, `41.0 GiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

impl ParamError {
    /// The parameter this error is about.
    pub fn param(&self) -> Param {
        match self {
            ParamError::NoComponents(_) => Param::Components,
            ParamError::FftTooSmall { .. } => Param::NFft,
            ParamError::HopOutOfRange { .. } | ParamError::HopTooLarge { .. } => Param::Hop,
            ParamError::OutOfRange { param, .. } | ParamError::Conflict { param, .. } => *param,
            ParamError::UnknownLoss(_) => Param::Loss,
            ParamError::MemoryLimit { .. } => Param::MaxMemory,
            ParamError::BadRankRange(_) | ParamError::RankTooLarge { .. } => Param::KRange,
            ParamError::Shape { .. } | ParamError::NotNonNegative(_) => Param::Factors,
            ParamError::SourceName { .. } => Param::SourceName,
            ParamError::TemplateSettings { .. } => Param::Templates,
            ParamError::BadNote { .. }
            | ParamError::BadNoteRange(_)
            | ParamError::NoteAboveNyquist { .. } => Param::Notes,
        }
    }
}

/// An error while reading, processing or writing audio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Parameters that failed their check.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The input path does not exist.
    #[error("no such file")]
    NotFound,
    /// The input path is a directory where a file was expected.
    #[error("is a directory, not an audio file")]
    IsDirectory,
    /// The input file has no bytes at all.
    #[error("file is empty")]
    EmptyFile,
    /// Reading the input failed at the operating-system level.
    #[error("cannot read: {0}")]
    Read(io::Error),
    /// No enabled demuxer or decoder recognises the data.
    #[error("unsupported or unrecognised audio format ({0})")]
    Unsupported(String),
    /// The data is recognised but malformed.
    #[error("corrupt audio: {0}")]
    Corrupt(String),
    /// The stream ends before the length its header declares.
    #[error("truncated: the header declares {expected} frames but only {decoded} could be decoded")]
    Truncated {
        /// Frames the container promised.
        expected: u64,
        /// Frames that were decoded.
        decoded: u64,
    },
    /// The container holds no audio track, or it has no channels.
    #[error("no audio track")]
    NoAudio,
    /// The audio is shorter than one analysis frame.
    #[error("too short: {frames} samples per channel, at least one frame of {n_fft} is needed")]
    TooShort {
        /// Samples per channel in the input.
        frames: usize,
        /// The frame length that was asked for.
        n_fft: usize,
    },
    /// The audio contains NaN or infinite samples.
    #[error(
        "sample {index} of channel {channel} is {value}: NaN and infinite samples cannot be separated"
    )]
    NonFinite {
        /// Channel index (0-based).
        channel: usize,
        /// Sample index within the channel (0-based).
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// Channels of different lengths were given as one signal.
    #[error("channel {channel} has {len} samples, channel 0 has {expected}")]
    RaggedChannels {
        /// The channel that differs.
        channel: usize,
        /// Its length.
        len: usize,
        /// The length of channel 0.
        expected: usize,
    },
    /// A template file that cannot be used.
    #[error("invalid template file: {0}")]
    Templates(String),
    /// Templates learned with other STFT settings or at another sample rate.
    #[error("templates '{name}' were learned with {what} {learned}, this run uses {used}")]
    TemplateMismatch {
        /// The templates' source name.
        name: String,
        /// Which setting differs.
        what: &'static str,
        /// Its value when the templates were learned.
        learned: String,
        /// Its value now.
        used: String,
    },
    /// Recordings to be pooled have different sample rates.
    #[error("the recordings have different sample rates ({0} Hz and {1} Hz)")]
    SampleRates(u32, u32),
    /// An output folder that already exists would be replaced.
    #[error("output folder {0} already exists")]
    OutputExists(PathBuf),
    /// The output would overwrite the input file.
    #[error("output folder {0} would replace the input file")]
    OutputIsInput(PathBuf),
    /// Creating, writing or renaming an output file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder being written.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Stems that the chosen output format cannot hold (float FLAC, nine channels in FLAC).
    #[error("the stems cannot be written: {0}")]
    OutputFormat(String),
    /// A stem that would pass the 4 GiB limit of a WAV file: refused before any work.
    #[error(
        "each stem would be a WAV file of {:.2} GiB, beyond the 4 GiB a WAV file can hold; \
         write FLAC instead (--flac)", *bytes as f64 / 1_073_741_824.0
    )]
    WavTooLarge {
        /// The size the WAV file would have.
        bytes: u64,
    },
    /// A fit whose activations all vanished: its stems would be silent and not add up to the
    /// input (penalties far too strong for the recording, for example).
    #[error(
        "every activation of the factorisation vanished, so the stems would be silent and not \
         add up to the input; lower the smoothness or sparsity penalty"
    )]
    Degenerate,
    /// References and estimates that cannot be evaluated together.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

impl Error {
    /// Wraps an I/O error from writing `path`.
    pub(crate) fn write(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Write {
            path: path.into(),
            source,
        }
    }
}

/// Which of the signals given to [`crate::eval::evaluate`] an [`EvalError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// One of the references.
    Reference,
    /// One of the estimates.
    Estimate,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Reference => "reference",
            Side::Estimate => "estimate",
        })
    }
}

/// A property every reference and estimate of one evaluation must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// Samples per second.
    SampleRate,
    /// Number of channels.
    Channels,
    /// Samples per channel.
    Length,
}

impl Property {
    /// The value in words: `a sample rate of 44100 Hz`, `2 channels`, `88200 samples per
    /// channel`.
    pub fn describe(self, value: u64) -> String {
        match self {
            Property::SampleRate => format!("a sample rate of {value} Hz"),
            Property::Channels if value == 1 => "1 channel".to_string(),
            Property::Channels => format!("{value} channels"),
            Property::Length => format!("{value} samples per channel"),
        }
    }
}

/// References and estimates that cannot be evaluated together. Signals are numbered from 0 in
/// the order they were given; every reference and estimate is compared with reference 0.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// No references were given.
    #[error("no reference sources to evaluate")]
    NoSources,
    /// Different numbers of references and estimates.
    #[error("{references} references but {estimates} estimates")]
    CountMismatch {
        /// Number of references.
        references: usize,
        /// Number of estimates.
        estimates: usize,
    },
    /// A signal's sample rate, channel count or length differs from reference 0's.
    #[error(
        "{side} {index} has {}, reference 0 has {}",
        property.describe(*actual),
        property.describe(*expected)
    )]
    Mismatch {
        /// Reference or estimate.
        side: Side,
        /// Its index.
        index: usize,
        /// What differs.
        property: Property,
        /// Reference 0's value.
        expected: u64,
        /// This signal's value.
        actual: u64,
    },
    /// A signal whose channels sum to zero at every sample (as an all-zero signal does):
    /// BSS Eval is undefined for it, and mir_eval and museval refuse it too.
    #[error("{side} {index} is silent (every sample is zero); BSS Eval is undefined for it")]
    Silent {
        /// Reference or estimate.
        side: Side,
        /// Its index.
        index: usize,
    },
    /// A NaN or infinite sample.
    #[error("{side} {index}: sample {sample} of channel {channel} is {value}")]
    NonFinite {
        /// Reference or estimate.
        side: Side,
        /// Its index.
        index: usize,
        /// Channel index (0-based).
        channel: usize,
        /// Sample index within the channel (0-based).
        sample: usize,
        /// The offending value.
        value: f32,
    },
    /// Too many sources to try every assignment of estimates to references.
    #[error("{sources} sources are too many to try every assignment (at most {max})")]
    TooManyToPermute {
        /// Number of sources.
        sources: usize,
        /// The most that are permuted.
        max: usize,
    },
    /// The window is shorter than one sample at this sample rate.
    #[error("a window or hop of {seconds} s is shorter than one sample at {sample_rate} Hz")]
    WindowTooShort {
        /// The window or hop in seconds.
        seconds: f64,
        /// The sample rate.
        sample_rate: u32,
    },
    /// The references' correlation matrix stayed singular even with diagonal loading.
    #[error("the distortion filters cannot be computed: the references are linearly dependent")]
    Singular,
}

/// The message of a caught panic, when it carried one (`panic!` with a literal or a format).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}
