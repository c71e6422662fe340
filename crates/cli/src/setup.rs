//! `nanoclaw setup`: the first-run wizard. Interactive on a terminal; `--non-interactive` takes
//! everything from flags (secrets from an environment variable or stdin, never argv).
//!
//! Secrets go to the home's `.env`, created with mode 0600 before anything is written and
//! replaced atomically (other lines kept); non-secret choices go to `nanoclaw.toml`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use nanoclaw_protocol::env;
use nanoclaw_protocol::providers::{self, Provider};
use nanoclaw_protocol::Home;

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
    /// Read a Telegram bot token from this environment variable (enables Telegram).
    #[arg(long)]
    pub telegram_token_env: Option<String>,
    /// Build the slim agent image (needs Docker and the static runner).
    #[arg(long)]
    pub build_image: bool,
}

const RUNTIMES: &[&str] = &["auto", "docker", "process"];

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
    /// OpenAI-compatible base URL.
    pub openai_base_url: Option<String>,
    /// Assistant name.
    pub assistant_name: String,
    /// Telegram enabled.
    pub telegram: bool,
    /// Build the image now.
    pub build_image: bool,
}

/// A bad answer or flag: one line for the user.
#[derive(Debug)]
pub struct Invalid(pub String);

fn check_choice(what: &str, v: &str, allowed: &[&str]) -> Result<String, Invalid> {
    let v = v.trim().to_ascii_lowercase();
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(Invalid(format!(
            "{what} {v:?} is not one of {}",
            allowed.join(", ")
        )))
    }
}

/// Keys and tokens: one line, no spaces, sane length.
pub fn check_secret(what: &str, v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty() {
        return Err(Invalid(format!("{what} is empty")));
    }
    if v.len() > 1024 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid(format!(
            "{what} must be a single token without spaces or line breaks"
        )));
    }
    Ok(v.to_string())
}

fn check_url(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    let ok = (v.starts_with("http://") || v.starts_with("https://"))
        && v.len() > 8
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(v.trim_end_matches('/').to_string())
    } else {
        Err(Invalid(format!("{v:?} is not an http(s) URL")))
    }
}

fn check_name(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty()
        || v.chars().count() > 40
        || v.chars().any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(Invalid(format!(
            "assistant name {v:?} must be 1–40 characters, no quotes"
        )));
    }
    Ok(v.to_string())
}

/// The table row of a name `check_choice` accepted.
fn row(provider: &str) -> &'static Provider {
    providers::get(provider).expect("a provider of the table")
}

/// Builds the plan from flags alone.
pub fn from_flags(a: &Args, stdin: &mut dyn BufRead) -> Result<Plan, Invalid> {
    let provider = check_choice(
        "provider",
        a.provider.as_deref().unwrap_or(providers::FALLBACK),
        &providers::names(),
    )?;
    let mut plan = Plan {
        runtime: check_choice("runtime", a.runtime.as_deref().unwrap_or("auto"), RUNTIMES)?,
        model: a.model.clone().filter(|m| !m.trim().is_empty()),
        assistant_name: check_name(a.assistant_name.as_deref().unwrap_or("Andy"))?,
        openai_base_url: a.openai_base_url.as_deref().map(check_url).transpose()?,
        build_image: a.build_image,
        ..Default::default()
    };
    if let Some(setup) = &row(&provider).setup {
        let key = setup.key;
        // A provider with a base URL question (OpenAI-compatible) works without a key when
        // a base URL is given: local servers (Ollama, vLLM) need none.
        let key_optional = setup.base_url.is_some();
        let secret = if let Some(var) = &a.api_key_env {
            std::env::var(var).map_err(|_| Invalid(format!("--api-key-env: ${var} is not set")))?
        } else if a.api_key_stdin {
            let mut line = String::new();
            stdin
                .read_line(&mut line)
                .map_err(|e| Invalid(format!("cannot read the key from stdin: {e}")))?;
            line
        } else if key_optional && plan.openai_base_url.is_some() {
            String::new()
        } else {
            return Err(Invalid(format!(
                "--provider {provider} needs its key: --api-key-env VAR or --api-key-stdin"
            )));
        };
        if !(secret.trim().is_empty() && key_optional) {
            plan.secrets
                .push((key.to_string(), check_secret(key, &secret)?));
        }
    }
    if let Some(var) = &a.telegram_token_env {
        let t = std::env::var(var)
            .map_err(|_| Invalid(format!("--telegram-token-env: ${var} is not set")))?;
        plan.secrets.push((
            "TELEGRAM_BOT_TOKEN".into(),
            check_secret("Telegram bot token", &t)?,
        ));
        plan.telegram = true;
    }
    plan.provider = provider;
    Ok(plan)
}

