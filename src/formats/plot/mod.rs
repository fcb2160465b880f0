//! A small raster plotter for heat maps with axes, tick labels, a title and a colour bar,
//! written as PNG. It needs no system font: text is drawn with an embedded 5×7 bitmap font.
//!
//! Why not `plotters`: its bitmap backend pulls in an image stack and, for text, either
//! system fonts (absent on CI machines) or a TrueType rasterizer. What demix draws is one kind
//! of chart, and a few hundred lines draw it with no dependency beyond the zlib compressor
//! the crate already builds for `.npz`.

mod font;
mod png;

pub use png::{encode_png, save_png};

/// An RGB colour.
pub type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GREY: Rgb = [110, 110, 110];

/// An RGB raster image, row 0 at the top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
}

impl Image {
    /// A `width × height` image filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Image {
        Image {
            width,
            height,
            pixels: vec![background; width * height],
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The colour at `(x, y)`.
    ///
    /// # Panics
    /// If the point is outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        assert!(x < self.width && y < self.height);
        self.pixels[y * self.width + x]
    }

    /// The rows of pixels, top first.
    pub fn rows(&self) -> impl Iterator<Item = &[Rgb]> {
        self.pixels.chunks(self.width.max(1))
    }

    /// Sets one pixel; points outside the image are ignored.
    pub fn set(&mut self, x: isize, y: isize, colour: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = colour;
        }
    }

    /// Fills the rectangle with top-left corner `(x, y)`, clipped to the image.
    pub fn fill_rect(&mut self, x: isize, y: isize, w: usize, h: usize, colour: Rgb) {
        for yy in y..y + h as isize {
            for xx in x..x + w as isize {
                self.set(xx, yy, colour);
            }
        }
    }

    /// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale × scale`
    /// square. Characters the font lacks are drawn as `?`.
    pub fn text(&mut self, x: isize, y: isize, text: &str, scale: usize, colour: Rgb) {
        let mut pen = x;
        for c in text.chars() {
            let glyph = font::glyph(c);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..font::WIDTH {
                    if bits & (1 << (font::WIDTH - 1 - col)) != 0 {
                        self.fill_rect(
                            pen + (col * scale) as isize,
                            y + (row * scale) as isize,
                            scale,
                            scale,
                            colour,
                        );
                    }
                }
            }
            pen += (font::ADVANCE * scale) as isize;
        }
    }

    /// Draws `text` turned a quarter anticlockwise (reading upwards), with the bottom-left of
    /// its first character at `(x, y)`, so it occupies `x..x + text_height`, `..=y`.
    pub fn text_up(&mut self, x: isize, y: isize, text: &str, scale: usize, colour: Rgb) {
        let mut pen = y;
        for c in text.chars() {
            let glyph = font::glyph(c);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..font::WIDTH {
                    if bits & (1 << (font::WIDTH - 1 - col)) != 0 {
                        self.fill_rect(
                            x + (row * scale) as isize,
                            pen - ((col + 1) * scale) as isize,
                            scale,
                            scale,
                            colour,
                        );
                    }
                }
            }
            pen -= (font::ADVANCE * scale) as isize;
        }
    }
}

/// Width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * font::ADVANCE - (font::ADVANCE - font::WIDTH)) * scale
    }
}

/// Height in pixels of a line of text at `scale`, descenders included.
pub fn text_height(scale: usize) -> usize {
    font::HEIGHT * scale
}

/// Height above the baseline of text at `scale`.
fn cap_height(scale: usize) -> usize {
    font::ASCENT * scale
}

