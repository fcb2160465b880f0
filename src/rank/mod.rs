//! How many components a recording needs: the rank selection of [`crate::nmf::select_rank`]
//! on the recording's magnitude spectrogram, and its results as files (`rank.json`,
//! `rank.csv`, `rank.png`).
//!
//! ```
//! use demix::Audio;
//! use demix::nmf::{KRange, NmfParams, RankParams};
//! use demix::spectral::StftParams;
//! // Two tones, each switched on and off on its own, fading in and out slowly.
//! let rate = 8_000;
//! let tone = |hz: f32, period: usize| -> Vec<f32> {
//!     (0..4 * rate)
//!         .map(|i| {
//!             let phase = (i % period) as f32 / period as f32;
//!             let gate = (std::f32::consts::PI * phase).sin().powi(2);
//!             gate * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin()
//!         })
//!         .collect()
//! };
//! let (a, b) = (tone(300.0, 8_000), tone(1_100.0, 11_000));
//! let mix: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
//! let audio = Audio::new(rate as u32, vec![mix])?;
//! let rank = RankParams::new(KRange::new(1, 5)?);
//! let report = demix::rank::choose_rank(&audio, &StftParams::new(512), &NmfParams::new(1), &rank)?;
//! assert_eq!(report.chosen, 2);
//! # Ok::<(), demix::Error>(())
//! ```

mod chart;
mod files;

pub use chart::rank_chart;
pub use files::{RANK_FILES, rank_csv, rank_json, write_rank_files};

use crate::audio::Audio;
use crate::error::Result;
use crate::nmf::{NmfParams, RankParams, RankReport, select_rank};
use crate::spectral::{Stft, StftParams, channel_summed_magnitude, check_usable};

/// Chooses the number of components of `audio` (its channels' summed magnitude spectrogram
/// with `stft`) by `rank`, fitting with the loss, iterations, tolerance, seed and floor of
/// `nmf`.
///
/// # Errors
/// [`crate::Error::NonFinite`] or [`crate::Error::TooShort`] for unusable audio, and a
/// [`crate::ParamError`] for invalid settings or a range beyond the frames of the recording.
pub fn choose_rank(
    audio: &Audio,
    stft: &StftParams,
    nmf: &NmfParams,
    rank: &RankParams,
) -> Result<RankReport> {
    let plan = Stft::new(stft)?;
    rank.check()?;
    nmf.check()?;
    check_usable(audio, plan.n_fft())?;
    let spectrogram = channel_summed_magnitude(&plan, audio);
    Ok(select_rank(spectrogram.t(), nmf, rank)?)
}

/// The one-line summary of a report: `K = 8 (rule; stable 0.97)`.
pub fn summary(report: &RankReport) -> String {
    match report.chosen_row() {
        Some(row) => format!(
            "K = {} ({}; stability {:.2})",
            report.chosen, report.rule, row.stability
        ),
        None => format!("K = {} ({})", report.chosen, report.rule),
    }
}
