//! The three charts of an inspection: the spectrogram, the templates and the piano roll of
//! the activations, each a heat map in decibels with axes and a colour bar, titled with the
//! file's name.
//!
//! Frequency axes have a grid line at every C, labelled `C1`, `C2`, ... at the right of the
//! plot; note axes (with note templates) have one below every C, whose label is always shown.
//! The activations chart outlines every transcribed note (those of `notes.csv` and the MIDI
//! file) on its component's row, from its onset to its offset.

use ndarray::ArrayView2;

use super::Inspection;
use super::notes::{midi_to_hz, note_name};
use crate::formats::plot::{Axis, Heatmap, Image, PlotArea, Rank, Rgb, fit_title};

/// Width in pixels of every chart.
pub const CHART_WIDTH: usize = 1200;
/// Height in pixels of every chart.
pub const CHART_HEIGHT: usize = 700;
/// The outline colour of the transcribed notes on the activations chart; not a colour of
/// the heat map's colour map.
pub const NOTE_BOX: Rgb = [255, 48, 48];

/// Lowest frequency drawn, in Hz (or the first bin above 0 if that is higher).
const MIN_FREQ_HZ: f64 = 20.0;

/// Decibels of `v` relative to `reference`, floored at `floor`.
fn db(v: f32, reference: f32, floor: f32) -> f32 {
    if v > 0.0 && reference > 0.0 {
        (20.0 * (v / reference).log10()).max(floor)
    } else {
        floor
    }
}

/// The frequency axis: from the lowest drawn frequency to the Nyquist frequency, log scale.
fn freq_range(inspection: &Inspection) -> (f64, f64) {
    let nyquist = f64::from(inspection.sample_rate) / 2.0;
    (
        MIN_FREQ_HZ.max(inspection.bin_hz()).min(nyquist / 2.0),
        nyquist,
    )
}

/// Every C strictly between `low` and `high` Hz as (position on a log axis from `low` to
/// `high`, its name: `C1`, `C2`, ...).
fn octave_lines(low: f64, high: f64) -> Vec<(f64, String)> {
    let span = (high / low).ln();
    (0..=12 * 12)
        .step_by(12)
        .map(|m| (midi_to_hz(f64::from(m)), m))
        .filter(|&(hz, _)| hz > low && hz < high)
        .map(|(hz, m)| ((hz / low).ln() / span, note_name(m)))
        .collect()
}

/// For each of `rows` pixel rows (top first) of a log-frequency axis from `low` to `high`,
/// the fractional bin at its centre and the whole bins it spans.
fn row_bins(rows: usize, low: f64, high: f64, bin_hz: f64) -> Vec<(f64, usize, usize)> {
    let ratio = (high / low).ln();
    let at = |r: f64| low * (ratio * (1.0 - r / rows as f64)).exp() / bin_hz;
    (0..rows)
        .map(|r| {
            let (top, bottom) = (at(r as f64), at(r as f64 + 1.0));
            (
                at(r as f64 + 0.5),
                bottom.ceil() as usize,
                top.floor() as usize,
            )
        })
        .collect()
}

/// A column's value in a pixel row: the largest bin the row spans, or, where the row is
/// narrower than a bin, the linear interpolation at its centre.
fn sample_bins(column: &[f32], (centre, first, last): (f64, usize, usize)) -> f32 {
    let n = column.len();
    if first <= last && last < n {
        column[first..=last].iter().copied().fold(0.0, f32::max)
    } else {
        let i = (centre.floor() as usize).min(n - 1);
        let j = (i + 1).min(n - 1);
        let f = (centre - i as f64) as f32;
        column[i] * (1.0 - f) + column[j] * f
    }
}

/// For each of `cols` pixel columns, the frames `a..b` it covers (at least one).
fn column_frames(cols: usize, frames: usize) -> Vec<(usize, usize)> {
    (0..cols)
        .map(|c| {
            let a = c * frames / cols;
            let b = ((c + 1) * frames / cols).max(a + 1).min(frames);
            (a.min(frames - 1), b)
        })
        .collect()
}

/// The time axis of `frames` frames: each frame's column from its start time on, so the
/// axis ends where the last frame's column does.
fn time_axis(inspection: &Inspection, frames: usize) -> Axis {
    Axis::Linear {
        min: 0.0,
        max: frames as f64 * inspection.frame_s(),
    }
}

