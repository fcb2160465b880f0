//! The charts of `demix inspect`, decoded from their PNG files and read as a person would:
//! the title names the file, the octave lines sit at the Cs of the axes, and every detected
//! note is outlined at its time and pitch.

use std::fs;
use std::io::Read;
use std::ops::Range;
use std::sync::LazyLock;

use demix::audio::{OutputFormat, write_wav};
use demix::formats::npy::load_npy;
use demix::formats::plot::{GRID, Image, text_height, text_width};
use demix::inspect::notes::midi_to_hz;
use demix::inspect::{
    CHART_HEIGHT, CHART_WIDTH, InspectOutput, InspectParams, NOTE_BOX, inspect_file,
};

use crate::inspect::sequence_audio;

type Rgb = [u8; 3];
const BLACK: Rgb = [0, 0, 0];

/// Width, height and RGB rows of a PNG as `encode_png` writes it (8-bit RGB, Sub filter).
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<Vec<Rgb>>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let mut pos = 8;
    let (mut width, mut height, mut idat) = (0, 0, Vec::new());
    while pos < bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        let crc = u32::from_be_bytes(bytes[pos + 8 + len..pos + 12 + len].try_into().unwrap());
        let mut h = crc32fast::Hasher::new();
        h.update(kind);
        h.update(data);
        assert_eq!(
            h.finalize(),
            crc,
            "CRC of {:?}",
            String::from_utf8_lossy(kind)
        );
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(&data[8..10], &[8, 2], "8-bit RGB");
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(idat.as_slice())
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(raw.len(), height * (1 + 3 * width));
    let rows = raw
        .chunks(1 + 3 * width)
        .map(|line| {
            assert_eq!(line[0], 1, "Sub filter");
            let mut prev = [0u8; 3];
            line[1..]
                .chunks(3)
                .map(|px| {
                    let p = [
                        px[0].wrapping_add(prev[0]),
                        px[1].wrapping_add(prev[1]),
                        px[2].wrapping_add(prev[2]),
                    ];
                    prev = p;
                    p
                })
                .collect()
        })
        .collect();
    (width, height, rows)
}

/// The three charts of one inspection of `seq.wav` (note templates C3-C6), with the notes
/// of its `notes.csv` as (onset s, offset s, MIDI note) and its frame times.
struct Charts {
    spectrogram: Vec<Vec<Rgb>>,
    templates: Vec<Vec<Rgb>>,
    activations: Vec<Vec<Rgb>>,
    notes: Vec<(f64, f64, u8)>,
    times: Vec<f64>,
}

