//! The `demix` binary: turns flags into checked library parameters, runs, reports.

mod args;
mod batch;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, ReportCommand};
use demix::ParamError;

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
