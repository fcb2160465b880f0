//! `demix separate`: every input into one WAV file per source.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::SeparateArgs;
use super::batch::{
    Files, RunSpec, chosen_text, components_label, find_files, fit_details, how_it_stopped,
    job_error, job_progress, rank_params_json, run_files, shortest, warn_clipped,
};
use super::failure::Failure;
use super::stdin::Spool;
use super::{Output, load_sources};
use demix::audio::{Container, OutputFormat};
use demix::batch::{FileEntry, Item, JobContext, JobOutput};
use demix::separate::{
    BAND_ITERATIONS, KEEP_SHARE, OutputOptions, SPATIAL_MASK_POWER, SeparateParams,
};
use demix::sources::FREE_SHIFTS;

/// Separates every file of the inputs, `--jobs` at a time, with a report for a batch.
pub(super) fn run(
    args: &SeparateArgs,
    threads: Option<usize>,
    out: &Output,
) -> Result<ExitCode, Failure> {
    let templates = load_sources(&args.source)?;
    let params = args.params(templates)?;
    let separator = params.check()?;
    let reads_stdin = args.inputs.iter().any(|p| p.as_os_str() == "-");
    if reads_stdin && args.inputs.len() > 1 {
        return Err(Failure::usage("- (standard input) must be the only input"));
    }
    if args.name.is_some() && !reads_stdin {
        return Err(Failure::usage(
            "--name names standard input, -, which is not an input",
        ));
    }
    let name = args.name.as_deref().unwrap_or("stdin");
    // Standard input is copied before anything else reads it.
    let spool = if reads_stdin {
        if let Some(json) = &args.batch.json {
            super::batch::check_json_path(json, args.force, None)?;
        }
        Some(Spool::from_stdin(&args.out, name)?)
    } else {
        None
    };
    let files = match &spool {
        Some(_) => Files {
            plan: Spool::plan(name),
            is_batch: false,
        },
        None => find_files(&args.inputs, &args.out, &args.batch)?,
    };
    let output = args.output();
    out.detail(&format!(
        "demix separate: components={} sources={} loss={} iter={} tol={} seed={} n_fft={} hop={} mask_power={}",
        components_label(params.nmf.components(), params.rank.as_ref()),
        params.templates.len(),
        params.nmf.loss(),
        params.nmf.max_iter(),
        params.nmf.tol(),
        params.nmf.seed(),
        params.stft.n_fft(),
        params.stft.hop(),
        args.mask_power
            .map_or_else(|| "auto".to_string(), |p| p.to_string())
    ));

    let spec = RunSpec {
        command: "separate",
        done: "separated",
        out_dir: &args.out,
        batch: &args.batch,
        threads,
        force: output.force,
        params: params_json(args, &params, &output),
    };
    let show = |name: &str, entry: &FileEntry, folder: &Path| {
        show_separated(out, &args.out, output.format, name, entry, folder);
    };
    let job = |item: &Item, ctx: &JobContext<'_>| -> Result<JobOutput, String> {
        let holder = match item.output.as_deref().and_then(Path::parent) {
            Some(parent) if !parent.as_os_str().is_empty() => args.out.join(parent),
            _ => args.out.clone(),
        };
        // --force, or a replacement a stopped --force run left unfinished.
        let output = OutputOptions {
            force: ctx.replace(),
            ..output
        };
        let report = separator
            .separate_file(
                spool.as_ref().map_or(&item.input, |s| &s.path),
                &holder,
                &output,
                &mut job_progress(ctx),
            )
            .map_err(|e| job_error(&e))?;
        let mut details = fit_details(
            report.iterations,
            report.final_cost,
            report.converged,
            report.duration_secs,
        );
        let sources: Vec<Value> = report
            .stems
            .iter()
            .map(|s| json!({"name": s.name, "clipped": s.clip.clipped, "peak": s.clip.peak}))
            .collect();
        details.insert("sources".into(), Value::Array(sources));
        details.insert("components".into(), json!(report.components));
        if let Some(k) = report.chosen_k {
            details.insert("chosen_k".into(), json!(k));
        }
        Ok(JobOutput {
            outputs: report.stems.into_iter().map(|s| s.path).collect(),
            details,
        })
    };
    run_files(&files, &spec, out, &show, job)
}

