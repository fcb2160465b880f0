//! The `demix` binary: turns flags into checked library parameters, runs, reports.
//!
//! One file per subcommand (`separate`, `learn`, `inspect`, `eval`, `report`, `rank`); `batch` holds
//! what the subcommands over folders share, `failure` the one error printer and exit codes.

mod args;
mod batch;
mod command;
mod eval;
mod failure;
mod inspect;
mod learn;
mod rank;
mod report;
mod separate;
mod stdin;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use command::{Cli, Command, ReportCommand};
use demix::sources::Templates;
use failure::{Failure, USAGE};

/// Most worker threads: each costs a stack, and a million of them never start.
const MAX_THREADS: usize = 1024;

/// Parses the command line, runs it, and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

/// Runs the command line; the exit code of a run that went to its end, else why it stopped.
fn run() -> Result<ExitCode, Failure> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { USAGE } else { 0 };
            let _ = e.print();
            return Ok(ExitCode::from(code));
        }
    };
    let out = Output::new(&cli);
    if let Some(n) = cli.threads {
        if n == 0 || n > MAX_THREADS {
            return Err(Failure::usage(format!(
                "--threads must be between 1 and {MAX_THREADS} (got {n})"
            )));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Failure::failed(format!("cannot start {n} threads: {e}")))?;
    }
    match &cli.command {
        Command::Separate(args) => separate::run(args, cli.threads, &out),
        Command::Report(ReportCommand::Merge(args)) => report::run_merge(args, &out),
        Command::Learn(args) => learn::run(args, &out),
        Command::Inspect(args) => inspect::run(args, cli.threads, &out),
        Command::Eval(args) => eval::run(args, &out),
        Command::Rank(args) => rank::run(args, &out),
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
        failure::print_error(message);
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
fn load_sources(specs: &[String]) -> Result<Vec<Templates>, Failure> {
    specs
        .iter()
        .map(|spec| {
            let (name, file) = match spec.split_once('=') {
                Some((name, file)) if !name.is_empty() && !Path::new(spec).exists() => {
                    (Some(name), file)
                }
                _ => (None, spec.as_str()),
            };
            let mut templates = Templates::load(Path::new(file))
                .map_err(|e| Failure::failed(format!("{file}: {e}")))?;
            if let Some(name) = name {
                templates.name = name.to_string();
            }
            Ok(templates)
        })
        .collect()
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
