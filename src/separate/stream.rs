//! Recordings read in passes rather than held: the samples a range of frames needs, decoded
//! as the passes reach them, and activations kept in a file beside the stems.

use std::fs;
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2, s};

use crate::audio::{Audio, AudioReader};
use crate::error::{Error, Result};
use crate::spectral::{Excerpt, Stft};

/// Frames decoded at a time by a scan.
const SCAN_BLOCK: usize = 1 << 16;

/// What a first pass over a file found: its length and layout, every sample checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Samples per channel.
    pub len: usize,
    /// Number of channels.
    pub channels: usize,
    /// Samples per second.
    pub sample_rate: u32,
}

impl Scan {
    /// Decodes `path` once, in blocks, with the checks of [`crate::audio::read_audio`] and
    /// [`Audio::check_finite`]. `check` is called with the length, channels and rate the
    /// header declares, if it declares a plausible length, before the scan, and with the ones
    /// found, after it: a file can be refused before it is decoded.
    ///
    /// # Errors
    /// Those of the decoder, [`Error::NonFinite`], and those of `check`.
    pub(crate) fn of(path: &Path, check: &dyn Fn(u64, usize, u32) -> Result<()>) -> Result<Scan> {
        let mut reader = AudioReader::open(path)?;
        // A declared length is trusted before decoding only if the file could hold it, with
        // no more than 1024 samples per byte (FLAC's digital silence takes about 512): a
        // truncated file is reported as truncated, not as too long.
        let bytes = fs::metadata(path).map_or(0, |m| m.len());
        if let Some(frames) = reader.declared_frames()
            && frames.saturating_mul(reader.num_channels() as u64) <= bytes.saturating_mul(1024)
        {
            check(frames, reader.num_channels(), reader.sample_rate())?;
        }
        let mut block: Vec<Vec<f32>> = (0..reader.num_channels())
            .map(|_| Vec::with_capacity(SCAN_BLOCK))
            .collect();
        let mut len = 0usize;
        loop {
            block.iter_mut().for_each(Vec::clear);
            let n = reader.read(&mut block, SCAN_BLOCK)?;
            if n == 0 {
                break;
            }
            for (channel, samples) in block.iter().enumerate() {
                if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
                    return Err(Error::NonFinite {
                        channel,
                        index: len + i,
                        value: samples[i],
                    });
                }
            }
            len += n;
        }
        check(len as u64, reader.num_channels(), reader.sample_rate())?;
        Ok(Scan {
            len,
            channels: reader.num_channels(),
            sample_rate: reader.sample_rate(),
        })
    }
}

/// A recording a separation reads: decoded audio in memory, or a file read in passes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    /// Decoded audio.
    Memory(&'a Audio),
    /// A file of this length and layout, decoded again for every pass.
    File(&'a Path, Scan),
}

impl<'a> Input<'a> {
    /// Samples per channel.
    pub(crate) fn len(&self) -> usize {
        match self {
            Input::Memory(audio) => audio.len(),
            Input::File(_, scan) => scan.len,
        }
    }

    /// Number of channels.
    pub(crate) fn num_channels(&self) -> usize {
        match self {
            Input::Memory(audio) => audio.num_channels(),
            Input::File(_, scan) => scan.channels,
        }
    }

    /// Samples per second.
    pub(crate) fn sample_rate(&self) -> u32 {
        match self {
            Input::Memory(audio) => audio.sample_rate,
            Input::File(_, scan) => scan.sample_rate,
        }
    }

    /// A pass from the start.
    ///
    /// # Errors
    /// Those of the decoder, when a file is opened again.
    pub(crate) fn pass(&self) -> Result<Pass<'a>> {
        Ok(match *self {
            Input::Memory(audio) => Pass::Memory(audio),
            Input::File(path, scan) => {
                let reader = AudioReader::open(path)?;
                if reader.num_channels() != scan.channels
                    || reader.sample_rate() != scan.sample_rate
                {
                    return Err(changed(path));
                }
                Pass::Stream(Box::new(StreamPass {
                    channels: vec![Vec::new(); scan.channels],
                    reader,
                    offset: 0,
                    len: scan.len,
                    path: path.to_path_buf(),
                }))
            }
        })
    }
}

fn changed(path: &Path) -> Error {
    Error::Corrupt(format!(
        "{} changed while it was being separated",
        path.display()
    ))
}

