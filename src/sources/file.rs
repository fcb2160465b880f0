//! The template file: a NumPy `.npz` archive holding [`Templates`] with everything needed to
//! use them again (see the README for its arrays), so numpy users can load and plot it:
//! `np.load("piano.npz")["W"]`.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array, Dimension, Ix2, Ix3};
use realfft::num_complex::Complex32;

use super::Templates;
use crate::error::{Error, ParamError, Result};
use crate::formats::excerpt;
use crate::formats::npy::{self, NpyArray};
use crate::nmf::{Loss, MAX_TEMPLATE_FRAMES};
use crate::spectral::Window;

/// The value of the `format` entry that marks a demix template file.
const FORMAT: &str = "demix-templates";
/// Version of the template file layout.
const VERSION: i64 = 1;

impl Templates {
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

/// `a` in standard (row-major) layout, copied only when it is not.
fn standard<D: Dimension>(a: Array<f32, D>) -> Array<f32, D> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectral::StftParams;
    use ndarray::{Array2, Array3};

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