/// The spectrogram in dB relative to its loudest bin, time across, log frequency up; `name`
/// (the file's) heads the title.
pub fn spectrogram_chart(inspection: &Inspection, name: &str) -> Image {
    let spec = inspection.spectrogram.view(); // (frames, bins)
    let (frames, _) = spec.dim();
    let (low, high) = freq_range(inspection);
    let chart = Heatmap {
        title: fit_title(
            name,
            ": spectrogram (magnitude, all channels summed)",
            CHART_WIDTH,
        ),
        x: time_axis(inspection, frames),
        x_label: "time (s)".into(),
        y: Axis::Log {
            min: low,
            max: high,
        },
        y_label: "frequency (Hz)".into(),
        colour_min: -80.0,
        colour_max: 0.0,
        colour_label: "level (dB re. max)".into(),
        x_grid: Vec::new(),
        y_grid: octave_lines(low, high),
    };
    let area = chart.plot_area(CHART_WIDTH, CHART_HEIGHT);
    let peak = spec.iter().copied().fold(0.0, f32::max);
    let rows = row_bins(area.height, low, high, inspection.bin_hz());
    // Each pixel column holds the largest magnitude of its frames, bin by bin.
    let columns: Vec<Vec<f32>> = column_frames(area.width, frames)
        .into_iter()
        .map(|(a, b)| max_over_frames(spec, a, b))
        .collect();
    chart.render(CHART_WIDTH, CHART_HEIGHT, &mut |c, r| {
        db(sample_bins(&columns[c], rows[r]), peak, -80.0)
    })
}

fn max_over_frames(spec: ArrayView2<f32>, a: usize, b: usize) -> Vec<f32> {
    let mut out = spec.row(a).to_vec();
    for t in a + 1..b {
        for (o, &v) in out.iter_mut().zip(spec.row(t)) {
            *o = o.max(v);
        }
    }
    out
}

