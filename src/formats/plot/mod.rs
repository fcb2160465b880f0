//! A small raster plotter for heat maps with axes, tick labels, a title and a colour bar,
//! written as PNG. It needs no system font: text is drawn with an embedded 5×7 bitmap font.
//!
//! Why not `plotters` (measured with 0.3.7, bitmap backend and encoder, `ab_glyph` text): it
//! adds 15 crates (`image`, `png`, `jpeg-decoder`, a TrueType rasterizer; 33 s of CPU to
//! build) yet draws no text until a TrueType font is registered (`FontUnavailable`; its `ttf`
//! feature reads system fonts instead), so demix would ship a 340-760 KB font; and it has no
//! heat map or colour bar, which are most of these charts.

mod axis;
mod font;
mod png;

pub use axis::{Axis, Rank};
pub use png::{encode_png, save_png};

use axis::{linear_ticks, place_labels};

/// An RGB colour.
pub type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GREY: Rgb = [110, 110, 110];
/// The colour of grid lines, such as the octave lines of pitch axes; not a colour of
/// [`viridis`].
pub const GRID: Rgb = [200, 200, 200];

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

    /// Draws the one-pixel outline of the `w × h` rectangle with top-left corner `(x, y)`,
    /// clipped to the image.
    pub fn outline_rect(&mut self, x: isize, y: isize, w: usize, h: usize, colour: Rgb) {
        if w == 0 || h == 0 {
            return;
        }
        let (right, bottom) = (x + w as isize - 1, y + h as isize - 1);
        self.fill_rect(x, y, w, 1, colour);
        self.fill_rect(x, bottom, w, 1, colour);
        self.fill_rect(x, y, 1, h, colour);
        self.fill_rect(right, y, 1, h, colour);
    }

    /// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale × scale`
    /// square. Characters the font lacks are drawn as `?`.
    pub fn text(&mut self, x: isize, y: isize, text: &str, scale: usize, colour: Rgb) {
        let mut pen = x;
        for c in text.chars() {
            for (row, col) in glyph_pixels(c) {
                let (px, py) = (pen + (col * scale) as isize, y + (row * scale) as isize);
                self.fill_rect(px, py, scale, scale, colour);
            }
            pen += (font::ADVANCE * scale) as isize;
        }
    }

    /// Draws `text` turned a quarter anticlockwise (reading upwards), with the bottom-left of
    /// its first character at `(x, y)`, so it occupies `x..x + text_height`, `..=y`.
    pub fn text_up(&mut self, x: isize, y: isize, text: &str, scale: usize, colour: Rgb) {
        let mut pen = y;
        for c in text.chars() {
            for (row, col) in glyph_pixels(c) {
                let (px, py) = (
                    x + (row * scale) as isize,
                    pen - ((col + 1) * scale) as isize,
                );
                self.fill_rect(px, py, scale, scale, colour);
            }
            pen -= (font::ADVANCE * scale) as isize;
        }
    }
}

