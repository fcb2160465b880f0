//! Learned templates: the spectral templates of one source, fitted to isolated recordings of it
//! with the settings needed to use them again (saved and loaded by the `file` module).

use ndarray::{Array2, Array3, ArrayView2, Axis, concatenate, s};
use realfft::num_complex::Complex32;

use super::percussion::Percussion;
use crate::audio::Audio;
use crate::error::{Error, Param, ParamError, Result};
use crate::nmf::{self, Init, Loss, NmfParams, Progress, RankParams, RankReport};
use crate::spectral::{
    Excerpt, Stft, StftParams, Window, channel_summed_magnitude_into, check_usable, spatial,
};

/// Spectral templates of one source and the settings they were learned with.
#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    /// The source's name, used for its output file (`<name>.wav`).
    pub name: String,
    /// Templates as columns, shape `(n_fft / 2 + 1, K × frames)`: each template's frames side
    /// by side, in order, together summing to 1.
    pub w: Array2<f32>,
    /// The length of each template in frames: 1, or more for convolutive templates (NMFD,
    /// `demix learn --frames`), which model how a sound's spectrum moves after its onset.
    pub frames: usize,
    /// FFT frame length they were learned with.
    pub n_fft: usize,
    /// Hop they were learned with.
    pub hop: usize,
    /// Window they were learned with.
    pub window: Window,
    /// Sample rate of the audio they were learned from.
    pub sample_rate: u32,
    /// The loss they were fitted with.
    pub loss: Loss,
    /// Kullback–Leibler templates of the same source, shaped as `w`, that `demix learn` fits
    /// beside Itakura–Saito ones: a mix with a percussive source is separated with KL (see
    /// [`mix_loss`]), and then uses these.
    pub w_kl: Option<Array2<f32>>,
    /// The source's spatial covariance per frequency bin, `(bins, C, C)`, when it was learned
    /// from recordings of C ≥ 2 channels; separation of C-channel mixtures then uses the
    /// multichannel Wiener filter.
    pub spatial: Option<Array3<Complex32>>,
    /// The MIDI note of each template when they were learned one per note
    /// ([`learn_notes`](crate::inspect::learn_notes), `demix learn --notes`): a semitone apart,
    /// rising. `demix inspect --source` then transcribes with them as note templates.
    pub notes: Option<Vec<u8>>,
}

impl Templates {
    /// Templates `w` of `frames` frames each, of a 126-point STFT at 8 kHz, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(name: &str, w: Array2<f32>, frames: usize) -> Templates {
        Templates {
            name: name.into(),
            w,
            frames,
            n_fft: 126,
            hop: 32,
            window: Window::Hann,
            sample_rate: 8000,
            loss: Loss::ItakuraSaito,
            w_kl: None,
            spatial: None,
            notes: None,
        }
    }

    /// Number of columns of [`Self::w`]: templates times their frames.
    pub fn len(&self) -> usize {
        self.w.ncols()
    }

    /// Number of templates.
    pub fn templates(&self) -> usize {
        self.w.ncols() / self.frames.max(1)
    }

    /// Whether there are no templates.
    pub fn is_empty(&self) -> bool {
        self.w.ncols() == 0
    }

    /// The STFT settings the templates were learned with.
    pub fn stft_params(&self) -> StftParams {
        StftParams::new(self.n_fft)
            .with_hop(self.hop)
            .with_window(self.window)
    }

    /// These templates for a separation with `loss`: their Kullback–Leibler ones when that is
    /// KL and they have them, else themselves.
    pub fn for_loss(mut self, loss: Loss) -> Templates {
        if loss == Loss::KullbackLeibler
            && self.loss != loss
            && let Some(w) = self.w_kl.take()
        {
            self.w = w;
            self.loss = loss;
        }
        self
    }

    /// Refuses STFT settings other than the ones the templates were learned with: their
    /// frequency bins would mean other frequencies.
    ///
    /// # Errors
    /// [`ParamError::TemplateSettings`] naming the first difference.
    pub fn check_stft(&self, stft: &StftParams) -> Result<(), ParamError> {
        let mismatch = |what: &'static str, learned: String, used: String| {
            Err(ParamError::TemplateSettings {
                name: self.name.clone(),
                what,
                learned,
                used,
            })
        };
        if self.n_fft != stft.n_fft() {
            return mismatch("n_fft", self.n_fft.to_string(), stft.n_fft().to_string());
        }
        if self.hop != stft.hop() {
            return mismatch("hop", self.hop.to_string(), stft.hop().to_string());
        }
        if self.window != stft.window() {
            return mismatch(
                "window",
                self.window.name().into(),
                stft.window().name().into(),
            );
        }
        Ok(())
    }

    /// [`Self::check_stft`], and refuses audio at another sample rate than the templates'.
    ///
    /// # Errors
    /// [`Error::TemplateMismatch`] for the sample rate, [`Error::Param`] for STFT settings.
    pub fn check_compatible(&self, stft: &StftParams, sample_rate: u32) -> Result<()> {
        if self.sample_rate != sample_rate {
            return Err(Error::TemplateMismatch {
                name: self.name.clone(),
                what: "sample rate",
                learned: format!("{} Hz", self.sample_rate),
                used: format!("{sample_rate} Hz"),
            });
        }
        Ok(self.check_stft(stft)?)
    }
}

