//! `demix learn`: the spectral templates of one source from isolated recordings of it.

use std::process::ExitCode;
use std::time::Instant;

use super::args::LearnArgs;
use super::failure::Failure;
use super::{Output, same_file};

pub(super) fn run(args: &LearnArgs, out: &Output) -> Result<ExitCode, Failure> {
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_stem()
            .map_or_else(|| "source".into(), |s| s.to_string_lossy().into_owned())
    });
    let stft = args.model.stft(None);
    let nmf = args
        .model
        .nmf(demix::sources::learn_params(args.components));
    let target = args.out.display().to_string();
    let is_npz = args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    if !is_npz {
        return Err(Failure::usage(format!(
            "-o {target}: template files are NumPy archives; name it NAME.npz"
        )));
    }
    if args.out.exists() && !args.force {
        return Err(Failure::failed(format!(
            "{target}: already exists; use --force to replace it"
        )));
    }
    if args.inputs.iter().any(|i| same_file(i, &args.out)) {
        return Err(Failure::failed(format!(
            "{target}: is one of the inputs; choose another output file"
        )));
    }
    let mut examples = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        let audio = demix::audio::read_audio(input)
            .map_err(|e| Failure::failed(format!("{}: {e}", input.display())))?;
        examples.push(audio);
    }
    let started = Instant::now();
    let bar = out.iteration_bar(&target, args.model.max_iter);
    // With -v, each newly computed cost is printed with its iteration (every restart's too).
    let mut last_cost = None;
    let learned = demix::sources::learn(&name, &examples, &stft, &nmf, &mut |p| {
        bar.set_position(p.iteration as u64);
        if out.verbose && p.cost.is_some() && p.cost != last_cost {
            last_cost = p.cost;
            bar.suspend(|| {
                out.detail(&format!(
                    "iteration {}/{}: cost {:.6e}",
                    p.iteration,
                    p.max_iter,
                    p.cost.unwrap_or(f64::NAN)
                ));
            });
        }
    });
    bar.finish_and_clear();
    let result = learned.and_then(|t| t.save(&args.out).map(|()| t));
    match result {
        Ok(t) => {
            let seconds: f64 = examples.iter().map(|a| a.duration_secs()).sum();
            out.info(&format!(
                "{target}: {} templates of '{}' from {} file(s), {seconds:.1} s of audio ({:.1} s)",
                t.len(),
                t.name,
                examples.len(),
                started.elapsed().as_secs_f64()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(demix::Error::Param(e)) => Err(e.into()),
        Err(e) => {
            let inputs: Vec<String> = args
                .inputs
                .iter()
                .map(|i| i.display().to_string())
                .collect();
            Err(Failure::failed(format!("{}: {e}", inputs.join(", "))))
        }
    }
}