/// Terminal I/O of the interactive wizard.
pub struct Prompter<'a> {
    /// Answers.
    pub input: &'a mut dyn BufRead,
    /// Questions.
    pub out: &'a mut dyn Write,
    /// Hide typed secrets (a real terminal).
    pub hide: bool,
}

impl Prompter<'_> {
    fn ask(&mut self, q: &str, default: &str) -> std::io::Result<String> {
        if default.is_empty() {
            write!(self.out, "{q}: ")?;
        } else {
            write!(self.out, "{q} [{default}]: ")?;
        }
        self.out.flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "setup cancelled (end of input)",
            ));
        }
        let line = line.trim().to_string();
        Ok(if line.is_empty() {
            default.to_string()
        } else {
            line
        })
    }

    fn secret(&mut self, q: &str) -> std::io::Result<String> {
        let _echo = self.hide.then(EchoOff::new).flatten();
        let v = self.ask(q, "");
        if self.hide {
            writeln!(self.out)?;
        }
        v
    }

    /// Asks until the answer passes `check`.
    fn ask_valid<T>(
        &mut self,
        q: &str,
        default: &str,
        secret: bool,
        check: impl Fn(&str) -> Result<T, Invalid>,
    ) -> std::io::Result<T> {
        loop {
            let a = if secret {
                self.secret(q)?
            } else {
                self.ask(q, default)?
            };
            match check(&a) {
                Ok(v) => return Ok(v),
                Err(Invalid(msg)) => writeln!(self.out, "  {msg}; try again.")?,
            }
        }
    }
}

/// Turns terminal echo off for as long as it lives.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<Self> {
        // SAFETY: termios calls on stdin's fd with a zeroed, then filled, struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            Some(Self(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `new`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}

/// Builds the plan by asking.
pub fn interactive(p: &mut Prompter<'_>, engine: bool) -> std::io::Result<Plan> {
    writeln!(p.out, "NanoClaw setup — Enter keeps the [default].\n")?;
    writeln!(
        p.out,
        "1. Runtime: {}",
        if engine {
            "a Docker engine answers; each conversation can run in its own container."
        } else {
            "no Docker engine reachable; agents will run as child processes (weaker isolation)."
        }
    )?;
    let runtime = p.ask_valid(
        "Runtime (auto/docker/process)",
        if engine { "auto" } else { "process" },
        false,
        |v| check_choice("runtime", v, RUNTIMES),
    )?;
    let build_image = engine
        && runtime != "process"
        && p.ask_valid("Build the agent image now? (y/n)", "y", false, |v| {
            check_choice("answer", v, &["y", "n", "yes", "no"])
        })?
        .starts_with('y');
    writeln!(p.out, "\n2. Model")?;
    let names = providers::names();
    let provider = p.ask_valid(
        &format!("Provider ({})", names.join("/")),
        names[0],
        false,
        |v| check_choice("provider", v, &names),
    )?;
    let mut plan = Plan {
        runtime,
        provider: provider.clone(),
        build_image,
        ..Default::default()
    };
    let row = row(&provider);
    if let Some(setup) = &row.setup {
        if let Some(base) = &setup.base_url {
            plan.openai_base_url =
                Some(p.ask_valid(base.prompt, base.default, false, check_url)?);
            let k = p.secret(setup.prompt)?;
            if !k.trim().is_empty() {
                plan.secrets.push((
                    setup.key.into(),
                    check_secret(setup.noun, &k).map_err(|Invalid(m)| std::io::Error::other(m))?,
                ));
            }
        } else {
            let k = p.ask_valid(setup.prompt, "", true, |v| check_secret(setup.noun, v))?;
            plan.secrets.push((setup.key.into(), k));
        }
    }
    if row.takes_model {
        let m = p.ask("Model (Enter for the provider's default)", "")?;
        plan.model = (!m.is_empty()).then_some(m);
    }
    writeln!(p.out, "\n3. Your assistant")?;
    plan.assistant_name = p.ask_valid("Name", "Andy", false, check_name)?;
    writeln!(
        p.out,
        "\n4. Channels (the terminal always works: `nanoclaw chat`)"
    )?;
    let tg = p.secret("Telegram bot token from @BotFather (hidden; Enter to skip)")?;
    if !tg.trim().is_empty() {
        let t = check_secret("the token", &tg).map_err(|Invalid(m)| std::io::Error::other(m))?;
        plan.secrets.push(("TELEGRAM_BOT_TOKEN".into(), t));
        plan.telegram = true;
    }
    Ok(plan)
}