/// Templates learned per source when not told otherwise (`demix learn -k`).
pub const DEFAULT_TEMPLATES: usize = 16;

/// Iterations of `demix learn`'s Itakura-Saito fit by default (see [`learn_params`]), and of
/// its convolutive KL fit of a percussive source.
pub const LEARN_ITERATIONS: usize = 100;

/// The exponent of the steps of `demix learn`'s Itakura-Saito fit by default (see
/// [`NmfParams::with_step_exponent`]): longer than the 1/2 under which the cost provably
/// never rises, shorter than the heuristic 1 (whose templates, at 100 or 120 steps, moved a
/// note to the wrong template in `tests/it/inspect_sources.rs`).
pub const LEARN_STEP_EXPONENT: f32 = 0.75;

/// The NMF parameters [`learn`] is meant to be used with for `components` templates of a
/// source that is not percussive: Itakura-Saito from one random start, [`LEARN_ITERATIONS`]
/// steps of exponent [`LEARN_STEP_EXPONENT`] (on the 80 songs of the tuning split these
/// separated nearly as well as 150 steps: median change per source -0.016 dB over two seeds,
/// mean +0.03 dB under 30 dB, for `learn` of a 15 s clip in 0.23 s instead of 0.30;
/// docs/quality.md, "Fewer steps in `learn`"). On the quality
/// corpus's tuning split these templates separated better than Kullback-Leibler ones (median
/// SDR 6.27 against 5.97 dB) except in songs with drums (see [`mix_loss`]), and the best of
/// four starts no better than one once separation adds pitch-shifted copies (median 9.38
/// against 9.52 dB, in half the time); `demix learn` fits a percussive source (see
/// [`percussion`]) with KL and convolutive templates.
pub fn learn_params(components: usize) -> NmfParams {
    NmfParams::new(components)
        .with_loss(Loss::ItakuraSaito)
        .with_init(Init::Random)
        .with_max_iter(LEARN_ITERATIONS)
        .with_step_exponent(Some(LEARN_STEP_EXPONENT))
}