/// The viridis colour map (perceptually uniform, readable in grey and by colour-blind
/// readers) at `t` in `[0, 1]`, interpolated between eleven of its published values.
pub fn viridis(t: f32) -> Rgb {
    const STOPS: [Rgb; 11] = [
        [68, 1, 84],
        [72, 33, 115],
        [67, 62, 133],
        [56, 88, 140],
        [45, 112, 142],
        [37, 133, 142],
        [30, 155, 138],
        [42, 176, 127],
        [82, 197, 105],
        [134, 213, 73],
        [253, 231, 37],
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    std::array::from_fn(|c| (f32::from(a[c]) * (1.0 - f) + f32::from(b[c]) * f).round() as u8)
}

/// One axis of a chart.
#[derive(Debug, Clone, PartialEq)]
pub enum Axis {
    /// A linear scale from `min` to `max`.
    Linear {
        /// Value at the start (left or bottom).
        min: f64,
        /// Value at the end.
        max: f64,
    },
    /// A logarithmic scale from `min` to `max` (both above 0), ticked at 1, 2 and 5 times
    /// powers of ten, with `k` for thousands.
    Log {
        /// Value at the start.
        min: f64,
        /// Value at the end.
        max: f64,
    },
    /// Equal cells, one per label, the first at the start. Labels marked major are placed
    /// first; the others are shown wherever they do not overlap.
    Categories(Vec<(String, bool)>),
}

impl Axis {
    /// Ticks as (position from 0 at the start to 1 at the end, label).
    fn ticks(&self, max_ticks: usize) -> Vec<(f64, String)> {
        match self {
            Axis::Linear { min, max } => linear_ticks(*min, *max, max_ticks),
            Axis::Log { min, max } => log_ticks(*min, *max),
            Axis::Categories(labels) => {
                let n = labels.len().max(1) as f64;
                labels
                    .iter()
                    .enumerate()
                    .map(|(i, (l, _))| ((i as f64 + 0.5) / n, l.clone()))
                    .collect()
            }
        }
    }

    fn is_categories(&self) -> bool {
        matches!(self, Axis::Categories(_))
    }
}

fn linear_ticks(min: f64, max: f64, max_ticks: usize) -> Vec<(f64, String)> {
    let span = max - min;
    if !span.is_finite() || span <= 0.0 {
        return vec![(0.0, format_number(min))];
    }
    let rough = span / max_ticks.max(2) as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&s| span / s <= max_ticks as f64)
        .unwrap_or(10.0 * power);
    let first = (min / step).ceil() as i64;
    let last = (max / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            ((v - min) / span, format_number(v))
        })
        .collect()
}

