//! The `chalktalk-bench` binary: one benchmark per run, its report as one
//! JSON object on stdout (docs/BENCHMARKS.md). `chalktalk bench …` runs
//! this binary with the same arguments.

use std::process::ExitCode;

use chalktalk_bench::BenchCommand;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "chalktalk-bench",
    version,
    about = "chalktalk's benchmarks; each prints one JSON object"
)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(chalktalk_bench::run(cli.command)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
