//! `sprig-server`: parse arguments, start tracing, call the library, print the result.

mod cli;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    let json = cli.json;
    match cli::run(cli) {
        Ok((value, human)) => {
            use std::io::Write as _;
            let out = if json { value.to_string() } else { human };
            // A reader that stops early (`| head`) is not a failure of the command; any other
            // failure to write the answer is.
            match writeln!(std::io::stdout().lock(), "{out}") {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: could not write the answer: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            std::process::ExitCode::FAILURE
        }
    }
}
