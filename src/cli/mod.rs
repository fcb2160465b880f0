//! The `demix` binary: turns flags into checked library parameters, runs, reports.

mod args;
mod eval;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use args::{Cli, Command, SeparateArgs};
use demix::ParamError;
use demix::audio::OutputFormat;
use demix::separate::{self, TrackReport};

/// Exit code for a failed run (bad input, failed write).
const FAILURE: u8 = 1;
/// Exit code for a command line that does not parse.
const USAGE: u8 = 2;

/// Parses the command line, runs it, and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let out = Output::new(&cli);
    if let Some(n) = cli.threads {
        if n == 0 {
            out.error("-j/--threads must be at least 1");
            return ExitCode::from(FAILURE);
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            out.error(&format!("cannot start {n} threads: {e}"));
            return ExitCode::from(FAILURE);
        }
    }
    match &cli.command {
        Command::Separate(args) => run_separate(args, &out),
        Command::Eval(args) => eval::run_eval(args, &out),
    }
}

/// Where messages go: results on stdout, diagnostics on stderr, as `-q`/`-v` ask.
struct Output {
    quiet: bool,
    verbose: bool,
}

impl Output {
    fn new(cli: &Cli) -> Output {
        Output {
            quiet: cli.quiet,
            verbose: cli.verbose,
        }
    }

    fn error(&self, message: &str) {
        eprintln!("demix: error: {message}");
    }

    fn warn(&self, message: &str) {
        if !self.quiet {
            eprintln!("demix: warning: {message}");
        }
    }

    fn info(&self, message: &str) {
        if !self.quiet {
            println!("{message}");
        }
    }

    fn detail(&self, message: &str) {
        if self.verbose {
            eprintln!("{message}");
        }
    }

    /// A bar of NMF iterations, drawn only when stderr is a terminal and not `-q`.
    fn iteration_bar(&self, name: &str, max_iter: usize) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar =
            ProgressBar::with_draw_target(Some(max_iter as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} iterations {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        bar
    }
}

fn run_separate(args: &SeparateArgs, out: &Output) -> ExitCode {
    let params = args.params();
    if let Err(e) = params.check() {
        out.error(&describe_param_error(&e));
        return ExitCode::from(FAILURE);
    }
    let output = args.output();
    out.detail(&format!(
        "demix separate: k={} loss={} iter={} tol={} seed={} n_fft={} hop={} mask_power={}",
        args.components,
        args.loss,
        args.max_iter,
        args.tol,
        args.seed,
        params.stft.n_fft(),
        params.stft.hop(),
        args.mask_power
    ));

    let mut failed = 0usize;
    let mut claimed: HashMap<std::path::PathBuf, &Path> = HashMap::new();
    for input in &args.inputs {
        let name = input.display().to_string();
        let track_dir = args.out.join(input.file_stem().unwrap_or_default());
        if let Some(first) = claimed.get(&track_dir) {
            out.error(&format!(
                "{name}: its output folder {} is also that of {}; separate them in two runs",
                track_dir.display(),
                first.display()
            ));
            failed += 1;
            continue;
        }
        claimed.insert(track_dir, input);

        let started = Instant::now();
        let bar = out.iteration_bar(&name, args.max_iter);
        let result = separate::separate_file(input, &args.out, &params, &output, &mut |p| {
            bar.set_position(p.iteration as u64);
            if let Some(cost) = p.cost {
                bar.set_message(format!("cost {cost:.4e}"));
            }
        });
        bar.finish_and_clear();
        match result {
            Ok(report) => report_success(&name, &report, output.format, started, out),
            Err(e) => {
                let hint = match e {
                    demix::Error::OutputExists(_) => "; use --force to replace it",
                    _ => "",
                };
                out.error(&format!("{name}: {e}{hint}"));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        if args.inputs.len() > 1 {
            out.error(&format!("{failed} of {} inputs failed", args.inputs.len()));
        }
        ExitCode::from(FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

fn report_success(
    name: &str,
    report: &TrackReport,
    format: OutputFormat,
    started: Instant,
    out: &Output,
) {
    let how = if report.converged {
        "converged after"
    } else {
        "stopped at"
    };
    out.info(&format!(
        "{name}: {} sources in {} ({how} {} iterations, cost {:.4e}, {:.1} s)",
        report.stems.len(),
        report.track_dir.display(),
        report.iterations,
        report.final_cost,
        started.elapsed().as_secs_f64()
    ));
    for stem in &report.stems {
        out.detail(&format!("  {}", stem.path.display()));
        if stem.clip.clipped > 0 {
            let bits = if format == OutputFormat::Int24 {
                24
            } else {
                16
            };
            out.warn(&format!(
                "{}: {} samples beyond full scale (peak {:.3}) were limited to full scale in \
                 {bits}-bit output; use --float32 to keep them",
                stem.path.display(),
                stem.clip.clipped,
                stem.clip.peak
            ));
        }
    }
}

/// A parameter error with the flag that sets the parameter.
fn describe_param_error(e: &ParamError) -> String {
    let flag = match e {
        ParamError::NoComponents(_) => "-k/--components",
        ParamError::FftTooSmall { .. } => "--n-fft",
        ParamError::HopOutOfRange { .. } | ParamError::HopTooLarge { .. } => "--hop",
        ParamError::OutOfRange { name: "tol", .. } => "--tol",
        ParamError::OutOfRange {
            name: "mask power", ..
        } => "--mask-power",
        ParamError::OutOfRange { name: "beta", .. } | ParamError::UnknownLoss(_) => "--loss",
        _ => "invalid parameter",
    };
    format!("{flag}: {e}")
}
