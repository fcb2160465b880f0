//! `rank.png`: the measures of a sweep against K in three panels (cost, held-out cost,
//! stability) with the chosen K marked, or ARD's relevances per component.

use crate::formats::plot::{GRID, Image, Rgb, fit_title, text_height, text_width};
use crate::nmf::{ARD_MARGIN, RankReport};

const WIDTH: usize = 720;
const PANEL: usize = 170;
const LEFT: usize = 90;
const RIGHT: usize = 20;
const TOP: usize = 40;
const GAP: usize = 36;
const SCALE: usize = 2;
const BLACK: Rgb = [0, 0, 0];
const LINE: Rgb = [31, 119, 180];
const CHOSEN: Rgb = [214, 39, 40];

/// The chart of `report` for the input `name` (in the title).
pub fn rank_chart(report: &RankReport, name: &str) -> Image {
    let panels: Vec<(&str, Vec<(f64, f64)>)> = if report.rows.is_empty() {
        let mut relevance = report.relevance.clone();
        relevance.sort_by(|a, b| b.total_cmp(a));
        vec![(
            "ARD relevance / bound, by rank",
            relevance
                .iter()
                .enumerate()
                .map(|(i, &r)| ((i + 1) as f64, r.max(1.0).log10()))
                .collect(),
        )]
    } else {
        let series = |f: &dyn Fn(&crate::nmf::RankRow) -> f64| {
            report.rows.iter().map(|r| (r.k as f64, f(r))).collect()
        };
        vec![
            ("cost per fitted entry", series(&|r| r.cost)),
            ("held-out cost per entry", series(&|r| r.held_out)),
            ("stability across starts", series(&|r| r.stability)),
        ]
    };
    let height = TOP + panels.len() * (PANEL + GAP) + 20;
    let mut img = Image::new(WIDTH, height, [255, 255, 255]);
    let title = fit_title(
        name,
        &format!(": K = {} ({})", report.chosen, report.method),
        WIDTH,
    );
    img.text(10, 10, &title, SCALE, BLACK);
    let (x_min, x_max) = match report.rows.is_empty() {
        true => (1.0, report.relevance.len().max(2) as f64),
        false => (report.range.low() as f64, report.range.high().max(2) as f64),
    };
    let x_max = if x_max > x_min { x_max } else { x_min + 1.0 };
    let width = WIDTH - LEFT - RIGHT;
    for (i, (label, points)) in panels.iter().enumerate() {
        let top = TOP + i * (PANEL + GAP) + text_height(SCALE);
        let x_of = |x: f64| LEFT as isize + ((x - x_min) / (x_max - x_min) * width as f64) as isize;
        let finite = points.iter().map(|p| p.1).filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (lo.min(0.0), lo.max(0.0) + 1.0)
        };
        let y_of =
            |y: f64| (top + PANEL) as isize - ((y - lo) / (hi - lo) * (PANEL - 1) as f64) as isize;
        img.text(
            LEFT as isize,
            (top - text_height(SCALE) - 4) as isize,
            label,
            SCALE,
            BLACK,
        );
        // Frame, gridlines at the K ticks, and the chosen K.
        img.outline_rect(LEFT as isize - 1, top as isize, width + 2, PANEL + 1, BLACK);
        let step = ((x_max - x_min) / 10.0).ceil().max(1.0);
        let mut k = x_min;
        while k <= x_max + 1e-9 {
            let px = x_of(k);
            img.fill_rect(px, top as isize + 1, 1, PANEL - 1, GRID);
            let text = format!("{k}");
            let tw = text_width(&text, SCALE) as isize;
            img.text(px - tw / 2, (top + PANEL + 4) as isize, &text, SCALE, BLACK);
            k += step;
        }
        if !report.rows.is_empty() {
            img.fill_rect(x_of(report.chosen as f64), top as isize, 2, PANEL, CHOSEN);
        } else {
            let bound = (1.0 + ARD_MARGIN).log10();
            if bound >= lo && bound <= hi {
                img.fill_rect(LEFT as isize, y_of(bound), width, 1, CHOSEN);
            }
        }
        for (value, at) in [(hi, top as isize), (lo, (top + PANEL) as isize - 12)] {
            let text = short(value);
            let tw = text_width(&text, SCALE) as isize;
            img.text(LEFT as isize - 6 - tw, at, &text, SCALE, BLACK);
        }
        // The curve and its points.
        for pair in points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.1.is_finite() && b.1.is_finite() {
                line(
                    &mut img,
                    (x_of(a.0), y_of(a.1)),
                    (x_of(b.0), y_of(b.1)),
                    LINE,
                );
            }
        }
        for &(x, y) in points {
            if y.is_finite() {
                img.fill_rect(x_of(x) - 2, y_of(y) - 2, 5, 5, LINE);
            }
        }
    }
    img
}

/// A number in at most about 8 characters.
fn short(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-2) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// A straight line from `a` to `b`, two pixels thick.
fn line(img: &mut Image, a: (isize, isize), b: (isize, isize), colour: Rgb) {
    let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).max(1);
    for i in 0..=steps {
        let x = a.0 + (b.0 - a.0) * i / steps;
        let y = a.1 + (b.1 - a.1) * i / steps;
        img.fill_rect(x, y, 2, 2, colour);
    }
}
