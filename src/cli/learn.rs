//! `demix learn`: the spectral templates of one source from isolated recordings of it.

use std::process::ExitCode;
use std::time::Instant;

use super::args::{ComponentsArg, FramesArg, LearnArgs};
use super::failure::{Failure, describe_param_error};
use super::{Output, same_file};
use demix::ParamError;
use demix::inspect::notes::NoteRange;
use demix::sources::{LearnEvent, ModelChoice, PERCUSSIVE_BOUND, learn_source};

pub(super) fn run(args: &LearnArgs, out: &Output) -> Result<ExitCode, Failure> {
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_stem()
            .map_or_else(|| "source".into(), |s| s.to_string_lossy().into_owned())
    });
    let stft = args.model.stft(None);
    let k = ComponentsArg::or(args.components, demix::sources::DEFAULT_TEMPLATES);
    let mut nmf = args.model.nmf(demix::sources::learn_params(k));
    if nmf.loss() != demix::nmf::Loss::ItakuraSaito {
        // learn_params's longer steps are for Itakura-Saito; another loss takes its own.
        nmf = nmf.with_step_exponent(None);
    }
    let rank = args
        .rank
        .selection(args.components == Some(ComponentsArg::Auto))?;
    let notes = args
        .notes
        .as_deref()
        .map(str::parse::<NoteRange>)
        .transpose()?;
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
    if let Some(range) = notes {
        return learn_notes(args, (&name, &examples), range, out);
    }
    let started = Instant::now();
    let bar = out.iteration_bar(&target, nmf.max_iter());
    // With -v, each newly computed cost is printed with its iteration (every restart's too).
    let mut last_cost = None;
    let mut progress = |p: demix::nmf::Progress| {
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
    };
    let choice = ModelChoice {
        frames: match args.frames {
            Some(FramesArg::Fixed(frames)) => Some(frames),
            None | Some(FramesArg::Auto) => None,
        },
        loss: args.model.loss,
        restarts: args.model.restarts,
    };
    let mut events = |event| match event {
        LearnEvent::Measured(p) => out.detail(&format!(
            "median spectral flatness {:.3} x percussive share {:.3} = {:.4} (percussive from \
             {PERCUSSIVE_BOUND})",
            p.flatness,
            p.percussive_share,
            p.score()
        )),
        LearnEvent::Fit(p) | LearnEvent::KlProgress(p) => progress(p),
        LearnEvent::KlFit => out.detail("KL templates beside them:"),
    };
    let learned = learn_source(
        &name,
        &examples,
        &stft,
        &nmf,
        choice,
        rank.as_ref(),
        &mut events,
    )
    .map(|l| (l.templates, l.rank));
    bar.finish_and_clear();
    let result = learned.and_then(|(t, report)| t.save(&args.out).map(|()| (t, report)));
    match result {
        Ok((t, report)) => {
            let seconds: f64 = examples.iter().map(|a| a.duration_secs()).sum();
            let chosen = match &report {
                Some(r) => format!("K = {} chosen, ", r.chosen),
                None => String::new(),
            };
            out.info(&format!(
                "{target}: {}{} templates of '{}' from {} file(s), {seconds:.1} s of audio \
                 ({chosen}{:.1} s)",
                t.templates(),
                if t.frames > 1 {
                    format!(" {}-frame {}", t.frames, t.loss)
                } else {
                    format!(" {}", t.loss)
                },
                t.name,
                examples.len(),
                started.elapsed().as_secs_f64()
            ));
            Ok(ExitCode::SUCCESS)
        }
        // A range beyond the frames is a property of the recordings: named with them.
        Err(demix::Error::Param(e)) if !matches!(e, ParamError::RankTooLarge { .. }) => {
            Err(e.into())
        }
        Err(e) => Err(of_recordings(args, &e)),
    }
}

/// The failure `e` of learning from the recordings of `args`, naming them.
fn of_recordings(args: &LearnArgs, e: &demix::Error) -> Failure {
    let inputs: Vec<String> = args
        .inputs
        .iter()
        .map(|i| i.display().to_string())
        .collect();
    let message = match e {
        demix::Error::Param(p) => describe_param_error(p),
        e => e.to_string(),
    };
    Failure::failed(format!("{}: {message}", inputs.join(", ")))
}

/// `demix learn --notes`: one template per note of `range` from `examples`, recordings of the
/// instrument's notes, on inspect's note frames for the examples' sample rate.
fn learn_notes(
    args: &LearnArgs,
    (name, examples): (&str, &[demix::audio::Audio]),
    range: NoteRange,
    out: &Output,
) -> Result<ExitCode, Failure> {
    let target = args.out.display().to_string();
    let rate = examples.first().map_or(44_100, |a| a.sample_rate);
    let notes_stft = demix::inspect::scaled_stft(&demix::inspect::notes_stft(), rate);
    let stft = args.model.stft(Some(notes_stft));
    let nmf = args.model.nmf(demix::inspect::learn_notes_params());
    let started = Instant::now();
    let bar = out.iteration_bar(&target, nmf.max_iter());
    let learned = demix::inspect::learn_notes(name, examples, &stft, range, &nmf, &mut |p| {
        bar.set_position(p.iteration as u64);
    });
    bar.finish_and_clear();
    let learned = learned.and_then(|l| l.templates.save(&args.out).map(|()| l));
    let learned = learned.map_err(|e| match e {
        // Notes the recordings' sample rate cannot hold are theirs; other bad values are usage.
        demix::Error::Param(p) if !matches!(p, ParamError::NoteAboveNyquist { .. }) => p.into(),
        e => of_recordings(args, &e),
    })?;
    let unheard = match learned.unheard.len() {
        0 => String::new(),
        n => format!(
            "; {n} not heard in the recordings keep harmonic templates ({})",
            learned
                .unheard
                .iter()
                .map(|&m| demix::inspect::notes::note_name(m.into()))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    out.info(&format!(
        "{target}: {} note templates {range} of '{name}' from {} file(s){unheard} ({:.1} s)",
        learned.templates.templates(),
        examples.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}