/// Sets `KEY=value` lines in an env file, keeping the others; the file is 0600 from its first
/// byte and replaced atomically.
pub fn update_env_file(path: &Path, set: &[(String, String)]) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<String> = Vec::new();
    let mut done = vec![false; set.len()];
    for l in old.lines() {
        let key = l
            .trim()
            .trim_start_matches("export ")
            .split('=')
            .next()
            .unwrap_or("")
            .trim();
        match set.iter().position(|(k, _)| k == key) {
            Some(i) if !done[i] => {
                lines.push(format!("{}={}", set[i].0, set[i].1));
                done[i] = true;
            }
            Some(_) => {} // a duplicate of a key we set: dropped
            None => lines.push(l.to_string()),
        }
    }
    for (i, (k, v)) in set.iter().enumerate() {
        if !done[i] {
            lines.push(format!("{k}={v}"));
        }
    }
    let tmp = path.with_extension("env.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all((lines.join("\n") + "\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Sets keys in `nanoclaw.toml`, keeping the rest.
pub fn update_toml(path: &Path, set: &[(&str, String)]) -> anyhow::Result<()> {
    let mut table: toml::Table = match std::fs::read_to_string(path) {
        Ok(t) => t
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        Err(_) => toml::Table::new(),
    };
    for (k, v) in set {
        // The loader is case-insensitive: replace any spelling of the key.
        table.retain(|existing, _| !existing.eq_ignore_ascii_case(k));
        table.insert(k.to_string(), toml::Value::String(v.clone()));
    }
    std::fs::write(path, toml::to_string(&table)?)?;
    Ok(())
}

/// Writes the plan into the home.
pub fn apply(home: &Home, plan: &Plan) -> anyhow::Result<()> {
    std::fs::create_dir_all(home.root())?;
    if !plan.secrets.is_empty() {
        update_env_file(&home.env_file(), &plan.secrets)?;
    }
    let mut toml_set = vec![
        (env::PROVIDER, plan.provider.clone()),
        (env::ASSISTANT_NAME, plan.assistant_name.clone()),
    ];
    if plan.runtime != "auto" {
        toml_set.push(("NANOCLAW_RUNTIME", plan.runtime.clone()));
    }
    if let Some(m) = &plan.model {
        toml_set.push((env::MODEL, m.clone()));
    }
    if let Some(u) = &plan.openai_base_url {
        toml_set.push((providers::OPENAI.base_url_var, u.clone()));
    }
    update_toml(&home.config_file(), &toml_set)?;
    let main = home.group_dir("main")?;
    std::fs::create_dir_all(&main)?;
    let claude_md = main.join("CLAUDE.md");
    if !claude_md.exists() {
        std::fs::write(
            &claude_md,
            format!(
                "# {0}\n\nYou are {0}, a helpful personal assistant. Be concise; this is a chat.\n",
                plan.assistant_name
            ),
        )?;
    }
    Ok(())
}

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
    let mut pairing = None;
    if plan.telegram {
        let db = nanoclaw_host::db::Db::open(&home.central_db())?;
        pairing = Some(db.with(|c| nanoclaw_host::access::pairing::issue(c, "telegram"))?);
    }
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
    if let Some(code) = pairing {
        println!("\nTelegram: start the host, then send this code to your bot in a DM to become its owner:\n  {code}");
    }
    println!("\nNext: `nanoclaw chat` to talk to {}, `nanoclaw run` for the host, `nanoclaw service install` to start it at login.", plan.assistant_name);
    Ok(ExitCode::SUCCESS)
}

