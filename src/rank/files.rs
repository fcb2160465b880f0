//! A rank selection's results as files: `rank.json` (everything), `rank.csv` (the measures per
//! K) and `rank.png` (their curves), written whole or not at all.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::chart::rank_chart;
use crate::atomic::write_atomically;
use crate::error::{Error, Result};
use crate::formats::plot::encode_png;
use crate::nmf::RankReport;

/// The files [`write_rank_files`] writes into its folder.
pub const RANK_FILES: [&str; 3] = ["rank.json", "rank.csv", "rank.png"];

/// A finite number as JSON, anything else as `null`.
fn number(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// The report as JSON: the input's name, the method, range, rule and chosen K, and per K the
/// final cost, the stability and the held-out cost (ARD: the relevances instead).
pub fn rank_json(name: &str, report: &RankReport) -> Value {
    let rows: Vec<Value> = report
        .rows
        .iter()
        .map(|r| {
            json!({
                "k": r.k,
                "cost": number(r.cost),
                "stability": number(r.stability),
                "held_out": number(r.held_out),
                "iterations": r.iterations,
            })
        })
        .collect();
    let relevance: Vec<Value> = report.relevance.iter().map(|&r| number(r)).collect();
    json!({
        "input": name,
        "method": report.method.to_string(),
        "k_range": [report.range.low(), report.range.high()],
        "chosen": report.chosen,
        "rule": report.rule,
        "starts": report.starts,
        "held_out_fraction": f64::from(report.held_out),
        "frames_fitted": report.frames_fitted,
        "per_k": rows,
        "ard_relevance_over_bound": relevance,
        "ard_iterations": report.ard_iterations,
    })
}

/// The measures per K as CSV, `k,cost,stability,held_out,iterations,chosen`, one row per K
/// (for ARD, `k,relevance_over_bound,chosen`, one row per component).
pub fn rank_csv(report: &RankReport) -> String {
    let mut out = String::new();
    if report.rows.is_empty() {
        out.push_str("component,relevance_over_bound,relevant\n");
        for (i, r) in report.relevance.iter().enumerate() {
            let relevant = *r > 1.0 + crate::nmf::ARD_MARGIN;
            out.push_str(&format!("{},{r},{}\n", i + 1, u8::from(relevant)));
        }
        return out;
    }
    out.push_str("k,cost,stability,held_out,iterations,chosen\n");
    for r in &report.rows {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.k,
            r.cost,
            r.stability,
            r.held_out,
            r.iterations,
            u8::from(r.k == report.chosen)
        ));
    }
    out
}

/// Writes `rank.json`, `rank.csv` and `rank.png` of `report` into `dir` (created if needed),
/// each atomically. Returns their paths.
///
/// # Errors
/// [`Error::OutputExists`] if one of them exists and not `force` (before writing anything),
/// and [`Error::Write`] if writing fails.
pub fn write_rank_files(
    dir: &Path,
    name: &str,
    report: &RankReport,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = RANK_FILES.iter().map(|f| dir.join(f)).collect();
    if !force && let Some(existing) = paths.iter().find(|p| fs::symlink_metadata(p).is_ok()) {
        return Err(Error::OutputExists(existing.clone()));
    }
    fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let json = serde_json::to_string_pretty(&rank_json(name, report)).expect("JSON of values");
    write_atomically(&paths[0], |w| writeln!(w, "{json}"))?;
    let csv = rank_csv(report);
    write_atomically(&paths[1], |w| w.write_all(csv.as_bytes()))?;
    let chart = rank_chart(report, name);
    write_atomically(&paths[2], |w| encode_png(w, &chart))?;
    Ok(paths)
}