impl Charts {
    /// Each chart with its name, the two with a frequency axis first.
    fn all(&self) -> [(&'static str, &[Vec<Rgb>]); 3] {
        [
            ("spectrogram", &self.spectrogram),
            ("templates", &self.templates),
            ("activations", &self.activations),
        ]
    }
}

/// The lowest note of the inspection, and how many there are.
const LOWEST: u8 = 48;
const NOTES: usize = 37;

static CHARTS: LazyLock<Charts> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("seq.wav");
    write_wav(&input, &sequence_audio(), OutputFormat::Int16).unwrap();
    let out = dir.path().join("out");
    let params = InspectParams::notes("C3-C6".parse().unwrap());
    inspect_file(
        &input,
        &out,
        &params,
        &InspectOutput::default(),
        &mut |_| {},
    )
    .unwrap();
    let png = |name: &str| {
        let (width, height, rows) = decode_png(&fs::read(out.join(name)).unwrap());
        assert_eq!((width, height), (CHART_WIDTH, CHART_HEIGHT), "{name}");
        rows
    };
    let notes = fs::read_to_string(out.join("notes.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    let times = load_npy(&out.join("time_s.npy")).unwrap().to_f64().unwrap();
    Charts {
        spectrogram: png("spectrogram.png"),
        templates: png("templates.png"),
        activations: png("activations.png"),
        notes,
        times: times.iter().copied().collect(),
    }
});

/// Every top-left corner where `text`, drawn in black at scale 2 by the chart's own font,
/// appears within the columns `xs` and rows `ys` of `rows`, with white around it (3 pixels
/// beside, 1 above and below) so that `C1` is not found inside `C10`.
fn find_text(
    rows: &[Vec<Rgb>],
    text: &str,
    xs: Range<usize>,
    ys: Range<usize>,
) -> Vec<(usize, usize)> {
    let (w, h) = (text_width(text, 2), text_height(2));
    let (mx, my) = (3, 1);
    let mut stamp = Image::new(w + 2 * mx, h + 2 * my, [255, 255, 255]);
    stamp.text(mx as isize, my as isize, text, 2, BLACK);
    let ink: Vec<(usize, usize, bool)> = (0..stamp.height())
        .flat_map(|y| (0..stamp.width()).map(move |x| (x, y)))
        .map(|(x, y)| (x, y, stamp.pixel(x, y) == BLACK))
        .collect();
    let mut found = Vec::new();
    let ys = ys.start.saturating_sub(my)..ys.end.min(rows.len()) + my;
    let xs = xs.start.saturating_sub(mx)..xs.end.min(rows[0].len()) + mx;
    for y in ys.start..(ys.end.min(rows.len()) + 1).saturating_sub(stamp.height()) {
        for x in xs.start..(xs.end.min(rows[0].len()) + 1).saturating_sub(stamp.width()) {
            if ink
                .iter()
                .all(|&(dx, dy, on)| (rows[y + dy][x + dx] == BLACK) == on)
            {
                found.push((x + mx, y + my));
            }
        }
    }
    found
}

/// The one place of `text` within the columns `xs` and rows `ys` of `rows`: its left edge and
/// the middle of its capital letters' height, where a tick label is centred on its tick.
#[track_caller]
fn text_at(rows: &[Vec<Rgb>], text: &str, xs: Range<usize>, ys: Range<usize>) -> (usize, usize) {
    let found = find_text(rows, text, xs, ys);
    assert_eq!(found.len(), 1, "{text:?} found at {found:?}");
    let (x, y) = found[0];
    (x, y + 7)
}

/// The plot area `(x, y, width, height)`: inside the black frame, the longest black rows.
fn plot_area(rows: &[Vec<Rgb>]) -> (usize, usize, usize, usize) {
    let longest_run = |row: &[Rgb]| {
        let (mut best, mut start, mut run) = ((0, 0), 0, 0);
        for (x, &p) in row.iter().enumerate() {
            if p == BLACK {
                if run == 0 {
                    start = x;
                }
                run += 1;
                if run > best.1 {
                    best = (start, run);
                }
            } else {
                run = 0;
            }
        }
        best
    };
    let framed: Vec<(usize, (usize, usize))> = rows
        .iter()
        .enumerate()
        .map(|(y, r)| (y, longest_run(r)))
        .filter(|(_, (_, len))| *len > CHART_WIDTH / 2)
        .collect();
    assert_eq!(framed.len(), 2, "the top and bottom of the frame");
    let (top, (left, len)) = framed[0];
    let bottom = framed[1].0;
    (left + 1, top + 1, len - 2, bottom - top - 1)
}

/// The rows (image y) crossed by a horizontal grid line, and the columns by a vertical one.
fn grid_lines(rows: &[Vec<Rgb>]) -> (Vec<usize>, Vec<usize>) {
    let long = |run: &mut dyn Iterator<Item = Rgb>| {
        let mut best = 0;
        let mut n = 0;
        for p in run {
            n = if p == GRID { n + 1 } else { 0 };
            best = best.max(n);
        }
        best >= 200
    };
    let horizontal = (0..rows.len())
        .filter(|&y| long(&mut rows[y].iter().copied()))
        .collect();
    let vertical = (0..rows[0].len())
        .filter(|&x| long(&mut rows.iter().map(|r| r[x])))
        .collect();
    (horizontal, vertical)
}

#[test]
fn charts_have_the_expected_size_and_are_not_blank() {
    for (name, rows) in CHARTS.all() {
        let mut colours: Vec<Rgb> = rows.iter().flatten().copied().collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 30, "{name}: {} colours", colours.len());
        // Text and ticks are black; the plot shows the bright end of the colour map somewhere.
        assert!(colours.contains(&BLACK), "{name}: no text");
        let bright = rows
            .iter()
            .flatten()
            .filter(|p| p[0] > 200 && p[1] > 200 && p[2] < 100)
            .count();
        assert!(bright > 100, "{name}: {bright} bright pixels");
    }
}

