//! `nanoclaw`: the host, the terminal chat and the admin CLI.

mod breaker;
mod chat;
mod ctl;
mod doctor;
mod image;
mod install;
mod run;
mod service;
mod setup;
mod status;

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
    /// First-run wizard: runtime, image, model credentials (.env, 0600), assistant, channels.
    Setup {
        #[command(flatten)]
        args: setup::Args,
    },
    /// Print a one-time code: the first person who sends it to the bot in a DM becomes the owner.
    Pair {
        // Its help names a channel of the registry.
        #[arg(help = pair_help())]
        channel: String,
    },
    /// The host, sessions, runners and channels at a glance.
    Status,
    /// Check the engine, image, credentials, host and disk; print a fix for each problem.
    Doctor,
    /// Remove old files: inboxes of handled messages, outboxes of delivered rows, failed
    /// containers' logs, archived transcripts (`RETENTION_DAYS`, 30).
    Gc {
        /// List what would go, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the host at login: a systemd user unit (Linux) or a launchd agent (macOS).
    Service {
        #[command(subcommand)]
        cmd: ServiceCmd,
    },
    /// Agent images.
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Admin CLI: `nanoclaw ctl <resource> <verb> [--field value…] [--json]`.
    Ctl {
        /// Resource, verb and field flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// Write the service file and enable it.
    Install {
        #[command(flatten)]
        opts: ServiceOpts,
    },
    /// Disable and remove the service file.
    Uninstall {
        #[command(flatten)]
        opts: ServiceOpts,
    },
    /// Whether the service is installed and the host runs.
    Status {
        #[command(flatten)]
        opts: ServiceOpts,
    },
}

#[derive(clap::Args)]
struct ServiceOpts {
    /// Service manager format (default: this machine's).
    #[arg(long, value_enum)]
    platform: Option<service::Platform>,
    /// Where to write the file (default: the user's systemd/launchd folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Only write/remove the file; do not call systemctl/launchctl.
    #[arg(long)]
    no_activate: bool,
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Build the agent image on the local engine (no registry needed with --slim).
    Build {
        /// The slim image: static runner + busybox, FROM scratch.
        #[arg(long)]
        slim: bool,
        /// Static `nanoclaw-agent` to put in the slim image.
        #[arg(long)]
        agent_bin: Option<PathBuf>,
        /// Static busybox for the slim image's shell and utilities.
        #[arg(long, default_value = "/bin/busybox")]
        busybox: PathBuf,
        /// Image tag (default nanoclaw-agent:slim / nanoclaw-agent:latest).
        #[arg(long)]
        tag: Option<String>,
        /// Build context of the full image.
        #[arg(long, default_value = "container")]
        context: PathBuf,
    },
}

/// `pair <channel>`'s help, its example a channel whose setup pairs (none named here: the
/// registry knows them).
fn pair_help() -> String {
    match setup::pairing_example() {
        Some(channel) => format!("Channel (e.g. {channel})"),
        None => "Channel".into(),
    }
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

/// `nanoclaw pair <channel>`. Written straight to the central DB (WAL serialises it with a
/// running host), so it works whether or not the host runs.
fn pair(home: Home, channel: &str) -> anyhow::Result<ExitCode> {
    nanoclaw_protocol::names::validate(channel)?;
    let db = nanoclaw_host::db::Db::open(&home.central_db())?;
    let code = db.with(|c| nanoclaw_host::access::pairing::issue(c, channel))?;
    println!("{code}");
    eprintln!(
        "Send this code to your bot in a direct message on {channel} within {} minutes: the sender becomes the owner. \
         {} wrong codes lock a sender out and {} from anyone burn the code (run `nanoclaw pair {channel}` again then).",
        nanoclaw_host::access::pairing::VALID_MINUTES,
        nanoclaw_host::access::pairing::MAX_TRIES_PER_SENDER,
        nanoclaw_host::access::pairing::MAX_TRIES_PER_CODE
    );
    Ok(ExitCode::SUCCESS)
}

/// `nanoclaw gc`: one retention pass now (the host also runs one daily).
fn gc(home: Home, dry_run: bool) -> anyhow::Result<ExitCode> {
    use nanoclaw_host::sweep::gc;
    if !home.central_db().exists() {
        println!("nothing to remove (no home yet)");
        return Ok(ExitCode::SUCCESS);
    }
    let settings = nanoclaw_host::config::Settings::load(&home)?;
    let db = nanoclaw_host::db::Db::open(&home.central_db())?;
    let policy = gc::Policy::from_settings(&settings);
    let targets = db.with(|c| Ok(gc::Targets::read(c)?))?;
    let items = gc::plan(&home, &targets, &policy, chrono::Utc::now().timestamp())?;
    for it in &items {
        println!("{:<14} {}", it.kind.name(), it.path().display());
    }
    if dry_run {
        println!("{} to remove (dry run: nothing removed)", items.len());
    } else {
        let n = gc::remove(&items);
        println!("{n} removed");
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // `nanoclaw agent …` is the runner (the process runtime starts this same binary), decided
    // before clap so the runner's arguments and environment stay its own.
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("agent") {
        return nanoclaw_agent::entry::main(&argv[1..], &["agent".to_string()]);
    }
    // One malloc arena instead of one per thread: the host is I/O-bound and mostly idle, and
    // per-thread arenas were the largest part of its idle RSS.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let cli = Cli::parse();
    let result = resolve_home(cli.home).and_then(|home| match cli.cmd {
        Cmd::Run => run::run(home),
        Cmd::Chat {
            agent,
            message,
            timeout,
        } => chat::chat(home, agent, message, timeout),
        Cmd::Ctl { args } => ctl::run(&home, args),
        Cmd::Doctor => doctor::doctor(home),
        Cmd::Status => status::status(home),
        Cmd::Gc { dry_run } => gc(home, dry_run),
        Cmd::Pair { channel } => pair(home, &channel),
        Cmd::Setup { args } => setup::setup(home, args),
        Cmd::Service { cmd } => {
            let (action, o) = match cmd {
                ServiceCmd::Install { opts } => (service::Action::Install, opts),
                ServiceCmd::Uninstall { opts } => (service::Action::Uninstall, opts),
                ServiceCmd::Status { opts } => (service::Action::Status, opts),
            };
            service::service(home, action, o.platform, o.dir, !o.no_activate)
        }
        Cmd::Image {
            cmd:
                ImageCmd::Build {
                    slim,
                    agent_bin,
                    busybox,
                    tag,
                    context,
                },
        } => image::build(image::BuildArgs {
            slim,
            agent_bin,
            busybox,
            tag,
            context,
        }),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
