//! `nanoclaw-agent`: the runner inside each session's container (or child process).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    nanoclaw_agent::entry::main(&args, &[])
}
