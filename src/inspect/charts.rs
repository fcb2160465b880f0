//! The three charts of an inspection: the spectrogram, the templates and the piano roll of
//! the activations, each a heat map in decibels with axes and a colour bar, titled with the
//! file's name.
//!
//! Frequency axes have a grid line at every C, labelled `C1`, `C2`, ... at the right of the
//! plot; note axes (with note templates) have one below every C, whose label is always shown.
//! The activations chart outlines every transcribed note (those of `notes.csv` and the MIDI
//! file) on its component's row, from its onset to its offset.

use super::notes::{midi_to_hz, note_name};
use super::{Component, Overview};
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
fn freq_range(sample_rate: u32, n_fft: usize) -> (f64, f64) {
    let nyquist = f64::from(sample_rate) / 2.0;
    let bin_hz = f64::from(sample_rate) / n_fft as f64;
    (MIN_FREQ_HZ.max(bin_hz).min(nyquist / 2.0), nyquist)
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

/// The time axis of `frames` frames: each frame's column from its start time on, so the
/// axis ends where the last frame's column does.
fn time_axis(overview: &Overview) -> Axis {
    Axis::Linear {
        min: 0.0,
        max: overview.frames as f64 * overview.frame_s(),
    }
}

/// The spectrogram chart's heat map, without its title (which takes no room from the plot),
/// over a time axis `x`.
fn spectrogram_heatmap(sample_rate: u32, n_fft: usize, title: String, x: Axis) -> Heatmap {
    let (low, high) = freq_range(sample_rate, n_fft);
    Heatmap {
        title,
        x,
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
    }
}

/// The pixel columns of the spectrogram chart of a recording at `sample_rate` analysed with
/// `n_fft`-point frames.
pub(crate) fn spectrogram_columns(sample_rate: u32, n_fft: usize) -> usize {
    let x = Axis::Linear { min: 0.0, max: 1.0 };
    spectrogram_heatmap(sample_rate, n_fft, String::new(), x)
        .plot_area(CHART_WIDTH, CHART_HEIGHT)
        .width
}

/// The spectrogram in dB relative to its loudest bin, time across, log frequency up; `name`
/// (the file's) heads the title.
pub fn spectrogram_chart(overview: &Overview, name: &str) -> Image {
    let title = fit_title(
        name,
        ": spectrogram (magnitude, all channels summed)",
        CHART_WIDTH,
    );
    let chart = spectrogram_heatmap(
        overview.sample_rate,
        overview.n_fft,
        title,
        time_axis(overview),
    );
    let (low, high) = freq_range(overview.sample_rate, overview.n_fft);
    let area = chart.plot_area(CHART_WIDTH, CHART_HEIGHT);
    // Each pixel column holds the largest magnitude of its frames, bin by bin.
    let columns = &overview.spectrum;
    assert_eq!(columns.nrows(), area.width, "one row per pixel column");
    let peak = columns.iter().copied().fold(0.0, f32::max);
    let rows = row_bins(area.height, low, high, overview.bin_hz());
    chart.render(CHART_WIDTH, CHART_HEIGHT, &mut |c, r| {
        let column = columns.row(c);
        db(
            sample_bins(column.as_slice().expect("standard layout"), rows[r]),
            peak,
            -80.0,
        )
    })
}

/// Components ordered from the lowest pitch up: note templates in note order, free
/// components by estimated pitch, unpitched ones last.
fn pitch_order(components: &[Component]) -> Vec<usize> {
    let key = |i: usize| {
        let c = &components[i];
        match (c.note, c.pitch) {
            (Some(m), _) => (0, midi_to_hz(f64::from(m))),
            (None, Some(p)) => (1, p.f0_hz),
            (None, None) => (2, i as f64),
        }
    };
    let mut order: Vec<usize> = (0..components.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    order
}

/// A component's label: the note of a note template, else its id and estimated pitch.
fn label(c: &Component) -> String {
    if c.note.is_some() {
        c.id.clone()
    } else {
        format!("{} {}", c.id, c.pitch_label())
    }
}

/// How much a label is worth on a crowded axis: every C first, then the notes that sound and
/// every free component.
fn rank(c: &Component) -> Rank {
    match c.note {
        Some(m) if m % 12 == 0 => Rank::First,
        Some(_) if c.active.is_empty() => Rank::Minor,
        _ => Rank::Major,
    }
}

/// One category per component, in `order`, labelled with its note or pitch.
fn component_axis(components: &[Component], order: &[usize]) -> Axis {
    Axis::Categories(
        order
            .iter()
            .map(|&i| (label(&components[i]), rank(&components[i])))
            .collect(),
    )
}

/// The positions on a component axis in `order` where a C template's cell starts: its
/// octave lines.
fn note_octave_positions(components: &[Component], order: &[usize]) -> Vec<f64> {
    let k = order.len() as f64;
    order
        .iter()
        .enumerate()
        .filter(|&(_, &i)| components[i].note.is_some_and(|m| m % 12 == 0))
        .map(|(j, _)| j as f64 / k)
        .collect()
}

/// The label of a component axis: notes, or components with their pitch.
fn components_label(notes_mode: bool, notes: &str) -> String {
    if notes_mode {
        notes.into()
    } else {
        "component (estimated pitch)".into()
    }
}

/// Every template in dB relative to its own peak, one column per component from the lowest
/// pitch to the highest, log frequency up; `name` (the file's) heads the title.
pub fn templates_chart(overview: &Overview, name: &str) -> Image {
    let components = &overview.components;
    let order = pitch_order(components);
    let (low, high) = freq_range(overview.sample_rate, overview.n_fft);
    let chart = Heatmap {
        title: fit_title(
            name,
            ": templates (spectrum of each component)",
            CHART_WIDTH,
        ),
        x: component_axis(components, &order),
        x_label: components_label(overview.notes_mode, "note template"),
        y: Axis::Log {
            min: low,
            max: high,
        },
        y_label: "frequency (Hz)".into(),
        colour_min: -60.0,
        colour_max: 0.0,
        colour_label: "level (dB re. template peak)".into(),
        x_grid: note_octave_positions(components, &order),
        y_grid: octave_lines(low, high),
    };
    let area = chart.plot_area(CHART_WIDTH, CHART_HEIGHT);
    let rows = row_bins(area.height, low, high, overview.bin_hz());
    let columns: Vec<(Vec<f32>, f32)> = order
        .iter()
        .map(|&i| {
            let col = overview.w.column(i).to_vec();
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

/// The activations chart's heat map of `components` over the time axis `x`.
fn activations_heatmap(
    components: &[Component],
    order: &[usize],
    notes_mode: bool,
    title: String,
    x: Axis,
) -> Heatmap {
    Heatmap {
        title,
        x,
        x_label: "time (s)".into(),
        y: component_axis(components, order),
        y_label: components_label(notes_mode, "note"),
        colour_min: -40.0,
        colour_max: 0.0,
        colour_label: "activation (dB re. max)".into(),
        x_grid: Vec::new(),
        y_grid: note_octave_positions(components, order)
            .into_iter()
            .map(|p| (p, String::new()))
            .collect(),
    }
}

/// The pixel columns of the activations chart of `components`.
pub(crate) fn activation_columns(components: &[Component], notes_mode: bool) -> usize {
    let order = pitch_order(components);
    let x = Axis::Linear { min: 0.0, max: 1.0 };
    activations_heatmap(components, &order, notes_mode, String::new(), x)
        .plot_area(CHART_WIDTH, CHART_HEIGHT)
        .width
}

/// The piano roll: the activations in dB relative to the loudest, time across, one row per
/// component from the lowest pitch at the bottom, every transcribed note outlined in
/// [`NOTE_BOX`]; `name` (the file's) heads the title.
pub fn activations_chart(overview: &Overview, name: &str) -> Image {
    let components = &overview.components;
    let order = pitch_order(components);
    let title = fit_title(
        name,
        ": activations (piano roll), red boxes: detected notes",
        CHART_WIDTH,
    );
    let chart = activations_heatmap(
        components,
        &order,
        overview.notes_mode,
        title,
        time_axis(overview),
    );
    let area = chart.plot_area(CHART_WIDTH, CHART_HEIGHT);
    // Each component's loudest activation in each pixel column, columns × K.
    let column_peaks = &overview.activations;
    assert_eq!(column_peaks.nrows(), area.width, "one row per pixel column");
    let peak = column_peaks.iter().copied().fold(0.0, f32::max);
    let k = order.len();
    let mut image = chart.render(CHART_WIDTH, CHART_HEIGHT, &mut |c, r| {
        // Rows counted from the bottom, the lowest pitch's first.
        let from_bottom = area.height - 1 - r;
        let component = order[(from_bottom * k / area.height).min(k - 1)];
        db(column_peaks[[c, component]], peak, -40.0)
    });
    let duration = overview.frames as f64 * overview.frame_s();
    // Two pixels thick, the inner one on the edge of the note's cells, so that the box
    // stands out at a glance and hides none of the note.
    for (x, y, w, h) in note_boxes(overview, &order, area, duration) {
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
    overview: &Overview,
    order: &[usize],
    area: PlotArea,
    duration: f64,
) -> Vec<(usize, usize, usize, usize)> {
    let k = order.len();
    let mut place = vec![0; k];
    for (j, &i) in order.iter().enumerate() {
        place[i] = j;
    }
    overview
        .transcription
        .iter()
        .map(|(i, note)| {
            let j = place[*i];
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