/// The (row, column) of every lit pixel of `c`'s glyph, rows from the top.
fn glyph_pixels(c: char) -> impl Iterator<Item = (usize, usize)> {
    font::glyph(c).iter().enumerate().flat_map(|(row, &bits)| {
        (0..font::WIDTH)
            .filter(move |col| bits & (1 << (font::WIDTH - 1 - col)) != 0)
            .map(move |col| (row, col))
    })
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

/// `text` if it fits in `width` pixels at `scale`, else its start and end around `...`.
pub fn fit_text(text: &str, width: usize, scale: usize) -> String {
    if text_width(text, scale) <= width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let room = (width / (font::ADVANCE * scale)).saturating_sub(3);
    let tail = room / 2;
    let head = room - tail;
    let mut out: String = chars[..head].iter().collect();
    out.push_str("...");
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// The title `name` + `rest` for a chart `width` pixels wide, with `name` (a file name, say)
/// shortened in its middle if the whole would not fit.
pub fn fit_title(name: &str, rest: &str, width: usize) -> String {
    let room = width.saturating_sub(2 * PAD + text_width(rest, SCALE));
    format!("{}{rest}", fit_text(name, room, SCALE))
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
    /// Vertical grid lines at these positions of the horizontal axis (0 at the start, 1 at
    /// the end), each on the column [`PlotArea::column_at`] gives.
    pub x_grid: Vec<f64>,
    /// Horizontal grid lines at these positions of the vertical axis (0 at the bottom, 1 at
    /// the top), each on the row [`PlotArea::row_at`] gives, labelled (unless empty) to the
    /// right of the plot.
    pub y_grid: Vec<(f64, String)>,
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

impl PlotArea {
    /// The image column of position `p` of the horizontal axis (0 at the left edge, 1 at the
    /// right): the first column whose left edge is at or after `p`, within the plot.
    pub fn column_at(&self, p: f64) -> usize {
        self.x + (at_or_after(p, self.width)).min(self.width - 1)
    }

    /// The image row of position `p` of the vertical axis (0 at the bottom edge, 1 at the
    /// top): the lowest row whose bottom edge is at or above `p`, within the plot.
    pub fn row_at(&self, p: f64) -> usize {
        let from_bottom = at_or_after(p, self.height).min(self.height - 1);
        self.y + self.height - 1 - from_bottom
    }
}

/// The first of `n` pixels whose start is at or after `p` (0 to 1), forgiving rounding, so
/// that `j / k` of `n` is `ceil(j n / k)` exactly.
fn at_or_after(p: f64, n: usize) -> usize {
    (p * n as f64 - 1e-9).ceil().max(0.0) as usize
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
        let widest_grid = self
            .y_grid
            .iter()
            .map(|(_, l)| text_width(l, SCALE))
            .max()
            .unwrap_or(0);
        let grid_labels = if widest_grid > 0 {
            widest_grid + PAD
        } else {
            0
        };
        let right = 3 * PAD
            + grid_labels
            + BAR_WIDTH
            + TICK
            + PAD / 2
            + widest_bar
            + PAD
            + text_height(SCALE);
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
        // Grid lines, under the frame.
        for &p in &self.x_grid {
            if p > 0.0 && p < 1.0 {
                img.fill_rect(area.column_at(p) as isize, ay, 1, area.height, GRID);
            }
        }
        let mut widest_grid = 0;
        for (p, label) in &self.y_grid {
            if *p > 0.0 && *p < 1.0 {
                let y = area.row_at(*p) as isize;
                img.fill_rect(ax, y, area.width, 1, GRID);
                img.text(
                    ax + aw + 1 + (PAD / 2) as isize,
                    y - cap_height(SCALE) as isize / 2,
                    label,
                    SCALE,
                    BLACK,
                );
            }
            widest_grid = widest_grid.max(text_width(label, SCALE));
        }

        // Frame.
        img.fill_rect(ax - 1, ay - 1, area.width + 2, 1, BLACK);
        img.fill_rect(ax - 1, ay + ah, area.width + 2, 1, BLACK);
        img.fill_rect(ax - 1, ay - 1, 1, area.height + 2, BLACK);
        img.fill_rect(ax + aw, ay - 1, 1, area.height + 2, BLACK);

        // Title, centred over the plot where it fits.
        let title = fit_text(&self.title, width.saturating_sub(2 * PAD), SCALE);
        let tw = text_width(&title, SCALE) as isize;
        let tx = (ax + (aw - tw) / 2).clamp(
            PAD as isize,
            (width as isize - PAD as isize - tw).max(PAD as isize),
        );
        img.text(tx, PAD as isize, &title, SCALE, BLACK);

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
        let grid_labels = if widest_grid > 0 {
            widest_grid + PAD
        } else {
            0
        };
        let bx = ax + aw + (3 * PAD + grid_labels) as isize;
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

    #[test]
    fn long_titles_keep_both_ends_of_the_name() {
        let name = "a recording with a very long name, take 12.wav";
        let title = fit_title(name, ": activations", 400);
        assert!(text_width(&title, SCALE) <= 400 - 2 * PAD, "{title}");
        assert!(
            title.starts_with("a rec") && title.contains("..."),
            "{title}"
        );
        assert!(title.ends_with("12.wav: activations"), "{title}");
        assert_eq!(
            fit_title("mix.wav", ": activations", 400),
            "mix.wav: activations"
        );
    }

    #[test]
    fn grid_positions_fall_on_the_first_pixel_at_or_after_them() {
        let area = PlotArea {
            x: 10,
            y: 20,
            width: 100,
            height: 50,
        };
        assert_eq!(area.column_at(0.0), 10);
        assert_eq!(area.column_at(0.25), 35);
        assert_eq!(area.column_at(0.251), 36);
        assert_eq!(area.column_at(1.0), 109);
        // Rows from the bottom: position 0 is the bottom row, 0.5 the 26th from the bottom.
        assert_eq!(area.row_at(0.0), 69);
        assert_eq!(area.row_at(0.5), 44);
        assert_eq!(area.row_at(0.51), 43);
        assert_eq!(area.row_at(1.0), 20);
        // j / k lands exactly on ceil(j n / k), whatever the rounding of the division.
        for k in 1..60usize {
            for j in 0..k {
                let expected = (j * 100).div_ceil(k);
                assert_eq!(
                    area.column_at(j as f64 / k as f64),
                    10 + expected,
                    "{j}/{k}"
                );
            }
        }
    }

    #[test]
    fn grid_lines_cross_the_plot_with_their_labels_beside_it() {
        let chart = Heatmap {
            title: String::new(),
            x: Axis::Linear { min: 0.0, max: 1.0 },
            x_label: String::new(),
            y: Axis::Linear { min: 0.0, max: 1.0 },
            y_label: String::new(),
            colour_min: 0.0,
            colour_max: 1.0,
            colour_label: String::new(),
            x_grid: vec![0.25],
            y_grid: vec![(0.5, "C4".into())],
        };
        let (width, height) = (400, 300);
        let area = chart.plot_area(width, height);
        let img = chart.render(width, height, &mut |_, _| 0.0);
        let (gx, gy) = (area.column_at(0.25), area.row_at(0.5));
        for y in area.y..area.y + area.height {
            assert_eq!(img.pixel(gx, y), GRID, "column {gx}, row {y}");
        }
        for x in area.x..area.x + area.width {
            assert_eq!(img.pixel(x, gy), GRID, "row {gy}, column {x}");
        }
        assert_eq!(img.pixel(gx - 1, area.y), viridis(0.0));
        // The label, in black right of the frame, centred on the line.
        let right = area.x + area.width + 1;
        let ink: Vec<usize> = (area.y..area.y + area.height)
            .filter(|&y| (right..right + 40).any(|x| img.pixel(x, y) == BLACK))
            .collect();
        let (top, bottom) = (ink[0], ink[ink.len() - 1]);
        assert_eq!(bottom - top + 1, cap_height(SCALE));
        assert!(
            (top + bottom).abs_diff(2 * gy) <= 1,
            "{top}..={bottom} around {gy}"
        );
    }
}
