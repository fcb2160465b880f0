//! The `demix` binary: turns flags into checked library parameters, runs, reports.

mod args;
mod batch;
mod command;
mod eval;
mod inspect;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use args::LearnArgs;
use command::{Cli, Command, ReportCommand};
use demix::ParamError;
use demix::sources::Templates;

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
            out.error("--threads must be at least 1");
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
        Command::Separate(args) => batch::run_separate(args, cli.threads, &out),
        Command::Report(ReportCommand::Merge(args)) => batch::run_merge(args, &out),
        Command::Learn(args) => run_learn(args, &out),
        Command::Inspect(args) => inspect::run(args, cli.threads, &out),
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

/// Loads the templates of `--source [NAME=]FILE` options, renaming them as asked.
fn load_sources(specs: &[String]) -> Result<Vec<Templates>, String> {
    specs
        .iter()
        .map(|spec| {
            let (name, file) = match spec.split_once('=') {
                Some((name, file)) if !name.is_empty() && !Path::new(spec).exists() => {
                    (Some(name), file)
                }
                _ => (None, spec.as_str()),
            };
            let mut templates =
                Templates::load(Path::new(file)).map_err(|e| format!("{file}: {e}"))?;
            if let Some(name) = name {
                templates.name = name.to_string();
            }
            Ok(templates)
        })
        .collect()
}

fn run_learn(args: &LearnArgs, out: &Output) -> ExitCode {
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_stem()
            .map_or_else(|| "source".into(), |s| s.to_string_lossy().into_owned())
    });
    let stft = args.model.stft(None);
    let nmf = args.model.nmf(args.components, args::ModelDefaults::LEARN);
    let target = args.out.display().to_string();
    if args.out.exists() && !args.force {
        out.error(&format!(
            "{target}: already exists; use --force to replace it"
        ));
        return ExitCode::from(FAILURE);
    }
    if args.inputs.iter().any(|i| same_file(i, &args.out)) {
        out.error(&format!(
            "{target}: is one of the inputs; choose another output file"
        ));
        return ExitCode::from(FAILURE);
    }
    let mut examples = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        match demix::audio::read_audio(input) {
            Ok(audio) => examples.push(audio),
            Err(e) => {
                out.error(&format!("{}: {e}", input.display()));
                return ExitCode::from(FAILURE);
            }
        }
    }
    let started = Instant::now();
    let bar = out.iteration_bar(&target, args.model.max_iter);
    let learned = demix::sources::learn(&name, &examples, &stft, &nmf, &mut |p| {
        bar.set_position(p.iteration as u64);
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
            ExitCode::SUCCESS
        }
        Err(demix::Error::Param(e)) => {
            out.error(&describe_param_error(&e));
            ExitCode::from(FAILURE)
        }
        Err(e) => {
            let inputs: Vec<String> = args
                .inputs
                .iter()
                .map(|i| i.display().to_string())
                .collect();
            out.error(&format!("{}: {e}", inputs.join(", ")));
            ExitCode::from(FAILURE)
        }
    }
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
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
            name: "sparsity", ..
        } => "--sparsity",
        ParamError::OutOfRange {
            name: "smoothness", ..
        } => "--smoothness",
        ParamError::OutOfRange {
            name: "restarts", ..
        } => "--restarts",
        ParamError::OutOfRange { name: "floor", .. } => "--floor",
        ParamError::OutOfRange {
            name: "spatial iterations",
            ..
        } => "--spatial-iterations",
        ParamError::OutOfRange {
            name: "mask power", ..
        } => "--mask-power",
        ParamError::OutOfRange { name: "beta", .. } | ParamError::UnknownLoss(_) => "--loss",
        ParamError::OutOfRange {
            name: "sources", ..
        } => "--sources",
        ParamError::SourceName { .. } => "source name",
        ParamError::TemplateSettings { .. } => "--source",
        ParamError::Conflict(_) => "options",
        _ => "invalid parameter",
    };
    format!("{flag}: {e}")
}
