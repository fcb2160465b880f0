//! Learned templates: the spectral templates of one source, fitted to isolated recordings of it
//! and saved with everything needed to use them again.
//!
//! A template file is a NumPy `.npz` archive (see the README for its contents), so numpy users
//! can load and plot it: `np.load("piano.npz")["W"]`.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array, Array2, Array3, ArrayView2, Axis, Dimension, Ix2, Ix3, concatenate};
use realfft::num_complex::Complex32;

use super::percussion::Percussion;
use crate::audio::Audio;
use crate::error::{Error, Param, ParamError, Result};
use crate::formats::excerpt;
use crate::formats::npy::{self, NpyArray};
use crate::nmf::{
    self, Init, Loss, MAX_TEMPLATE_FRAMES, NmfParams, Progress, RankParams, RankReport,
};
use crate::spectral::{Stft, StftParams, Window, channel_summed_magnitude, check_usable, spatial};

/// The value of the `format` entry that marks a demix template file.
const FORMAT: &str = "demix-templates";
/// Version of the template file layout.
const VERSION: i64 = 1;

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

    /// Saves the templates as an `.npz` file, atomically.
    ///
    /// # Errors
    /// [`Error::Write`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bins = self.w.nrows();
        let freqs = (0..bins)
            .map(|i| i as f64 * f64::from(self.sample_rate) / self.n_fft as f64)
            .collect::<Vec<_>>();
        let entries: Vec<(&str, NpyArray)> = vec![
            ("W", NpyArray::F32(self.w_array()?)),
            (
                "freq_hz",
                NpyArray::F64(ndarray::Array1::from(freqs).into_dyn()),
            ),
            ("name", NpyArray::Str(self.name.clone())),
            ("n_fft", NpyArray::scalar_i64(self.n_fft as i64)),
            ("hop", NpyArray::scalar_i64(self.hop as i64)),
            ("window", NpyArray::Str(self.window.name().into())),
            (
                "sample_rate",
                NpyArray::scalar_i64(i64::from(self.sample_rate)),
            ),
            ("loss", NpyArray::Str(self.loss.to_string())),
            ("beta", NpyArray::scalar_f64(f64::from(self.loss.beta()))),
            ("format", NpyArray::Str(FORMAT.into())),
            ("version", NpyArray::scalar_i64(VERSION)),
        ];
        let mut entries = entries;
        if let Some(w) = &self.w_kl {
            entries.push(("W_kl", NpyArray::F32(w.clone().into_dyn())));
        }
        if let Some(r) = &self.spatial {
            entries.push(("spatial_re", NpyArray::F32(r.mapv(|c| c.re).into_dyn())));
            entries.push(("spatial_im", NpyArray::F32(r.mapv(|c| c.im).into_dyn())));
        }
        if let Some(notes) = &self.notes {
            let notes = notes.iter().map(|&n| i64::from(n)).collect::<Vec<_>>();
            entries.push((
                "notes",
                NpyArray::I64(ndarray::Array1::from(notes).into_dyn()),
            ));
        }
        npy::save_npz(path, entries.iter().map(|(n, a)| (*n, a)))
    }

    /// W as saved: bins × K, or bins × K × frames for convolutive templates.
    fn w_array(&self) -> Result<ndarray::ArrayD<f32>> {
        let w = self.w.as_standard_layout().into_owned().into_dyn();
        if self.frames <= 1 {
            return Ok(w);
        }
        let shape = [self.w.nrows(), self.templates(), self.frames];
        w.into_shape_with_order(shape.as_slice()).map_err(|_| {
            Error::Templates(format!(
                "'{}': {} columns are not templates of {} frames",
                self.name,
                self.w.ncols(),
                self.frames
            ))
        })
    }

    /// Loads templates saved by [`Self::save`], or any `.npz` with at least `W` (bins × K, or
    /// bins × K × frames for convolutive templates),
    /// `n_fft`, `hop` and `sample_rate`; the name defaults to the file stem, the window to Hann
    /// and the loss to KL.
    ///
    /// # Errors
    /// [`Error::Templates`] naming what is missing or wrong.
    pub fn load(path: &Path) -> Result<Templates> {
        let arrays = npy::load_npz(path).map_err(|e| Error::Templates(e.to_string()))?;
        let default_name = path.file_stem().map_or_else(
            || "source".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Templates::from_arrays(&arrays, &default_name)
    }

    fn from_arrays(arrays: &BTreeMap<String, NpyArray>, default_name: &str) -> Result<Templates> {
        let bad = |m: String| Error::Templates(m);
        let get = |key: &str| {
            arrays
                .get(key)
                .ok_or_else(|| bad(format!("no '{key}' array")))
        };
        let integer = |key: &str| -> Result<usize> {
            let v = get(key)?
                .scalar()
                .ok_or_else(|| bad(format!("'{key}' is not a number")))?;
            if v >= 1.0 && v.fract() == 0.0 && v < 1e9 {
                Ok(v as usize)
            } else {
                Err(bad(format!("'{key}' is {v}, expected a positive integer")))
            }
        };
        let w = get("W")?
            .to_f32()
            .ok_or_else(|| bad("'W' is not numeric".into()))?;
        let (w, frames) = match *w.shape() {
            // Any memory order (a Fortran-order W too); copied only to make it standard.
            [_, _] => (w.into_dimensionality::<Ix2>().map(standard), 1),
            [bins, k, frames] if (1..=MAX_TEMPLATE_FRAMES).contains(&frames) => (
                standard(w).into_shape_with_order((bins, k * frames)),
                frames,
            ),
            [_, _, frames] => {
                return Err(bad(format!(
                    "'W' has templates of {frames} frames, expected 1 to {MAX_TEMPLATE_FRAMES}"
                )));
            }
            _ => return Err(bad("'W' is not bins × templates (or × frames)".into())),
        };
        let w = w.map_err(|_| bad("'W' cannot be read as a matrix".into()))?;
        let n_fft = integer("n_fft")?;
        let hop = integer("hop")?;
        let sample_rate = integer("sample_rate")? as u32;
        if w.nrows() != n_fft / 2 + 1 {
            return Err(bad(format!(
                "'W' has {} rows, but n_fft {n_fft} gives {} frequency bins",
                w.nrows(),
                n_fft / 2 + 1
            )));
        }
        if w.ncols() == 0 || !w.iter().all(|&a| a.is_finite() && a >= 0.0) {
            return Err(bad(
                "'W' must hold at least one column of non-negative, finite values".into(),
            ));
        }
        let window = match arrays.get("window").and_then(NpyArray::as_str) {
            None | Some("hann") => Window::Hann,
            Some("hamming") => Window::Hamming,
            Some(other) => {
                return Err(bad(format!("unknown window '{}'", excerpt(other, 40))));
            }
        };
        let loss = match arrays.get("loss").and_then(NpyArray::as_str) {
            None => Loss::default(),
            // The file's text, made one line, in the message of an unknown loss.
            Some(text) => text.parse::<Loss>().map_err(|e| match e {
                ParamError::UnknownLoss(_) => {
                    bad(ParamError::UnknownLoss(excerpt(text, 40)).to_string())
                }
                other => bad(other.to_string()),
            })?,
        };
        let w_kl = match arrays.get("W_kl") {
            None => None,
            Some(a) => Some(
                a.to_f32()
                    .and_then(|a| a.into_dimensionality::<ndarray::Ix2>().ok())
                    .filter(|k| k.dim() == w.dim() && k.iter().all(|&x| x.is_finite() && x >= 0.0))
                    .ok_or_else(|| bad("'W_kl' must be non-negative and shaped as 'W'".into()))?,
            ),
        };
        let name = arrays
            .get("name")
            .and_then(NpyArray::as_str)
            .unwrap_or(default_name)
            .to_string();
        let spatial = match (arrays.get("spatial_re"), arrays.get("spatial_im")) {
            (Some(re), Some(im)) => {
                let part = |a: &NpyArray| {
                    a.to_f32()
                        .and_then(|a| a.into_dimensionality::<Ix3>().ok())
                        .filter(|a| {
                            a.dim().0 == w.nrows() && a.dim().1 == a.dim().2 && a.dim().1 >= 2
                        })
                        .ok_or_else(|| bad("'spatial_re'/'spatial_im' must be bins × C × C".into()))
                };
                let (re, im) = (part(re)?, part(im)?);
                if re.dim() != im.dim() {
                    return Err(bad("'spatial_re' and 'spatial_im' differ in shape".into()));
                }
                Some(
                    ndarray::Zip::from(&re)
                        .and(&im)
                        .map_collect(|&a, &b| Complex32::new(a, b)),
                )
            }
            (None, None) => None,
            _ => return Err(bad("only one of 'spatial_re' and 'spatial_im'".into())),
        };
        let notes = match arrays.get("notes") {
            None => None,
            Some(a) => Some(note_numbers(a, w.ncols() / frames).ok_or_else(|| {
                bad("'notes' must be one rising MIDI note per template, a semitone apart".into())
            })?),
        };
        Ok(Templates {
            name,
            w,
            frames,
            n_fft,
            hop,
            window,
            sample_rate,
            loss,
            w_kl,
            spatial,
            notes,
        })
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

/// The NMF parameters [`learn`] is meant to be used with for `components` templates of a
/// source that is not percussive: Itakura-Saito from one random start. On the quality
/// corpus's tuning split these templates separated better than Kullback-Leibler ones (median
/// SDR 6.27 against 5.97 dB) except in songs with drums (see [`mix_loss`]), and the best of
/// four starts no better than one once separation adds pitch-shifted copies (median 9.38
/// against 9.52 dB, in half the time); `demix learn` fits a percussive source (see
/// [`percussion`]) with KL and convolutive templates.
pub fn learn_params(components: usize) -> NmfParams {
    NmfParams::new(components)
        .with_loss(Loss::ItakuraSaito)
        .with_init(Init::Random)
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
    let mut parts = Vec::with_capacity(examples.len());
    for audio in examples {
        check_usable(audio, plan.n_fft())?;
        parts.push(channel_summed_magnitude(&plan, audio));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let pooled = concatenate(Axis(0), &views).expect("equal numbers of bins");
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

/// The notes of `array` when it holds `templates` MIDI notes (0 to 127), each a semitone
/// above the one before.
fn note_numbers(array: &NpyArray, templates: usize) -> Option<Vec<u8>> {
    let notes = array.to_f64().filter(|a| a.ndim() == 1)?;
    let notes: Vec<u8> = notes
        .iter()
        .map(|&n| (n.fract() == 0.0 && (0.0..=127.0).contains(&n)).then_some(n as u8))
        .collect::<Option<_>>()?;
    let rising = notes.windows(2).all(|p| p[1] == p[0] + 1);
    (notes.len() == templates && rising).then_some(notes)
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

/// `a` in standard (row-major) layout, copied only when it is not.
fn standard<D: Dimension>(a: Array<f32, D>) -> Array<f32, D> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
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

    fn example() -> Templates {
        Templates {
            name: "piano".into(),
            w: Array2::from_shape_fn((5, 2), |(i, j)| (i + 2 * j) as f32 / 10.0),
            frames: 1,
            n_fft: 8,
            hop: 2,
            window: Window::Hann,
            sample_rate: 8000,
            loss: Loss::ItakuraSaito,
            w_kl: Some(Array2::from_elem((5, 2), 0.25)),
            spatial: Some(Array3::from_shape_fn((5, 2, 2), |(f, a, b)| {
                Complex32::new((f + a) as f32, b as f32 - a as f32)
            })),
            notes: Some(vec![60, 61]),
        }
    }

    #[test]
    fn a_template_file_round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("piano.npz");
        let t = example();
        t.save(&path).unwrap();
        assert_eq!(Templates::load(&path).unwrap(), t);
    }

    #[test]
    fn template_lengths_and_kl_templates_are_checked_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npz");
        let t = example();
        let with = |key: &str, array: NpyArray| {
            t.save(&path).unwrap();
            let mut arrays = npy::load_npz(&path).unwrap();
            arrays.insert(key.into(), array);
            npy::save_npz(&path, arrays.iter().map(|(k, a)| (k.as_str(), a))).unwrap();
            Templates::load(&path).map(|_| ()).unwrap_err().to_string()
        };
        let w3 = |frames: usize| NpyArray::F32(ndarray::ArrayD::zeros(vec![5, 1, frames]));
        assert!(with("W", w3(65)).contains("65 frames"));
        let w4 = NpyArray::F32(ndarray::ArrayD::zeros(vec![5, 1, 2, 2]));
        assert!(with("W", w4).contains("not bins × templates"));
        let kl = NpyArray::F32(Array2::from_elem((5, 3), 0.1f32).into_dyn());
        assert!(with("W_kl", kl).contains("'W_kl'"));
        let negative = NpyArray::F32(Array2::from_elem((5, 2), -1.0f32).into_dyn());
        assert!(with("W_kl", negative).contains("'W_kl'"));
        let notes = |n: &[i64]| NpyArray::I64(ndarray::Array1::from(n.to_vec()).into_dyn());
        for bad in [&[60][..], &[60, 62], &[61, 60], &[127, 128], &[60, 61, 62]] {
            assert!(with("notes", notes(bad)).contains("'notes'"), "{bad:?}");
        }
    }

    #[test]
    fn convolutive_templates_are_saved_as_bins_by_templates_by_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drums.npz");
        // Two templates of three frames: columns 0..3 are the first's frames.
        let w = Array2::from_shape_fn((5, 6), |(f, c)| (10 * f + c) as f32);
        let t = Templates {
            w,
            frames: 3,
            w_kl: None,
            ..example()
        };
        t.save(&path).unwrap();
        let arrays = npy::load_npz(&path).unwrap();
        let saved = arrays["W"].to_f32().unwrap();
        assert_eq!(saved.shape(), [5, 2, 3]);
        // Bin 1, template 1, frame 2 is column 1 * 3 + 2 of bin 1.
        assert_eq!(saved[[1, 1, 2]], 15.0);
        let loaded = Templates::load(&path).unwrap();
        assert_eq!((loaded.templates(), loaded.frames), (2, 3));
        assert_eq!(loaded, t);
    }

    #[test]
    fn mismatched_settings_are_named() {
        let t = example();
        let ok = StftParams::new(8).with_hop(2);
        assert!(t.check_compatible(&ok, 8000).is_ok());
        let e = t.check_compatible(&ok, 16_000).unwrap_err();
        assert!(e.to_string().contains("sample rate"), "{e}");
        let e = t
            .check_compatible(&StftParams::new(16).with_hop(2), 8000)
            .unwrap_err();
        assert!(e.to_string().contains("n_fft"), "{e}");
        let e = t
            .check_compatible(&StftParams::new(8).with_hop(4), 8000)
            .unwrap_err();
        assert!(e.to_string().contains("hop"), "{e}");
    }

    #[test]
    fn files_without_the_needed_arrays_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npz");
        let w = NpyArray::F32(Array2::<f32>::ones((5, 2)).into_dyn());
        npy::save_npz(&path, [("W", &w)]).unwrap();
        let e = Templates::load(&path).unwrap_err();
        assert!(e.to_string().contains("n_fft"), "{e}");
        std::fs::write(&path, b"not a zip").unwrap();
        assert!(matches!(Templates::load(&path), Err(Error::Templates(_))));
    }
}
