//! `nanoclaw setup`: the first-run wizard. Interactive on a terminal; `--non-interactive` takes
//! everything from flags (secrets from an environment variable or stdin, never argv).
//!
//! Secrets go to the home's `.env`, created with mode 0600 before anything is written and
//! replaced atomically (other lines kept); non-secret choices go to `nanoclaw.toml`.
//!
//! `plan` builds a [`Plan`] (from flags or by asking through `prompts`, answers checked by
//! `validate`), `channels` adds what the channel registry declares, `files` writes it.

use std::io::IsTerminal;
use std::process::ExitCode;

use nanoclaw_protocol::Home;

mod channels;
mod files;
mod plan;
mod prompts;
mod validate;

pub use channels::pairing_example;
use channels::ChannelFlags;
use files::apply;
use plan::{from_flags, interactive};
use prompts::Prompter;

/// Flags of `nanoclaw setup`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Args {
    /// Take every answer from flags; fail with one line when something required is missing.
    #[arg(long)]
    pub non_interactive: bool,
    /// Runtime: auto (Docker when reachable), docker or process.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Model provider: anthropic, openai, claude or mock.
    #[arg(long)]
    pub provider: Option<String>,
    /// Model name (default: the provider's).
    #[arg(long)]
    pub model: Option<String>,
    /// Read the provider's key from this environment variable.
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Read the provider's key from the first line of stdin.
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Base URL of an OpenAI-compatible server (with /v1), e.g. http://localhost:11434/v1.
    #[arg(long)]
    pub openai_base_url: Option<String>,
    /// The assistant's name.
    #[arg(long)]
    pub assistant_name: Option<String>,
    /// Each channel's `--<flag> VAR` (its value read from VAR), from the channel registry.
    #[command(flatten)]
    pub channels: ChannelFlags,
    /// Build the slim agent image (needs Docker and the static runner).
    #[arg(long)]
    pub build_image: bool,
}

/// What the wizard decided.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// docker | process | auto.
    pub runtime: String,
    /// Provider name.
    pub provider: String,
    /// Model, if chosen.
    pub model: Option<String>,
    /// (env key, secret) pairs for `.env`.
    pub secrets: Vec<(String, String)>,
    /// Non-secret channel settings for `nanoclaw.toml`.
    pub config: Vec<(&'static str, String)>,
    /// OpenAI-compatible base URL.
    pub openai_base_url: Option<String>,
    /// Assistant name.
    pub assistant_name: String,
    /// The channel types set up, in the registry's order.
    pub channels: Vec<&'static str>,
    /// Build the image now.
    pub build_image: bool,
}

/// A bad answer or flag: one line for the user.
#[derive(Debug)]
pub struct Invalid(pub String);

fn engine_reachable() -> bool {
    crate::run::runtime()
        .map(|rt| {
            rt.block_on(async {
                nanoclaw_host::runners::runtime::docker::connect()
                    .await
                    .is_ok()
            })
        })
        .unwrap_or(false)
}

/// `nanoclaw setup`.
pub fn setup(home: Home, args: Args) -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    let interactive = !args.non_interactive && stdin.is_terminal();
    let plan = if interactive {
        let engine = args.runtime.as_deref() != Some("process") && engine_reachable();
        let mut input = stdin.lock();
        let mut out = std::io::stdout();
        let mut p = Prompter {
            input: &mut input,
            out: &mut out,
            hide: true,
        };
        interactive_plan(&mut p, engine)?
    } else {
        match from_flags(&args, &mut stdin.lock()) {
            Ok(p) => p,
            Err(Invalid(msg)) => {
                eprintln!("error: {msg}");
                return Ok(ExitCode::from(2));
            }
        }
    };
    apply(&home, &plan)?;
    if plan.build_image {
        println!("\nBuilding the agent image…");
        if let Err(e) = crate::image::build(crate::image::BuildArgs {
            slim: true,
            agent_bin: None,
            busybox: "/bin/busybox".into(),
            tag: None,
            context: "container".into(),
        }) {
            println!("Image build failed: {e:#}\nFix it later with `nanoclaw image build --slim` (see `nanoclaw doctor`).");
        }
    }
    let pairings = channels::pair(&home, &plan)?;
    println!("\n✓ Setup saved in {}", home.root().display());
    println!(
        "  runtime: {}, provider: {}{}, assistant: {}",
        plan.runtime,
        plan.provider,
        plan.model
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default(),
        plan.assistant_name
    );
    if !plan.secrets.is_empty() {
        println!(
            "  secrets: {} in {} (mode 0600)",
            plan.secrets
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            home.env_file().display()
        );
    }
    for (line, code) in pairings {
        println!("\n{line}\n  {code}");
    }
    println!("\nNext: `nanoclaw chat` to talk to {}, `nanoclaw run` for the host, `nanoclaw service install` to start it at login.", plan.assistant_name);
    Ok(ExitCode::SUCCESS)
}

fn interactive_plan(p: &mut Prompter<'_>, engine: bool) -> anyhow::Result<Plan> {
    interactive(p, engine).map_err(|e| anyhow::anyhow!("{e}"))
}