fn log_ticks(min: f64, max: f64) -> Vec<(f64, String)> {
    if !(min > 0.0 && max > min) {
        return Vec::new();
    }
    let span = (max / min).ln();
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(min.log10().floor());
    while decade <= max {
        for m in [1.0, 2.0, 5.0] {
            let v = m * decade;
            if v >= min * 0.999 && v <= max * 1.001 {
                let label = if v >= 1000.0 {
                    format!("{}k", format_number(v / 1000.0))
                } else {
                    format_number(v)
                };
                ticks.push(((v / min).ln() / span, label));
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A number with no more decimals than it needs (up to 3).
fn format_number(v: f64) -> String {
    let mut s = format!("{v:.3}");
    while s.contains('.') && (s.ends_with('0') || s.ends_with('.')) {
        s.pop();
    }
    if s == "-0" { "0".into() } else { s }
}

/// A heat map chart: a grid of values drawn in colour, with axes, a title and a colour bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// The title above the plot.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The label under the horizontal axis, with its unit.
    pub x_label: String,
    /// The vertical axis (its start at the bottom).
    pub y: Axis,
    /// The label beside the vertical axis, with its unit.
    pub y_label: String,
    /// Value drawn in the darkest colour (and below).
    pub colour_min: f32,
    /// Value drawn in the brightest colour (and above).
    pub colour_max: f32,
    /// The label of the colour bar, with its unit.
    pub colour_label: String,
}

/// Where a chart's plot area lies in its image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotArea {
    /// Left edge.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

/// Text size of every label.
const SCALE: usize = 2;
const TICK: usize = 6;
const PAD: usize = 8;
const BAR_WIDTH: usize = 22;

impl Heatmap {
    /// The plot area of this chart in an image of `width × height`, which leaves room for
    /// the title, the tick labels, the axis labels and the colour bar.
    pub fn plot_area(&self, width: usize, height: usize) -> PlotArea {
        let widest_y = self
            .y
            .ticks(10)
            .iter()
            .map(|(_, l)| text_width(l, SCALE))
            .max()
            .unwrap_or(0);
        let left = PAD + text_height(SCALE) + PAD + widest_y + TICK + PAD / 2;
        let widest_bar = self
            .colour_ticks()
            .iter()
            .map(|(_, l)| text_width(l, SCALE))
            .max()
            .unwrap_or(0);
        let right = 3 * PAD + BAR_WIDTH + TICK + PAD / 2 + widest_bar + PAD + text_height(SCALE);
        let top = PAD + text_height(SCALE) + PAD;
        let bottom = TICK + PAD / 2 + text_height(SCALE) + PAD + text_height(SCALE) + PAD;
        PlotArea {
            x: left,
            y: top,
            width: width.saturating_sub(left + right).max(1),
            height: height.saturating_sub(top + bottom).max(1),
        }
    }

    fn colour_ticks(&self) -> Vec<(f64, String)> {
        linear_ticks(f64::from(self.colour_min), f64::from(self.colour_max), 6)
    }

    /// Draws the chart into an image of `width × height`. `cell(column, row)` gives the value
    /// of every pixel of the plot area (see [`Self::plot_area`]), row 0 at the top.
    pub fn render(
        &self,
        width: usize,
        height: usize,
        cell: &mut dyn FnMut(usize, usize) -> f32,
    ) -> Image {
        let mut img = Image::new(width, height, WHITE);
        let area = self.plot_area(width, height);
        let span = (self.colour_max - self.colour_min).max(f32::MIN_POSITIVE);
        for row in 0..area.height {
            for col in 0..area.width {
                let v = cell(col, row);
                let colour = viridis((v - self.colour_min) / span);
                img.set((area.x + col) as isize, (area.y + row) as isize, colour);
            }
        }
        let (ax, ay, aw, ah) = (
            area.x as isize,
            area.y as isize,
            area.width as isize,
            area.height as isize,
        );
        // Frame.
        img.fill_rect(ax - 1, ay - 1, area.width + 2, 1, BLACK);
        img.fill_rect(ax - 1, ay + ah, area.width + 2, 1, BLACK);
        img.fill_rect(ax - 1, ay - 1, 1, area.height + 2, BLACK);
        img.fill_rect(ax + aw, ay - 1, 1, area.height + 2, BLACK);

        // Title.
        let tw = text_width(&self.title, SCALE) as isize;
        img.text(ax + (aw - tw) / 2, PAD as isize, &self.title, SCALE, BLACK);

        // X ticks and label.
        let max_x_ticks = (area.width / 90).max(2);
        let x_ticks = self.x.ticks(max_x_ticks);
        let label_y = ay + ah + (TICK + PAD / 2) as isize;
        let placed = place_labels(&self.x, &x_ticks, area.width, |l| {
            text_width(l, SCALE) + 2 * PAD
        });
        for (i, (pos, label)) in x_ticks.iter().enumerate() {
            let px = ax + (pos * area.width as f64).round() as isize;
            let major = !self.x.is_categories() || placed[i];
            if major {
                img.fill_rect(px, ay + ah, 1, TICK, BLACK);
            }
            if placed[i] {
                let w = text_width(label, SCALE) as isize;
                img.text(px - w / 2, label_y, label, SCALE, BLACK);
            }
        }
        let xl = text_width(&self.x_label, SCALE) as isize;
        img.text(
            ax + (aw - xl) / 2,
            label_y + (text_height(SCALE) + PAD) as isize,
            &self.x_label,
            SCALE,
            BLACK,
        );

        // Y ticks (from the bottom) and label.
        let y_ticks = self.y.ticks((area.height / 50).max(2));
        let placed = place_labels(&self.y, &y_ticks, area.height, |_| {
            cap_height(SCALE) + PAD / 2
        });
        for (i, (pos, label)) in y_ticks.iter().enumerate() {
            let py = ay + ah - (pos * area.height as f64).round() as isize;
            if placed[i] {
                img.fill_rect(ax - TICK as isize, py, TICK, 1, BLACK);
                let w = text_width(label, SCALE) as isize;
                img.text(
                    ax - (TICK + PAD / 2) as isize - w,
                    py - cap_height(SCALE) as isize / 2,
                    label,
                    SCALE,
                    BLACK,
                );
            }
        }
        let yl = text_width(&self.y_label, SCALE) as isize;
        img.text_up(
            PAD as isize,
            ay + (ah + yl) / 2,
            &self.y_label,
            SCALE,
            BLACK,
        );

        // Colour bar with its ticks and label.
        let bx = ax + aw + 3 * PAD as isize;
        for row in 0..area.height {
            let t = 1.0 - row as f32 / (area.height - 1).max(1) as f32;
            img.fill_rect(bx, ay + row as isize, BAR_WIDTH, 1, viridis(t));
        }
        img.fill_rect(bx - 1, ay - 1, BAR_WIDTH + 2, 1, GREY);
        img.fill_rect(bx - 1, ay + ah, BAR_WIDTH + 2, 1, GREY);
        img.fill_rect(bx - 1, ay - 1, 1, area.height + 2, GREY);
        img.fill_rect(bx + BAR_WIDTH as isize, ay - 1, 1, area.height + 2, GREY);
        let tick_x = bx + BAR_WIDTH as isize + 1;
        let mut widest = 0;
        for (pos, label) in self.colour_ticks() {
            let py = ay + ah - 1 - (pos * (area.height - 1) as f64).round() as isize;
            img.fill_rect(tick_x, py, TICK, 1, BLACK);
            img.text(
                tick_x + (TICK + PAD / 2) as isize,
                py - cap_height(SCALE) as isize / 2,
                &label,
                SCALE,
                BLACK,
            );
            widest = widest.max(text_width(&label, SCALE));
        }
        let cl = text_width(&self.colour_label, SCALE) as isize;
        img.text_up(
            tick_x + (TICK + PAD / 2 + widest + PAD) as isize,
            ay + (ah + cl) / 2,
            &self.colour_label,
            SCALE,
            BLACK,
        );
        img
    }
}

/// Which tick labels to draw so that none overlap: all on numeric axes; on category axes the
/// major ones first, then the others where they fit. `extent` is a label's size along the
/// axis.
fn place_labels(
    axis: &Axis,
    ticks: &[(f64, String)],
    length: usize,
    extent: impl Fn(&str) -> usize,
) -> Vec<bool> {
    let Axis::Categories(labels) = axis else {
        return vec![true; ticks.len()];
    };
    let mut taken: Vec<(f64, f64)> = Vec::new();
    let mut placed = vec![false; ticks.len()];
    for pass_major in [true, false] {
        for (i, ((pos, label), (_, major))) in ticks.iter().zip(labels).enumerate() {
            if *major != pass_major {
                continue;
            }
            let centre = pos * length as f64;
            let half = extent(label) as f64 / 2.0;
            let (a, b) = (centre - half, centre + half);
            if taken.iter().all(|&(x, y)| b <= x || a >= y) {
                taken.push((a, b));
                placed[i] = true;
            }
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_character_a_label_uses_has_a_glyph() {
        let text = "0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz .,-+#()[]/:%_='!?*<>|~";
        for c in text.chars() {
            assert!(font::has_glyph(c), "{c:?}");
        }
    }

    #[test]
    fn linear_ticks_are_round_numbers() {
        let t: Vec<String> = linear_ticks(0.0, 20.0, 8)
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(t, ["0", "5", "10", "15", "20"]);
        let t: Vec<String> = linear_ticks(-80.0, 0.0, 6)
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(t, ["-80", "-60", "-40", "-20", "0"]);
    }

    #[test]
    fn log_ticks_use_k_for_thousands() {
        let t: Vec<String> = log_ticks(30.0, 22050.0)
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(
            t,
            ["50", "100", "200", "500", "1k", "2k", "5k", "10k", "20k"]
        );
    }

    #[test]
    fn text_is_drawn_inside_its_box() {
        let mut img = Image::new(100, 30, WHITE);
        img.text(2, 2, "Ag", 2, BLACK);
        let w = text_width("Ag", 2);
        for (y, row) in img.rows().enumerate() {
            for (x, &p) in row.iter().enumerate() {
                if p == BLACK {
                    assert!((2..2 + w).contains(&x) && (2..2 + text_height(2)).contains(&y));
                }
            }
        }
        assert!(img.pixels.contains(&BLACK));
    }
}
