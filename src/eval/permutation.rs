//! The assignment of estimates to references with the highest mean SIR, tried over every
//! permutation (`compute_permutation=True` in museval and mir_eval).

use super::scores::Metrics;

/// The assignment (estimate of each reference) with the highest mean SIR over references and
/// windows, the first in lexicographic order among equals; NaN windows are left out of the
/// mean (museval's plain mean would make every candidate NaN and keep the identity).
pub(super) fn best_assignment<'a>(
    sources: usize,
    metrics: impl Fn(usize, usize) -> &'a Vec<Metrics>,
) -> Vec<usize> {
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut perm: Vec<usize> = (0..sources).collect();
    loop {
        let (sum, count) = (0..sources)
            .flat_map(|j| metrics(j, perm[j]).iter().map(|m| m.sir))
            .filter(|v| !v.is_nan())
            .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
        let mean = if count == 0 {
            f64::NAN
        } else {
            sum / count as f64
        };
        if best
            .as_ref()
            .is_none_or(|(b, _)| mean > *b || (b.is_nan() && !mean.is_nan()))
        {
            best = Some((mean, perm.clone()));
        }
        if !next_permutation(&mut perm) {
            break;
        }
    }
    best.expect("at least one assignment").1
}

/// Rearranges `p` into the next permutation in lexicographic order; false after the last.
fn next_permutation(p: &mut [usize]) -> bool {
    let Some(i) = (1..p.len()).rev().find(|&i| p[i - 1] < p[i]) else {
        return false;
    };
    let j = (i..p.len())
        .rev()
        .find(|&j| p[j] > p[i - 1])
        .expect("p[i] qualifies");
    p.swap(i - 1, j);
    p[i..].reverse();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_run_in_lexicographic_order() {
        let mut p = vec![0, 1, 2];
        let mut all = vec![p.clone()];
        while next_permutation(&mut p) {
            all.push(p.clone());
        }
        assert_eq!(
            all,
            vec![
                vec![0, 1, 2],
                vec![0, 2, 1],
                vec![1, 0, 2],
                vec![1, 2, 0],
                vec![2, 0, 1],
                vec![2, 1, 0]
            ]
        );
    }
}