/// The line of a separated file, its stems with `-v`, and a warning for each that clipped.
fn show_separated(
    out: &Output,
    out_dir: &Path,
    format: OutputFormat,
    name: &str,
    entry: &FileEntry,
    folder: &Path,
) {
    let detail = |key: &str| entry.details.get(key).cloned().unwrap_or(Value::Null);
    out.info(&format!(
        "{name}: {} sources in {} ({}{} iterations, cost {:.4e}, {:.1} s)",
        entry.outputs.len(),
        folder.display(),
        chosen_text(entry),
        how_it_stopped(entry),
        detail("final_cost").as_f64().unwrap_or(f64::NAN),
        entry.seconds.unwrap_or(0.0)
    ));
    let sources = detail("sources");
    for (file, source) in entry
        .outputs
        .iter()
        .zip(sources.as_array().into_iter().flatten())
    {
        let path = out_dir.join(file.path.as_path());
        out.detail(&format!("  {}", path.display()));
        let clipped = source["clipped"].as_u64().unwrap_or(0);
        if clipped > 0 {
            let peak = source["peak"].as_f64().unwrap_or(f64::NAN);
            warn_clipped(out, &path, clipped, peak, format);
        }
    }
}

/// The parameters recorded per file: a file is complete only for the same ones. Learned
/// templates are recorded by their `--source` arguments (names and files), not their contents.
fn params_json(args: &SeparateArgs, params: &SeparateParams, output: &OutputOptions) -> Value {
    let nmf = &params.nmf;
    let format = output.format;
    let rank = params.rank.as_ref();
    let mut value = json!({
        "components": if rank.is_some() { json!("auto") } else { json!(nmf.components()) },
        "sources": args.source,
        "free": args.free,
        "groups": args.groups,
        "loss": nmf.loss().to_string(),
        "max_iter": nmf.max_iter(),
        "tol": nmf.tol(),
        "seed": nmf.seed(),
        "init": format!("{:?}", nmf.init()).to_lowercase(),
        "sparsity": nmf.sparsity(),
        "smoothness": nmf.smoothness(),
        "restarts": nmf.restarts(),
        "floor": shortest(nmf.floor()),
        "spatial": params.spatial,
        "max_frames": params.max_frames,
        "n_fft": params.stft.n_fft(),
        "hop": params.stft.hop(),
        "mask_power": args.mask_power.map(shortest),
        "format": format!("{format:?}").to_lowercase(),
    });
    for (key, setting) in rank_params_json(rank) {
        value[key] = setting;
    }
    // Only with templates, which are all it changes (blind runs keep their earlier reports).
    if !args.source.is_empty() {
        value["pitch_shifts"] = json!(params.pitch_shifts);
        // Only where some copy lies beyond the unhandicapped ones.
        if params.pitch_shifts > FREE_SHIFTS {
            value["shift_penalty"] = json!(shortest(params.shift_penalty));
        }
    }
    // Not recorded before the sixth stop of 2026-12-07: only when not the default (1), so that
    // the reports of runs made before still match.
    if params.spatial_iterations != 1 {
        value["spatial_iterations"] = json!(params.spatial_iterations);
    }
    // With templates, when the spatial filter's masks take the default power, changed at that
    // stop (0.5 before): the stems of runs made before it are done again (also those of mono
    // inputs or templates without covariances, which the arguments cannot tell apart).
    if !args.source.is_empty() && args.mask_power.is_none() && params.spatial {
        value["spatial_mask_power"] = json!(shortest(SPATIAL_MASK_POWER));
    }
    // Only when used, so that the reports of runs made before it still match.
    if params.bands() > 0 {
        value["bands_per_octave"] = json!(params.bands());
        // The fit ends on every bin since the fourth stop of 2026-12-07: files separated on
        // the bands throughout (whose reports lack these) are done again.
        value["band_iterations"] = json!(BAND_ITERATIONS);
        value["keep_share"] = json!(KEEP_SHARE);
    }
    // Recorded only for FLAC, so that the reports of WAV runs made before FLAC existed still
    // describe the same parameters.
    if output.container == Container::Flac {
        value["container"] = json!("flac");
    }
    value
}