fn interactive_plan(p: &mut Prompter<'_>, engine: bool) -> anyhow::Result<Plan> {
    interactive(p, engine).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_validate_and_secrets_never_come_from_argv() {
        let a = Args {
            non_interactive: true,
            provider: Some("anthropic".into()),
            ..Default::default()
        };
        assert!(from_flags(&a, &mut std::io::empty())
            .unwrap_err()
            .0
            .contains("needs its key"));
        let a = Args {
            provider: Some("anthropic".into()),
            api_key_stdin: true,
            ..Default::default()
        };
        let p = from_flags(&a, &mut "sk-1\n".as_bytes()).unwrap();
        assert_eq!(
            p.secrets,
            vec![("ANTHROPIC_API_KEY".to_string(), "sk-1".to_string())]
        );
        let a = Args {
            provider: Some("gpt".into()),
            ..Default::default()
        };
        assert!(from_flags(&a, &mut std::io::empty())
            .unwrap_err()
            .0
            .contains("not one of"));
        let a = Args {
            provider: Some("openai".into()),
            openai_base_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(from_flags(&a, &mut std::io::empty()).is_err());
        let a = Args {
            provider: Some("openai".into()),
            openai_base_url: Some("http://localhost:11434/v1/".into()),
            ..Default::default()
        };
        let p = from_flags(&a, &mut std::io::empty()).unwrap();
        assert!(p.secrets.is_empty(), "a local server needs no key");
        assert_eq!(
            p.openai_base_url.as_deref(),
            Some("http://localhost:11434/v1")
        );
        assert!(check_secret("k", "two words").is_err());
        assert!(check_secret("k", "a\nb").is_err());
    }

    #[test]
    fn every_provider_of_the_table_can_be_set_up_and_is_then_configured_for_doctor() {
        for row in providers::PROVIDERS {
            let a = Args {
                provider: Some(row.name.to_uppercase()),
                api_key_stdin: true,
                ..Default::default()
            };
            let plan = from_flags(&a, &mut "sk-1\n".as_bytes())
                .unwrap_or_else(|Invalid(e)| panic!("setup --provider {}: {e}", row.name));
            assert_eq!(plan.provider, row.name);
            // What setup stored is what doctor's lookup (and the host's default provider)
            // reads as configuring the provider.
            let stored = |k: &str| {
                plan.secrets
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            };
            match &row.setup {
                Some(s) => {
                    assert_eq!(plan.secrets, vec![(s.key.to_string(), "sk-1".to_string())]);
                    assert_eq!(row.credential_found(stored), Some(s.key));
                }
                None => {
                    assert!(plan.secrets.is_empty() && row.credentials.is_empty());
                }
            }
            // The wizard offers it too.
            let mut answers = format!("process\n{}\n", row.name);
            if let Some(s) = &row.setup {
                if s.base_url.is_some() {
                    answers.push('\n');
                }
                answers.push_str("sk-2\n");
            }
            if row.takes_model {
                answers.push('\n');
            }
            answers.push_str("\n\n");
            let (plan, out) = wizard(&answers);
            let plan = plan.unwrap_or_else(|e| panic!("wizard for {}: {e}", row.name));
            assert_eq!(plan.provider, row.name);
            assert_eq!(
                plan.secrets,
                row.setup
                    .iter()
                    .map(|s| (s.key.to_string(), "sk-2".to_string()))
                    .collect::<Vec<_>>()
            );
            assert!(!out.contains("try again"));
        }
        let a = Args {
            provider: Some("gpt".into()),
            ..Default::default()
        };
        assert_eq!(
            from_flags(&a, &mut std::io::empty()).unwrap_err().0,
            "provider \"gpt\" is not one of anthropic, openai, claude, mock"
        );
    }

    #[test]
    fn env_file_updates_in_place_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".env");
        std::fs::write(&p, "# mine\nOTHER=1\nANTHROPIC_API_KEY=old\n").unwrap();
        update_env_file(
            &p,
            &[
                ("ANTHROPIC_API_KEY".into(), "new".into()),
                ("TELEGRAM_BOT_TOKEN".into(), "t".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "# mine\nOTHER=1\nANTHROPIC_API_KEY=new\nTELEGRAM_BOT_TOKEN=t\n"
        );
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn interactive_asks_again_on_bad_answers() {
        let (plan, out) =
            wizard("process\nopenai\nftp://nope\nhttp://localhost:11434/v1\n\nllama3\nBob\n\n");
        let plan = plan.unwrap();
        assert_eq!(plan.provider, "openai");
        assert_eq!(
            plan.openai_base_url.as_deref(),
            Some("http://localhost:11434/v1")
        );
        assert_eq!(plan.model.as_deref(), Some("llama3"));
        assert_eq!(plan.assistant_name, "Bob");
        assert!(out.contains("try again"));
    }

    /// The wizard fed `answers`, with what it printed.
    fn wizard(answers: &str) -> (std::io::Result<Plan>, String) {
        let mut input = answers.as_bytes();
        let mut out = Vec::new();
        let plan = interactive(
            &mut Prompter {
                input: &mut input,
                out: &mut out,
                hide: false,
            },
            false,
        );
        (plan, String::from_utf8(out).unwrap())
    }
}
