//! The three charts of an inspection: the spectrogram, the templates and the piano roll of
//! the activations, each a heat map in decibels with axes and a colour bar.

use ndarray::ArrayView2;

use super::Inspection;
use crate::formats::plot::{Axis, Heatmap, Image};

/// Width in pixels of every chart.
pub const CHART_WIDTH: usize = 1200;
/// Height in pixels of every chart.
pub const CHART_HEIGHT: usize = 700;

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

/// The spectrogram in dB relative to its loudest bin, time across, log frequency up.
pub fn spectrogram_chart(inspection: &Inspection) -> Image {
    let spec = inspection.spectrogram.view(); // (frames, bins)
    let (frames, _) = spec.dim();
    let (low, high) = freq_range(inspection);
    let duration = frames.saturating_sub(1) as f64 * inspection.frame_s();
    let chart = Heatmap {
        title: "Spectrogram (magnitude, all channels summed)".into(),
        x: Axis::Linear {
            min: 0.0,
            max: duration,
        },
        x_label: "time (s)".into(),
        y: Axis::Log {
            min: low,
            max: high,
        },
        y_label: "frequency (Hz)".into(),
        colour_min: -80.0,
        colour_max: 0.0,
        colour_label: "level (dB re. max)".into(),
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
            (Some(m), _) => (0, super::notes::midi_to_hz(f64::from(m))),
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

/// Whether a label is worth a place on a crowded axis: every free component, and the notes
/// that sound or are a C.
fn is_major(inspection: &Inspection, i: usize) -> bool {
    let c = &inspection.components[i];
    match c.note {
        Some(m) => !c.active.is_empty() || m % 12 == 0,
        None => true,
    }
}

/// Every template in dB relative to its own peak, one column per component from the lowest
/// pitch to the highest, log frequency up.
pub fn templates_chart(inspection: &Inspection) -> Image {
    let order = pitch_order(inspection);
    let (low, high) = freq_range(inspection);
    let chart = Heatmap {
        title: "Templates (spectrum of each component)".into(),
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

/// One category per component, in `order`, labelled with its note or pitch.
fn component_axis(inspection: &Inspection, order: &[usize]) -> Axis {
    Axis::Categories(
        order
            .iter()
            .map(|&i| (label(inspection, i), is_major(inspection, i)))
            .collect(),
    )
}

/// The piano roll: the activations in dB relative to the loudest, time across, one row per
/// component from the lowest pitch at the bottom.
pub fn activations_chart(inspection: &Inspection) -> Image {
    let order = pitch_order(inspection);
    let h = inspection.nmf.h.view();
    let frames = h.ncols();
    let duration = frames.saturating_sub(1) as f64 * inspection.frame_s();
    let chart = Heatmap {
        title: "Activations (piano roll)".into(),
        x: Axis::Linear {
            min: 0.0,
            max: duration,
        },
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
    chart.render(CHART_WIDTH, CHART_HEIGHT, &mut |c, r| {
        // Row 0 is the top: the highest pitch.
        let component = order[k - 1 - (r * k / area.height).min(k - 1)];
        db(column_peaks[component][c], peak, -40.0)
    })
}
