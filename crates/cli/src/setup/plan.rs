//! The two ways to a [`Plan`]: from flags alone (`--non-interactive`, scripts) and by asking
//! (the interactive wizard).

use std::io::BufRead;

use nanoclaw_protocol::providers::{self, Provider};

use super::prompts::Prompter;
use super::validate::{check_choice, check_name, check_secret, check_url, RUNTIMES};
use super::{channels, Args, Invalid, Plan};

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
    channels::from_flags(&a.channels, &mut plan)?;
    plan.provider = provider;
    Ok(plan)
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
    channels::ask(p, &mut plan)?;
    Ok(plan)
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
