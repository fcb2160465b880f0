//! The `demix` command-line tool; see `demix --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
