//! `nanoclaw`: the host, the terminal chat and the admin CLI.

mod chat;
mod ctl;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nanoclaw_protocol::Home;

/// NanoClaw: a personal AI assistant in the chat apps you already use.
#[derive(Parser)]
#[command(name = "nanoclaw", version, about)]
struct Cli {
    /// Home directory (default: $NANOCLAW_HOME or ~/.local/share/nanoclaw).
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the host in the foreground.
    Run,
    /// Talk to your agent in the terminal.
    Chat {
        /// Agent group folder (default: main).
        #[arg(long)]
        agent: Option<String>,
        /// Send one message (`-` reads it from stdin), print the replies of that turn, exit.
        #[arg(short = 'm', long = "message")]
        message: Option<String>,
        /// Seconds to wait for the turn to finish (with -m).
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
    },
    /// Admin CLI: `nanoclaw ctl <resource> <verb> [--field value…] [--json]`.
    Ctl {
        /// Resource, verb and field flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// The home directory: flag, then $NANOCLAW_HOME, then the platform default.
fn resolve_home(flag: Option<PathBuf>) -> anyhow::Result<Home> {
    if let Some(p) = flag.or_else(|| std::env::var_os("NANOCLAW_HOME").map(PathBuf::from)) {
        return Ok(Home::new(p));
    }
    let base = std::env::var_os("HOME").map(PathBuf::from).ok_or_else(|| {
        anyhow::anyhow!("cannot find your home directory: set NANOCLAW_HOME or pass --home")
    })?;
    Ok(Home::new(if cfg!(target_os = "macos") {
        base.join("Library/Application Support/nanoclaw")
    } else {
        base.join(".local/share/nanoclaw")
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = resolve_home(cli.home).and_then(|home| match cli.cmd {
        Cmd::Run => run::run(home),
        Cmd::Chat {
            agent,
            message,
            timeout,
        } => chat::chat(home, agent, message, timeout),
        Cmd::Ctl { args } => ctl::run(&home, args),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
