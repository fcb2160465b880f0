//! Audio in and out: decoding with symphonia into planar `f32`, writing WAV with hound and
//! FLAC with flacenc.

mod decode;
mod flac;
mod write;

pub use decode::{AudioReader, decode, read_audio};
pub use flac::{FLAC_MAX_CHANNELS, FLAC_MAX_SAMPLE_RATE, FlacStreamWriter, check_flac};
pub use write::{
    ClipReport, Container, OutputFormat, StemWriter, WAV_MAX_BYTES, WavStreamWriter, wav_size,
    write_wav,
};

use crate::error::{Error, Result};

/// The highest sample rate accepted: 1 MHz, above every audio format in use (384 kHz and
/// 768 kHz recordings included).
pub const MAX_SAMPLE_RATE: u32 = 1_000_000;

/// Decoded audio: one `Vec<f32>` per channel, all of the same length, full scale at ±1.0.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second.
    pub sample_rate: u32,
    /// The samples of each channel (planar), all of equal length.
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    /// Builds audio from planar channels, checking that there is at least one channel and that
    /// all channels have the same length.
    ///
    /// # Errors
    /// [`Error::NoAudio`] without channels, [`Error::RaggedChannels`] for unequal lengths,
    /// [`Error::Unsupported`] for a sample rate of 0 or above [`MAX_SAMPLE_RATE`] (or one whose
    /// WAV byte rate would not fit its 32-bit field).
    ///
    /// ```
    /// let audio = demix::audio::Audio::new(8000, vec![vec![0.0; 100], vec![0.5; 100]])?;
    /// assert_eq!((audio.num_channels(), audio.len()), (2, 100));
    /// # Ok::<(), demix::Error>(())
    /// ```
    pub fn new(sample_rate: u32, channels: Vec<Vec<f32>>) -> Result<Audio> {
        let expected = channels.first().ok_or(Error::NoAudio)?.len();
        // What a WAV file can carry: its byte rate (rate × channels × 4 bytes for float
        // output) is a 32-bit field.
        let byte_rate = u64::from(sample_rate) * channels.len() as u64 * 4;
        if sample_rate == 0 || sample_rate > MAX_SAMPLE_RATE || byte_rate > u64::from(u32::MAX) {
            return Err(Error::Unsupported(format!(
                "a sample rate of {sample_rate} Hz with {} channels; demix handles 1 to \
                 {MAX_SAMPLE_RATE} Hz",
                channels.len()
            )));
        }
        if let Some((channel, c)) = channels
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() != expected)
        {
            return Err(Error::RaggedChannels {
                channel,
                len: c.len(),
                expected,
            });
        }
        Ok(Audio {
            sample_rate,
            channels,
        })
    }

    /// Number of channels.
    pub fn num_channels(&self) -> usize {
        self.channels.len()
    }

    /// Samples per channel.
    pub fn len(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.len() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// Returns an error for the first NaN or infinite sample.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the channel and sample index.
    pub fn check_finite(&self) -> Result<()> {
        for (channel, samples) in self.channels.iter().enumerate() {
            if let Some(index) = samples.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFinite {
                    channel,
                    index,
                    value: samples[index],
                });
            }
        }
        Ok(())
    }
}
