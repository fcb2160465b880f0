//! The axes of a chart: linear, logarithmic and category scales, their ticks, and which
//! category labels fit.

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
    /// Equal cells, one per label, the first at the start. Where labels would overlap, the
    /// higher [`Rank`] is shown.
    Categories(Vec<(String, Rank)>),
}

/// Which category labels are shown on a crowded axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// Placed first, so always shown unless two of them overlap (every C of a note axis).
    First,
    /// Shown where it overlaps no `First` label.
    Major,
    /// Shown where it overlaps no other label; its tick is not drawn.
    Minor,
}

impl Axis {
    /// Ticks as (position from 0 at the start to 1 at the end, label).
    pub(super) fn ticks(&self, max_ticks: usize) -> Vec<(f64, String)> {
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

    pub(super) fn is_categories(&self) -> bool {
        matches!(self, Axis::Categories(_))
    }
}

pub(super) fn linear_ticks(min: f64, max: f64, max_ticks: usize) -> Vec<(f64, String)> {
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

/// Which tick labels to draw so that none overlap: all on numeric axes; on category axes
/// rank by rank, each where it overlaps none placed before. `extent` is a label's size along
/// the axis.
pub(super) fn place_labels(
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
    for pass in [Rank::First, Rank::Major, Rank::Minor] {
        for (i, ((pos, label), (_, rank))) in ticks.iter().zip(labels).enumerate() {
            if *rank != pass {
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
    fn first_rank_labels_win_over_major_ones_that_come_before_them() {
        // Ten cells of 10 px, labels 25 px wide: a label hides its neighbours.
        let rank = |i: usize| match i {
            4 => Rank::First,
            3 | 5 => Rank::Major,
            _ => Rank::Minor,
        };
        let axis = Axis::Categories((0..10).map(|i| (format!("n{i}"), rank(i))).collect());
        let ticks = axis.ticks(10);
        let placed = place_labels(&axis, &ticks, 100, |_| 25);
        assert!(placed[4], "the First label");
        assert!(!placed[3] && !placed[5], "its Major neighbours overlap it");
        assert!(placed[0] && placed[7], "Minor labels where room is left");
    }
}