#[test]
fn every_chart_is_titled_with_the_file_name() {
    for (name, rows) in CHARTS.all() {
        let (_, top, _, _) = plot_area(rows);
        text_at(rows, &format!("seq.wav: {name}"), 0..CHART_WIDTH, 0..top);
    }
}

/// The frequency of image row `y` on a log axis, read from where its tick labels `100` and
/// `1k` are, left of the plot.
fn frequency_at(rows: &[Vec<Rgb>], y: usize) -> f64 {
    let (ax, _, _, _) = plot_area(rows);
    let (_, y100) = text_at(rows, "100", 0..ax, 0..CHART_HEIGHT);
    let (_, y1k) = text_at(rows, "1k", 0..ax, 0..CHART_HEIGHT);
    100.0 * 10f64.powf((y100 as f64 - y as f64) / (y100 as f64 - y1k as f64))
}

#[test]
fn frequency_axes_have_a_line_at_every_c_labelled_with_its_octave() {
    for (name, rows) in &CHARTS.all()[..2] {
        let (ax, ay, aw, ah) = plot_area(rows);
        let (lines, _) = grid_lines(rows);
        // C1 (32.7 Hz) to C9 (8.4 kHz) lie between 20 Hz and the Nyquist frequency, 11 kHz.
        assert_eq!(lines.len(), 9, "{name}: {lines:?}");
        for (i, &y) in lines.iter().rev().enumerate() {
            let octave = i + 1;
            let right_of_plot = ax + aw..CHART_WIDTH;
            let (_, label_y) = text_at(rows, &format!("C{octave}"), right_of_plot, ay..ay + ah);
            assert!(
                label_y.abs_diff(y) <= 1,
                "{name}: C{octave} at {label_y}, line at {y}"
            );
            let hz = frequency_at(rows, y);
            let c = midi_to_hz(12.0 * (octave as f64 + 1.0));
            assert!(
                (hz / c - 1.0).abs() < 0.03,
                "{name}: C{octave} line at {hz:.1} Hz, not {c:.1}"
            );
        }
    }
}