/// Components ordered from the lowest pitch up: note templates in note order, free
/// components by estimated pitch, unpitched ones last.
fn pitch_order(inspection: &Inspection) -> Vec<usize> {
    let key = |i: usize| {
        let c = &inspection.components[i];
        match (c.note, c.pitch) {
            (Some(m), _) => (0, midi_to_hz(f64::from(m))),
            (None, Some(p)) => (1, p.f0_hz),
            (None, None) => (2, i as f64),
        }
    };
    let mut order: Vec<usize> = (0..inspection.components.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    order
}

/// A component's label: the note of a note template, else its id and estimated pitch.
fn label(inspection: &Inspection, i: usize) -> String {
    let c = &inspection.components[i];
    if c.note.is_some() {
        c.id.clone()
    } else {
        format!("{} {}", c.id, c.pitch_label())
    }
}

/// How much a label is worth on a crowded axis: every C first, then the notes that sound and
/// every free component.
fn rank(inspection: &Inspection, i: usize) -> Rank {
    let c = &inspection.components[i];
    match c.note {
        Some(m) if m % 12 == 0 => Rank::First,
        Some(_) if c.active.is_empty() => Rank::Minor,
        _ => Rank::Major,
    }
}

/// One category per component, in `order`, labelled with its note or pitch.
fn component_axis(inspection: &Inspection, order: &[usize]) -> Axis {
    Axis::Categories(
        order
            .iter()
            .map(|&i| (label(inspection, i), rank(inspection, i)))
            .collect(),
    )
}

/// The positions on a component axis in `order` where a C template's cell starts: its
/// octave lines.
fn note_octave_positions(inspection: &Inspection, order: &[usize]) -> Vec<f64> {
    let k = order.len() as f64;
    order
        .iter()
        .enumerate()
        .filter(|&(_, &i)| inspection.components[i].note.is_some_and(|m| m % 12 == 0))
        .map(|(j, _)| j as f64 / k)
        .collect()
}

/// Every template in dB relative to its own peak, one column per component from the lowest
/// pitch to the highest, log frequency up; `name` (the file's) heads the title.
pub fn templates_chart(inspection: &Inspection, name: &str) -> Image {
    let order = pitch_order(inspection);
    let (low, high) = freq_range(inspection);
    let chart = Heatmap {
        title: fit_title(
            name,
            ": templates (spectrum of each component)",
            CHART_WIDTH,
        ),
        x: component_axis(inspection, &order),
        x_label: if inspection.has_note_templates() {
            "note template".into()
        } else {
            "component (estimated pitch)".into()
        },
        y: Axis::Log {
            min: low,
            max: high,
        },
        y_label: "frequency (Hz)".into(),
        colour_min: -60.0,
        colour_max: 0.0,
        colour_label: "level (dB re. template peak)".into(),
        x_grid: note_octave_positions(inspection, &order),
        y_grid: octave_lines(low, high),
    };
    let area = chart.plot_area(CHART_WIDTH, CHART_HEIGHT);
    let rows = row_bins(area.height, low, high, inspection.bin_hz());
    let columns: Vec<(Vec<f32>, f32)> = order
        .iter()
        .map(|&i| {
            let col = inspection.nmf.w.column(i).to_vec();
            let peak = col.iter().copied().fold(0.0, f32::max);
            (col, peak)
        })
        .collect();
    let k = columns.len();
    chart.render(CHART_WIDTH, CHART_HEIGHT, &mut |c, r| {
        let (col, peak) = &columns[(c * k / area.width).min(k - 1)];
        db(sample_bins(col, rows[r]), *peak, -60.0)
    })
}

/// The piano roll: the activations in dB relative to the loudest, time across, one row per
/// component from the lowest pitch at the bottom, every transcribed note outlined in
/// [`NOTE_BOX`]; `name` (the file's) heads the title.
pub fn activations_chart(inspection: &Inspection, name: &str) -> Image {
    let order = pitch_order(inspection);
    let h = inspection.nmf.h.view();
    let frames = h.ncols();
    let chart = Heatmap {
        title: fit_title(
            name,
            ": activations (piano roll), red boxes: detected notes",
            CHART_WIDTH,
        ),
        x: time_axis(inspection, frames),
        x_label: "time (s)".into(),
        y: component_axis(inspection, &order),
        y_label: if inspection.has_note_templates() {
            "note".into()
        } else {
            "component (estimated pitch)".into()
        },
        colour_min: -40.0,
        colour_max: 0.0,
        colour_label: "activation (dB re. max)".into(),
        x_grid: Vec::new(),
        y_grid: note_octave_positions(inspection, &order)
            .into_iter()
            .map(|p| (p, String::new()))
            .collect(),
    };
    let area = chart.plot_area(CHART_WIDTH, CHART_HEIGHT);
    let peak = h.iter().copied().fold(0.0, f32::max);
    let spans = column_frames(area.width, frames);
    // Each component's loudest activation in each pixel column, found once (a component has
    // many pixel rows).
    let column_peaks: Vec<Vec<f32>> = h
        .rows()
        .into_iter()
        .map(|row| {
            spans
                .iter()
                .map(|&(a, b)| {
                    row.slice(ndarray::s![a..b])
                        .iter()
                        .copied()
                        .fold(0.0, f32::max)
                })
                .collect()
        })
        .collect();
    let k = order.len();
    let mut image = chart.render(CHART_WIDTH, CHART_HEIGHT, &mut |c, r| {
        // Rows counted from the bottom, the lowest pitch's first.
        let from_bottom = area.height - 1 - r;
        let component = order[(from_bottom * k / area.height).min(k - 1)];
        db(column_peaks[component][c], peak, -40.0)
    });
    let duration = frames as f64 * inspection.frame_s();
    // Two pixels thick, the inner one on the edge of the note's cells, so that the box
    // stands out at a glance and hides none of the note.
    for (x, y, w, h) in note_boxes(inspection, &order, area, duration) {
        let (x, y) = (x as isize, y as isize);
        image.outline_rect(x, y, w, h, NOTE_BOX);
        image.outline_rect(x - 1, y - 1, w + 2, h + 2, NOTE_BOX);
    }
    image
}

/// The box of every transcribed note on the activations chart, as (left, top, width,
/// height) in pixels: from the column of its onset to that of its offset, over the rows of
/// its component, `order` giving the components from the bottom row up.
fn note_boxes(
    inspection: &Inspection,
    order: &[usize],
    area: PlotArea,
    duration: f64,
) -> Vec<(usize, usize, usize, usize)> {
    let k = order.len();
    let mut place = vec![0; k];
    for (j, &i) in order.iter().enumerate() {
        place[i] = j;
    }
    inspection
        .transcription()
        .into_iter()
        .map(|(i, note)| {
            let j = place[i];
            let bottom = area.row_at(j as f64 / k as f64);
            let top = if j + 1 == k {
                area.y
            } else {
                (area.row_at((j + 1) as f64 / k as f64) + 1).min(bottom)
            };
            let left = area.column_at(note.onset_s / duration);
            let right = area.column_at(note.offset_s / duration).max(left);
            (left, top, right - left + 1, bottom - top + 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octave_lines_are_at_every_c_of_the_range() {
        let (low, high) = (20.0, 22_050.0);
        let lines = octave_lines(low, high);
        let names: Vec<&str> = lines.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            names,
            ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"]
        );
        for (octave, (p, _)) in (1..).zip(&lines) {
            let hz = low * (high / low).powf(*p);
            let c = 440.0 * 2f64.powf((12.0 * f64::from(octave + 1) - 69.0) / 12.0);
            assert!((hz / c - 1.0).abs() < 1e-12, "C{octave}: {hz} Hz");
        }
        assert!(octave_lines(20.0, 30.0).is_empty());
    }
}