/// Learns `nmf.components()` templates of one source from example recordings (pooled: their
/// spectrograms are joined in time), with the given STFT and NMF settings.
///
/// # Errors
/// [`Error::Param`] for invalid parameters or no examples, [`Error::SampleRates`] when the
/// examples differ in sample rate, and the errors of the separation for unusable
/// audio.
///
/// ```
/// use demix::audio::Audio;
/// use demix::nmf::NmfParams;
/// use demix::spectral::StftParams;
/// use demix::sources::learn;
/// let tone: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.1).sin()).collect();
/// let example = Audio::new(16_000, vec![tone])?;
/// let t = learn("flute", &[example], &StftParams::new(1024), &NmfParams::new(3), &mut |_| {})?;
/// assert_eq!((t.w.nrows(), t.len(), t.sample_rate), (513, 3, 16_000));
/// # Ok::<(), demix::Error>(())
/// ```
pub fn learn(
    name: &str,
    examples: &[Audio],
    stft: &StftParams,
    nmf: &NmfParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Templates> {
    nmf.check()?;
    let (plan, pooled) = pooled_spectrogram(name, examples, stft)?;
    fit_templates(name, examples, (stft, &plan), pooled.view(), nmf, progress)
}

/// [`learn`] with the number of templates chosen first by the rank selection `rank` on the
/// pooled spectrogram (`demix learn -k auto`), fitting as `nmf` does with that many; the
/// templates and the selection's report.
///
/// # Errors
/// As [`learn`], and a [`ParamError`] for invalid `rank` settings or a range beyond the
/// frames of the examples.
///
/// ```
/// use demix::audio::Audio;
/// use demix::nmf::{KRange, NmfParams, RankParams};
/// use demix::spectral::StftParams;
/// use demix::sources::learn_with_rank;
/// // Two tones, each switched on and off on its own.
/// let gate = |i: usize, period: usize| (std::f32::consts::PI * (i % period) as f32 / period as f32).sin().powi(2);
/// let mix: Vec<f32> = (0..32_000)
///     .map(|i| {
///         let t = i as f32 / 8_000.0;
///         gate(i, 8_000) * (2.0 * std::f32::consts::PI * 300.0 * t).sin()
///             + gate(i, 11_000) * (2.0 * std::f32::consts::PI * 1_100.0 * t).sin()
///     })
///     .collect();
/// let example = Audio::new(8_000, vec![mix])?;
/// let rank = RankParams::new(KRange::new(1, 5)?);
/// let (t, report) = learn_with_rank("duo", &[example], &StftParams::new(512), &NmfParams::new(1), &rank, &mut |_| {})?;
/// assert_eq!((report.chosen, t.len()), (2, 2));
/// # Ok::<(), demix::Error>(())
/// ```
pub fn learn_with_rank(
    name: &str,
    examples: &[Audio],
    stft: &StftParams,
    nmf: &NmfParams,
    rank: &RankParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Templates, RankReport)> {
    rank.check_with(nmf)?;
    let (plan, pooled) = pooled_spectrogram(name, examples, stft)?;
    fit_with_rank(
        name,
        examples,
        (stft, &plan),
        pooled.view(),
        nmf,
        rank,
        progress,
    )
}

/// [`fit_templates`] with the number of templates chosen first by `rank` on `pooled`.
pub(super) fn fit_with_rank(
    name: &str,
    examples: &[Audio],
    stft: (&StftParams, &Stft),
    pooled: ArrayView2<f32>,
    nmf: &NmfParams,
    rank: &RankParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Templates, RankReport)> {
    let report = nmf::select_rank(pooled.t(), nmf, rank)?;
    let fit = report.fit_params(nmf);
    let templates = fit_templates(name, examples, stft, pooled, &fit, progress)?;
    Ok((templates, report))
}

/// The planned STFT and the examples' channel-summed magnitude spectrograms joined in time,
/// `(frames, bins)`, after checking the name and the examples.
pub(crate) fn pooled_spectrogram(
    name: &str,
    examples: &[Audio],
    stft: &StftParams,
) -> Result<(Stft, Array2<f32>)> {
    super::check_source_name(name)?;
    pooled(examples, stft)
}

/// The planned STFT and the examples' channel-summed magnitude spectrograms joined in time,
/// `(frames, bins)`, after checking the examples.
fn pooled(examples: &[Audio], stft: &StftParams) -> Result<(Stft, Array2<f32>)> {
    let first = examples.first().ok_or(ParamError::OutOfRange {
        param: Param::Examples,
        expected: "at least one recording",
        got: 0.0,
    })?;
    if let Some(other) = examples.iter().find(|a| a.sample_rate != first.sample_rate) {
        return Err(Error::SampleRates(first.sample_rate, other.sample_rate));
    }
    let plan = Stft::new(stft)?;
    for audio in examples {
        check_usable(audio, plan.n_fft())?;
    }
    let frames: usize = examples.iter().map(|a| plan.n_frames(a.len())).sum();
    let mut pooled = Array2::<f32>::zeros((frames, plan.n_bins()));
    crate::hugepages::advise(pooled.as_slice_mut().expect("fresh arrays are contiguous"));
    let mut start = 0;
    for audio in examples {
        let n = plan.n_frames(audio.len());
        let rows = pooled.slice_mut(s![start..start + n, ..]);
        channel_summed_magnitude_into(&plan, Excerpt::whole(audio), 0..n, rows);
        start += n;
    }
    Ok((plan, pooled))
}

/// The templates of `name` fitted with `nmf` to the pooled spectrogram of `examples`
/// (checked by [`pooled_spectrogram`], with the STFT settings and their plan), each summing
/// to 1, with the examples' spatial covariance when they share two or more channels.
pub(super) fn fit_templates(
    name: &str,
    examples: &[Audio],
    stft: (&StftParams, &Stft),
    pooled: ArrayView2<f32>,
    nmf: &NmfParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Templates> {
    let w = fitted_w(pooled, nmf, progress)?;
    Ok(templates_of(
        name,
        examples,
        stft,
        (w, nmf.frames()),
        nmf.loss(),
    ))
}

/// The templates `w` of `frames` frames each, fitted with `loss` to `examples` with the STFT
/// settings and their plan, with the examples' spatial covariance when they share two or
/// more channels.
pub(crate) fn templates_of(
    name: &str,
    examples: &[Audio],
    (stft, plan): (&StftParams, &Stft),
    (w, frames): (Array2<f32>, usize),
    loss: Loss,
) -> Templates {
    // The spatial covariance, when every example has the same number of channels (2 or more).
    let first = &examples[0];
    let channels = first.num_channels();
    let spatial = (channels >= 2 && examples.iter().all(|a| a.num_channels() == channels))
        .then(|| spatial::learn_covariance(plan, examples));
    Templates {
        name: name.to_string(),
        w,
        frames,
        n_fft: plan.n_fft(),
        hop: plan.hop(),
        window: stft.window(),
        sample_rate: first.sample_rate,
        loss,
        w_kl: None,
        spatial,
        notes: None,
    }
}

/// The templates W fitted with `nmf` to `pooled` (frames × bins), each summing to 1 (free
/// templates come out so unless normalisation was turned off; the frames of a convolutive
/// template sum to 1 together).
pub(super) fn fitted_w(
    pooled: ArrayView2<f32>,
    nmf: &NmfParams,
    progress: &mut dyn FnMut(Progress),
) -> Result<Array2<f32>> {
    let mut w = nmf::fit_with_progress(pooled.t(), nmf, progress)?.w;
    let frames = nmf.frames();
    for k in 0..w.ncols() / frames {
        let mut template = w.slice_mut(ndarray::s![.., k * frames..(k + 1) * frames]);
        let sum: f32 = template.sum();
        if sum > 0.0 {
            template.mapv_inplace(|a| a / sum);
        }
    }
    Ok(w)
}

/// How percussive the recordings `examples` are (pooled, with the STFT settings `stft`).
///
/// # Errors
/// As [`learn`] for the examples.
///
/// ```
/// use demix::audio::Audio;
/// use demix::sources::percussion;
/// use demix::spectral::StftParams;
/// let tone: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.1).sin()).collect();
/// let p = percussion(&[Audio::new(16_000, vec![tone])?], &StftParams::new(1024))?;
/// assert!(!p.is_percussive() && p.flatness < 0.1);
/// # Ok::<(), demix::Error>(())
/// ```
pub fn percussion(examples: &[Audio], stft: &StftParams) -> Result<Percussion> {
    let (_, pooled) = pooled(examples, stft)?;
    Ok(Percussion::of(pooled.view()))
}

/// The loss a mix of these sources is separated with when none is asked for: Kullback–Leibler
/// when a source has convolutive templates (a percussive source, as `demix learn` gives
/// drums), else the first source's loss. On the quality corpus's tuning split, songs with
/// drums separated better with KL in every family measured but organ and mallets, and songs
/// without them better with Itakura–Saito (docs/quality.md).
pub fn mix_loss(templates: &[Templates]) -> Option<Loss> {
    if templates.iter().any(|t| t.frames > 1) {
        return Some(Loss::KullbackLeibler);
    }
    templates.first().map(|t| t.loss)
}

/// The templates of several sources side by side, the first source's first.
pub(crate) fn stack(templates: &[Templates]) -> Array2<f32> {
    let views: Vec<_> = templates.iter().map(|t| t.w.view()).collect();
    concatenate(Axis(1), &views).expect("templates of equal numbers of bins")
}

/// The fit's parameters `nmf` with the templates of several sources held fixed: [`stack`]
/// with each template's length in frames.
pub(crate) fn with_stacked(nmf: NmfParams, templates: &[Templates]) -> NmfParams {
    let frames = templates
        .iter()
        .flat_map(|t| std::iter::repeat_n(t.frames.max(1), t.templates()))
        .collect();
    nmf.with_fixed_templates(stack(templates))
        .with_fixed_frames(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectral::channel_summed_magnitude;

    fn tone(len: usize, freq: f32, channels: usize) -> Audio {
        let samples: Vec<f32> = (0..len)
            .map(|i| (i as f32 * freq * std::f32::consts::TAU / 8000.0).sin())
            .collect();
        let channels = (0..channels).map(|c| samples.iter().map(|s| s * (c + 1) as f32).collect());
        Audio::new(8000, channels.collect()).unwrap()
    }

    #[test]
    fn pooled_recordings_are_their_spectrograms_one_after_the_other() {
        let params = StftParams::new(256).with_hop(64);
        let examples = [tone(3000, 440.0, 2), tone(1700, 660.0, 1)];
        let (plan, pooled) = pooled_spectrogram("a", &examples, &params).unwrap();
        let parts: Vec<_> = examples
            .iter()
            .map(|a| channel_summed_magnitude(&plan, a))
            .collect();
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        assert_eq!(pooled, concatenate(Axis(0), &views).unwrap());
        // The spectrogram is written over whatever the buffer held.
        let mut stale = Array2::from_elem(parts[0].dim(), f32::NAN);
        let frames = 0..parts[0].nrows();
        channel_summed_magnitude_into(
            &plan,
            Excerpt::whole(&examples[0]),
            frames,
            stale.view_mut(),
        );
        assert_eq!(stale, parts[0]);
        // Both channels count: the stereo tone's magnitudes are 1 + 2 times the mono one's.
        let mono = channel_summed_magnitude(&plan, &tone(3000, 440.0, 1));
        let rows = mono.nrows();
        let stereo = pooled.slice(s![..rows, ..]);
        assert!(
            stereo
                .iter()
                .zip(&mono)
                .all(|(s, m)| (s - 3.0 * m).abs() <= 1e-4 * (1.0 + s))
        );
    }
}