#[test]
fn note_axes_label_every_c_with_an_octave_line_at_its_edge() {
    let charts = &*CHARTS;
    // Activations: a row per note from C3 at the bottom; the line is the bottom row of C's.
    let rows = &charts.activations;
    let (ax, ay, _, ah) = plot_area(rows);
    let band = ah as f64 / NOTES as f64;
    let (lines, _) = grid_lines(rows);
    assert_eq!(
        lines.len(),
        3,
        "C4, C5, C6 (C3 is the bottom edge): {lines:?}"
    );
    for (line, octave) in lines.iter().rev().zip(4..) {
        let (_, label_y) = text_at(rows, &format!("C{octave}"), 0..ax, 0..CHART_HEIGHT);
        let below_centre = *line as f64 - label_y as f64;
        assert!(
            below_centre > 0.0 && below_centre <= band / 2.0 + 1.0,
            "C{octave}: label at {label_y}, line at {line}, rows of {band:.1} px"
        );
        // The line's row (its centre half a pixel below its top) is where C's row begins on
        // the axis: 12 semitones per octave from C3.
        let expected = (ay + ah) as f64 - 12.0 * (octave - 3) as f64 * band;
        assert!(
            (*line as f64 + 0.5 - expected).abs() <= 1.5,
            "C{octave}: {line} vs {expected:.1}"
        );
    }
    text_at(rows, "C3", 0..ax, 0..CHART_HEIGHT);

    // Templates: a column per note from C3 at the left; the line is the first column of C's.
    let rows = &charts.templates;
    let (ax, ay, aw, ah) = plot_area(rows);
    let band = aw as f64 / NOTES as f64;
    let (_, columns) = grid_lines(rows);
    assert_eq!(columns.len(), 3, "C4, C5, C6: {columns:?}");
    for (column, octave) in columns.iter().zip(4..) {
        let label = format!("C{octave}");
        let (x, _) = text_at(rows, &label, 0..CHART_WIDTH, ay + ah..CHART_HEIGHT);
        let centre = x as f64 + text_width(&label, 2) as f64 / 2.0;
        let expected = ax as f64 + 12.0 * (octave - 3) as f64 * band;
        assert!(
            (*column as f64 + 0.5 - expected).abs() <= 1.5,
            "{label}: {column} vs {expected:.1}"
        );
        assert!(
            (centre - (expected + band / 2.0)).abs() <= 2.0,
            "{label} centred on its column"
        );
    }
}

#[test]
fn every_detected_note_is_outlined_at_its_time_and_pitch() {
    let charts = &*CHARTS;
    let rows = &charts.activations;
    assert!(charts.notes.len() >= 10, "{} notes", charts.notes.len());
    let (ax, ay, aw, ah) = plot_area(rows);
    // The time axis runs to the end of the last frame.
    let duration = charts.times.len() as f64 * (charts.times[1] - charts.times[0]);
    let x_of = |t: f64| ax as f64 + t / duration * aw as f64;
    let band = ah as f64 / NOTES as f64;
    let red = |x: usize, y: usize| rows[y][x] == NOTE_BOX;
    let mut boxes = Vec::new();
    for &(onset, offset, pitch) in &charts.notes {
        let j = f64::from(pitch - LOWEST);
        let (left, right) = (x_of(onset), x_of(offset));
        let (top, bottom) = (
            (ay + ah) as f64 - (j + 1.0) * band,
            (ay + ah) as f64 - j * band,
        );
        let near = |v: f64| (v.round() as usize).saturating_sub(2)..=v.round() as usize + 2;
        let inner_rows = top.ceil() as usize + 2..bottom.floor() as usize - 2;
        let inner_cols = left.ceil() as usize + 2..right.floor() as usize - 2;
        let note = format!("{pitch} at {onset:.3}..{offset:.3} s");
        // A red edge of the box lies within 2 pixels of each side of the note's cells.
        let column_red = |x: usize| inner_rows.clone().all(|y| red(x, y));
        let row_red = |y: usize| inner_cols.clone().all(|x| red(x, y));
        for (side, found) in [
            ("left", near(left).any(&column_red)),
            ("right", near(right).any(&column_red)),
            ("top", near(top).any(&row_red)),
            ("bottom", near(bottom).any(&row_red)),
        ] {
            assert!(found, "{side} of {note}");
        }
        boxes.push((near(left), near(right), near(top), near(bottom)));
    }
    // And nothing else is red: no box without a note.
    for (y, row) in rows.iter().enumerate() {
        for x in (0..row.len()).filter(|&x| red(x, y)) {
            let on_a_box = boxes.iter().any(|(l, r, t, b)| {
                let (within_x, within_y) = (
                    *l.start() <= x && x <= *r.end(),
                    *t.start() <= y && y <= *b.end(),
                );
                (within_y && (l.contains(&x) || r.contains(&x)))
                    || (within_x && (t.contains(&y) || b.contains(&y)))
            });
            assert!(on_a_box, "a red pixel at ({x}, {y}) outlines no note");
        }
    }
}