/// One pass over a recording, asked for frames whose first sample never moves back.
pub(crate) enum Pass<'a> {
    /// All the samples are at hand.
    Memory(&'a Audio),
    /// Samples decoded as they are needed, the ones no longer needed dropped.
    Stream(Box<StreamPass>),
}

/// The decoding side of [`Pass::Stream`].
pub(crate) struct StreamPass {
    reader: AudioReader,
    /// Samples `offset..offset + channels[c].len()` of each channel.
    channels: Vec<Vec<f32>>,
    offset: usize,
    len: usize,
    path: PathBuf,
}

impl Pass<'_> {
    /// The samples that `frames` need. A stream drops the samples before them, or before
    /// frame `keep` if that is earlier: a later call may ask for no frame before the `frames`
    /// or `keep` of this one.
    ///
    /// # Errors
    /// Those of the decoder, and a file that ends before its scanned length.
    ///
    /// # Panics
    /// If the frames start before samples already dropped.
    pub(crate) fn excerpt(
        &mut self,
        stft: &Stft,
        frames: Range<usize>,
        keep: usize,
    ) -> Result<Excerpt<'_>> {
        match self {
            Pass::Memory(audio) => Ok(Excerpt::whole(audio)),
            Pass::Stream(stream) => {
                let keep = keep.min(frames.start);
                let kept = stft.samples_of(keep..keep + 1, stream.len).start;
                let want = stft.samples_of(frames, stream.len);
                let want = want.start.min(kept)..want.end.max(kept);
                assert!(want.start >= stream.offset, "frames asked in order");
                let drop = (want.start - stream.offset).min(stream.channels[0].len());
                for channel in &mut stream.channels {
                    channel.drain(..drop);
                }
                stream.offset += drop;
                // Samples no frame asked for are decoded and dropped a block at a time.
                let skipping = stream.offset < want.start;
                while stream.offset < want.start {
                    stream.channels.iter_mut().for_each(Vec::clear);
                    let n = stream.reader.read(
                        &mut stream.channels,
                        SCAN_BLOCK.min(want.start - stream.offset),
                    )?;
                    if n == 0 {
                        return Err(changed(&stream.path));
                    }
                    stream.offset += n;
                }
                if skipping {
                    stream.channels.iter_mut().for_each(Vec::clear);
                }
                let have = stream.offset + stream.channels[0].len();
                if want.end > have {
                    let need = want.end - have;
                    if stream.reader.read(&mut stream.channels, need)? < need {
                        return Err(changed(&stream.path));
                    }
                }
                Ok(Excerpt {
                    channels: &stream.channels,
                    offset: stream.offset,
                    len: stream.len,
                })
            }
        }
    }
}

/// Activations written to a file frame by frame (K values each, native-endian `f32`) as the
/// blocks are solved, and read back in order by each rendering pass; removed when dropped.
#[derive(Debug)]
pub(crate) struct Spill {
    path: PathBuf,
    /// Components per frame.
    pub(crate) k: usize,
    /// Frames written.
    pub(crate) frames: usize,
}

impl Spill {
    /// An empty file at `path`.
    pub(crate) fn create(path: PathBuf, k: usize) -> Result<(Spill, SpillWriter)> {
        let file = fs::File::create(&path).map_err(|e| Error::write(&path, e))?;
        Ok((
            Spill {
                path: path.clone(),
                k,
                frames: 0,
            },
            SpillWriter {
                file: BufWriter::with_capacity(1 << 20, file),
                path,
            },
        ))
    }

