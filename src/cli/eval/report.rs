//! What `demix eval` reports: the table of scores on stdout, and the same figures as JSON.

use std::path::PathBuf;

use serde_json::Value;

use demix::eval::{EvalParams, Metrics, Mode, Scores};

use super::pairing::{Files, stem};

/// A figure with three decimals; `nan`, `inf`, and `-` for one that does not apply.
fn figure(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_nan() => "nan".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        Some(v) => format!("{v:.3}"),
    }
}

/// A folder's or a single file's name for the title line.
fn label(paths: &[PathBuf]) -> String {
    match paths {
        [] => String::new(),
        [one] => one.display().to_string(),
        [first, ..] => first.parent().unwrap_or(first).display().to_string(),
    }
}

/// The table of scores on stdout: the command's result, printed even with `-q`.
pub(super) fn print_table(files: &Files, scores: &Scores, params: &EvalParams) {
    let permute = params.permute();
    let how = match scores.mode {
        Mode::V4 => {
            let used = scores.frames - scores.silent_frames;
            let mut how = format!(
                "BSS Eval v4 (museval), median over {used} window{} of {} s every {} s",
                if used == 1 { "" } else { "s" },
                params.window(),
                params.hop()
            );
            if scores.silent_frames > 0 {
                how.push_str(&format!(" ({} silent left out)", scores.silent_frames));
            }
            how
        }
        Mode::V3 if scores.sources[0].metrics.isr.is_none() => {
            "BSS Eval v3 (mir_eval bss_eval_sources)".to_string()
        }
        Mode::V3 => "BSS Eval v3 (mir_eval bss_eval_images)".to_string(),
    };
    println!(
        "{} against {}: {how}; dB",
        label(&files.estimates),
        label(&files.references)
    );
    let width = files
        .names
        .iter()
        .map(|n| n.chars().count())
        .chain(["median".len(), "source".len()])
        .max()
        .unwrap_or(6);
    let estimate_width = files
        .estimates
        .iter()
        .map(|p| stem(p).chars().count())
        .chain(["estimate".len()])
        .max()
        .unwrap_or(8);
    let row = |name: &str, estimate: &str, m: &Metrics, si_sdr: f64| {
        let mut line = format!("{name:<width$}");
        if permute {
            line.push_str(&format!("  {estimate:<estimate_width$}"));
        }
        for v in [Some(m.sdr), Some(m.sir), Some(m.sar), m.isr, Some(si_sdr)] {
            line.push_str(&format!("  {:>8}", figure(v)));
        }
        line
    };
    let mut header = format!("{:<width$}", "source");
    if permute {
        header.push_str(&format!("  {:<estimate_width$}", "estimate"));
    }
    for title in ["SDR", "SIR", "SAR", "ISR", "SI-SDR"] {
        header.push_str(&format!("  {title:>8}"));
    }
    println!("{header}");
    for (name, s) in files.names.iter().zip(&scores.sources) {
        let estimate = stem(&files.estimates[s.estimate]);
        println!("{}", row(name, &estimate, &s.metrics, s.si_sdr));
    }
    println!(
        "{}",
        row("median", "", &scores.median, scores.median_si_sdr)
    );
}

/// A JSON number, or null for NaN, infinite and inapplicable values.
fn number(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| "null".to_string(), |v| Value::from(v).to_string())
}

/// A JSON string.
fn string(s: &str) -> String {
    Value::from(s).to_string()
}

/// The metrics as JSON members, in the order sdr, sir, sar, isr, si_sdr.
fn metrics_json(m: &Metrics, si_sdr: f64) -> Vec<String> {
    vec![
        format!("\"sdr\": {}", number(Some(m.sdr))),
        format!("\"sir\": {}", number(Some(m.sir))),
        format!("\"sar\": {}", number(Some(m.sar))),
        format!("\"isr\": {}", number(m.isr)),
        format!("\"si_sdr\": {}", number(Some(si_sdr))),
    ]
}

/// `{"mode": .., "sources": {"<name>": {"sdr": .., ...}}, "median": {...}}`, keys in a fixed
/// order.
pub(super) fn to_json(files: &Files, scores: &Scores, permute: bool) -> String {
    let mut root = vec![format!("\"mode\": {}", string(&scores.mode.to_string()))];
    if scores.mode == Mode::V4 {
        root.push(format!("\"window_samples\": {}", scores.window.0));
        root.push(format!("\"hop_samples\": {}", scores.window.1));
        root.push(format!("\"frames\": {}", scores.frames));
        root.push(format!("\"silent_frames\": {}", scores.silent_frames));
    }
    let sources: Vec<String> = files
        .names
        .iter()
        .zip(&scores.sources)
        .map(|(name, s)| {
            let mut members = Vec::new();
            if permute {
                let estimate = files.estimates[s.estimate].display().to_string();
                members.push(format!("\"estimate\": {}", string(&estimate)));
            }
            members.extend(metrics_json(&s.metrics, s.si_sdr));
            format!("    {}: {{{}}}", string(name), members.join(", "))
        })
        .collect();
    root.push(format!("\"sources\": {{\n{}\n  }}", sources.join(",\n")));
    root.push(format!(
        "\"median\": {{{}}}",
        metrics_json(&scores.median, scores.median_si_sdr).join(", ")
    ));
    format!("{{\n  {}\n}}", root.join(",\n  "))
}
