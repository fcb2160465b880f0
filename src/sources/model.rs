//! The model `demix learn` gives a source: convolutive Kullback–Leibler templates for a
//! percussive one, single-frame templates with KL ones beside them for the rest (see
//! [`learn_source`]).

use super::percussion::{PERCUSSIVE_FRAMES, Percussion};
use super::templates::{Templates, fit_templates, fit_with_rank, fitted_w, pooled_spectrogram};
use crate::audio::Audio;
use crate::error::Result;
use crate::nmf::{
    Loss, NmfParams, Progress, RankParams, RankReport, available_memory, memory_estimate,
};
use crate::spectral::StftParams;

/// What [`learn_source`] decides itself when these are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelChoice {
    /// Frames of each template (`None`: [`PERCUSSIVE_FRAMES`] for percussive recordings,
    /// else 1).
    pub frames: Option<usize>,
    /// The loss of templates of several frames (`None`: KL); templates of one frame use the
    /// loss of the parameters given.
    pub loss: Option<Loss>,
    /// Starts of templates of several frames (`None`: one); templates of one frame use the
    /// restarts of the parameters given.
    pub restarts: Option<usize>,
}

/// Where [`learn_source`] is, for its callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LearnEvent {
    /// The recordings were measured (when the length was left to the measure).
    Measured(Percussion),
    /// The fit of the templates went on.
    Fit(Progress),
    /// The fit of the KL templates beside them starts.
    KlFit,
    /// That fit went on.
    KlProgress(Progress),
}

/// What [`learn_source`] learned.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    /// The templates.
    pub templates: Templates,
    /// The rank selection's report, with one.
    pub rank: Option<RankReport>,
}

/// The iterations of the Kullback–Leibler templates fitted beside Itakura–Saito ones, for a
/// fit of `iterations`: half as many (50 of the default 100). They serve only mixes with
/// a percussive source; on the quality corpus's tuning split the 12 songs with drums (40
/// sources, each learned with seeds 0 and 1) separated as well with 50 as with 100 (median
/// change per source +0.015 dB, 22 of 40 better; drums +0.04), and 100 as well as 200 at an
/// earlier stop (+0.03 dB, 23 of 40).
fn kl_iterations(iterations: usize) -> usize {
    iterations.div_ceil(2)
}

/// Learns the templates of one source as `demix learn` does, from one spectrogram of the
/// pooled `examples`: the length of its templates from how percussive they are (unless
/// `choice.frames` says), convolutive templates with KL from one start (unless `choice` says
/// otherwise), templates of one frame with `nmf` and then KL templates beside them from one
/// start and with half of `nmf`'s iterations (when `nmf`'s loss is not KL), which a mix with
/// a percussive source is separated with (see [`super::mix_loss`]). With `rank`, the number of templates is chosen first (as
/// for templates of one frame). On the quality corpus's tuning split one start instead of
/// four changed the median SDR of the songs with drums by 0.01 dB (5.37 against 5.38).
///
/// # Errors
/// As [`super::learn`] and [`super::learn_with_rank`].
///
/// ```
/// use demix::audio::Audio;
/// use demix::sources::{ModelChoice, learn_params, learn_source};
/// use demix::spectral::StftParams;
/// let tone: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.1).sin()).collect();
/// let example = Audio::new(16_000, vec![tone])?;
/// let stft = StftParams::new(1024);
/// let nmf = learn_params(2);
/// let learned = learn_source("flute", &[example], &stft, &nmf, ModelChoice::default(), None, &mut |_| {})?;
/// let t = learned.templates;
/// assert_eq!((t.frames, t.len()), (1, 2));
/// assert_eq!(t.w_kl.map(|w| w.dim()), Some((513, 2)));
/// # Ok::<(), demix::Error>(())
/// ```
pub fn learn_source(
    name: &str,
    examples: &[Audio],
    stft: &StftParams,
    nmf: &NmfParams,
    choice: ModelChoice,
    rank: Option<&RankParams>,
    events: &mut dyn FnMut(LearnEvent),
) -> Result<Learned> {
    let frames = choice.frames.unwrap_or(1);
    let mut nmf = nmf.clone().with_frames(frames);
    match rank {
        Some(rank) => rank.check_with(&nmf)?,
        None => nmf.check()?,
    }
    let (plan, pooled) = pooled_spectrogram(name, examples, stft)?;
    if choice.frames.is_none() {
        let measured = Percussion::of(pooled.view());
        events(LearnEvent::Measured(measured));
        if measured.is_percussive() {
            nmf = nmf.with_frames(PERCUSSIVE_FRAMES);
        }
    }
    if nmf.frames() > 1 {
        nmf = nmf
            .with_loss(choice.loss.unwrap_or(Loss::KullbackLeibler))
            .with_step_exponent(None)
            .with_restarts(choice.restarts.unwrap_or(1));
    }
    let stft = (stft, &plan);
    let progress = &mut |p| events(LearnEvent::Fit(p));
    let needs_kl = nmf.frames() == 1 && nmf.loss() != Loss::KullbackLeibler;
    let kl = |components| {
        (nmf.clone())
            .with_loss(Loss::KullbackLeibler)
            .with_step_exponent(None)
            .with_restarts(1)
            .with_components(components)
            .with_max_iter(kl_iterations(nmf.max_iter()))
    };
    let (frames, bins) = pooled.dim();
    let k = nmf.components();
    // Both fits at once only where the memory allowed holds both.
    let both_fit = (nmf.max_memory().or_else(available_memory))
        .is_none_or(|limit| memory_estimate(bins, frames, k, k).saturating_mul(2) <= limit);
    let (mut templates, rank, w_kl) = match rank {
        None if needs_kl && both_fit => {
            // The KL fit runs beside the first on the other threads: the same results, sooner.
            let (kl, mut w_kl, mut kl_progress) = (kl(k), None, Vec::new());
            let templates = rayon::in_place_scope(|scope| {
                let (w_kl, kl_progress, pooled) = (&mut w_kl, &mut kl_progress, pooled.view());
                let kl = &kl;
                scope.spawn(move |_| {
                    *w_kl = Some(fitted_w(pooled, kl, &mut |p| kl_progress.push(p)));
                });
                fit_templates(name, examples, stft, pooled.view(), &nmf, progress)
            });
            let templates = templates?;
            let w_kl = w_kl.expect("the KL fit ran").map(|w| (w, kl_progress))?;
            (templates, None, Some(w_kl))
        }
        rank => {
            let (templates, report) = match rank {
                Some(rank) => {
                    fit_with_rank(name, examples, stft, pooled.view(), &nmf, rank, progress)
                        .map(|(t, report)| (t, Some(report)))?
                }
                None => (
                    fit_templates(name, examples, stft, pooled.view(), &nmf, progress)?,
                    None,
                ),
            };
            // After the first fit: with a rank selection, the number of templates it chose.
            let mut kl_progress = Vec::new();
            let w_kl = (needs_kl)
                .then(|| {
                    fitted_w(pooled.view(), &kl(templates.templates()), &mut |p| {
                        kl_progress.push(p)
                    })
                })
                .transpose()?;
            (templates, report, w_kl.map(|w| (w, kl_progress)))
        }
    };
    if let Some((w, kl_progress)) = w_kl {
        events(LearnEvent::KlFit);
        for p in kl_progress {
            events(LearnEvent::KlProgress(p));
        }
        templates.w_kl = Some(w);
    }
    Ok(Learned { templates, rank })
}