    /// A reader from the first frame.
    pub(crate) fn reader(&self) -> Result<SpillReader> {
        let file = fs::File::open(&self.path).map_err(Error::Read)?;
        Ok(SpillReader {
            file: BufReader::with_capacity(1 << 20, file),
            bytes: Vec::new(),
            block: Array2::zeros((0, self.k)),
            path: self.path.clone(),
        })
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Appends activations to a [`Spill`].
pub(crate) struct SpillWriter {
    file: BufWriter<fs::File>,
    path: PathBuf,
}

impl SpillWriter {
    /// Appends `h` (K × frames), frame by frame.
    pub(crate) fn append(&mut self, spill: &mut Spill, h: ArrayView2<'_, f32>) -> Result<()> {
        let mut bytes = Vec::with_capacity(h.len() * 4);
        for t in 0..h.ncols() {
            for &a in h.column(t) {
                bytes.extend_from_slice(&a.to_ne_bytes());
            }
        }
        self.file
            .write_all(&bytes)
            .map_err(|e| Error::write(&self.path, e))?;
        spill.frames += h.ncols();
        Ok(())
    }

    /// Flushes what was written.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::write(&self.path, e))
    }
}

/// Reads a [`Spill`] block by block.
pub(crate) struct SpillReader {
    file: BufReader<fs::File>,
    bytes: Vec<u8>,
    /// frames × K.
    block: Array2<f32>,
    path: PathBuf,
}

impl SpillReader {
    /// The next `frames` frames, as K × frames.
    pub(crate) fn next(&mut self, frames: usize) -> Result<ArrayView2<'_, f32>> {
        let k = self.block.ncols();
        self.bytes.resize(frames * k * 4, 0);
        self.file.read_exact(&mut self.bytes).map_err(|e| {
            Error::Read(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", self.path.display()),
            ))
        })?;
        if self.block.nrows() != frames {
            self.block = Array2::zeros((frames, k));
        }
        for (a, b) in self.block.iter_mut().zip(self.bytes.chunks_exact(4)) {
            *a = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(self.block.t())
    }
}

/// Activations kept whole: in memory, K × frames, or in a spill file.
#[derive(Debug)]
pub(crate) enum Stored {
    /// All of H, K × frames.
    Memory(Array2<f32>),
    /// Written frame by frame to a file.
    Spilled(Spill),
}

impl Stored {
    /// A reader of the activations from the first frame.
    ///
    /// # Errors
    /// A spill file that cannot be opened.
    pub(crate) fn reader(&self) -> Result<Activations<'_>> {
        Ok(match self {
            Stored::Memory(h) => Activations::Memory(h.view()),
            Stored::Spilled(spill) => Activations::Spilled(spill.reader()?),
        })
    }

    /// The activations in memory (K × 0 when spilled) and the spill.
    pub(crate) fn split(self, k: usize) -> (Array2<f32>, Option<Spill>) {
        match self {
            Stored::Memory(h) => (h, None),
            Stored::Spilled(spill) => (Array2::zeros((k, 0)), Some(spill)),
        }
    }
}

/// Activations gathered block by block, in frame order, into a [`Stored`].
pub(crate) enum Gathering {
    /// Into K × frames in memory.
    Memory(Array2<f32>),
    /// Appended to a spill file.
    Spilled(Spill, SpillWriter),
}

impl Gathering {
    /// Room for `frames` frames of `k` components: in memory, or in a new file at `spill`.
    ///
    /// # Errors
    /// A spill file that cannot be created.
    pub(crate) fn new(k: usize, frames: usize, spill: Option<PathBuf>) -> Result<Gathering> {
        Ok(match spill {
            Some(path) => {
                let (spill, writer) = Spill::create(path, k)?;
                Gathering::Spilled(spill, writer)
            }
            None => Gathering::Memory(Array2::zeros((k, frames))),
        })
    }

    /// The activations of frames `start..` (K × frames), the frames after those of the last
    /// call.
    ///
    /// # Errors
    /// A spill file that cannot be written.
    pub(crate) fn add(&mut self, start: usize, h: ArrayView2<'_, f32>) -> Result<()> {
        match self {
            Gathering::Memory(all) => all.slice_mut(s![.., start..start + h.ncols()]).assign(&h),
            Gathering::Spilled(spill, writer) => writer.append(spill, h)?,
        }
        Ok(())
    }

    /// Everything gathered.
    ///
    /// # Errors
    /// A spill file that cannot be flushed.
    pub(crate) fn finish(self) -> Result<Stored> {
        Ok(match self {
            Gathering::Memory(h) => Stored::Memory(h),
            Gathering::Spilled(spill, writer) => {
                writer.finish()?;
                Stored::Spilled(spill)
            }
        })
    }
}

/// Where a render pass takes the activations from.
pub(crate) enum Activations<'a> {
    /// All of H, K × frames.
    Memory(ArrayView2<'a, f32>),
    /// Read from a spill file as the pass goes.
    Spilled(SpillReader),
}

impl Activations<'_> {
    /// The activations of frames `start..start + frames` (asked in order), K × frames.
    pub(crate) fn block(&mut self, start: usize, frames: usize) -> Result<ArrayView2<'_, f32>> {
        match self {
            Activations::Memory(h) => Ok(h.slice(s![.., start..start + frames])),
            Activations::Spilled(reader) => reader.next(frames),
        }
    }
}
