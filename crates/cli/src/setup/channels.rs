//! The channel part of `setup`, read from the registry ([`SPECS`]): each adapter's
//! [`SetupStep`] is a wizard question, a `--<flag> VAR` flag and, once enabled, maybe a
//! pairing code. Nothing here names a channel.

use nanoclaw_host::channels::{SetupStep, Spec, SPECS};
use nanoclaw_protocol::Home;

use super::prompts::Prompter;
use super::{Invalid, Plan};

/// The adapters `setup` can enable, with their step, in the registry's order.
fn steps() -> impl Iterator<Item = (&'static Spec, &'static SetupStep)> {
    SPECS
        .iter()
        .copied()
        .filter_map(|spec| spec.setup.as_ref().map(|step| (spec, step)))
}

/// The `--<flag> VAR` flags of the channels' setup steps: flag → the variable named.
#[derive(Debug, Default, Clone)]
pub struct ChannelFlags(Vec<(&'static str, String)>);

impl ChannelFlags {
    fn var(&self, flag: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.as_str())
    }
}

impl clap::FromArgMatches for ChannelFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        for (_, step) in steps() {
            if let Some(var) = m.get_one::<String>(step.flag) {
                self.0.retain(|(f, _)| *f != step.flag);
                self.0.push((step.flag, var.clone()));
            }
        }
        Ok(())
    }
}

impl clap::Args for ChannelFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        steps().fold(cmd, |cmd, (_, step)| {
            // What clap's derive would name it (`--a-b` → A_B); clap keeps only 'static names,
            // and this runs once per process.
            let value_name: &'static str =
                Box::leak(step.flag.replace('-', "_").to_uppercase().into_boxed_str());
            cmd.arg(
                clap::Arg::new(step.flag)
                    .long(step.flag)
                    .value_name(value_name)
                    .help(step.flag_help)
                    .action(clap::ArgAction::Set)
                    .value_parser(clap::value_parser!(String)),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Records a channel's validated value: secrets for `.env`, the rest for `nanoclaw.toml`.
fn enable(plan: &mut Plan, spec: &'static Spec, step: &SetupStep, value: String) {
    if spec.setting(step.key).is_none_or(|s| s.secret) {
        plan.secrets.push((step.key.to_string(), value));
    } else {
        plan.config.push((step.key, value));
    }
    plan.channels.push(spec.channel_type);
}

/// The channels named by their flags; each value comes from the environment variable named.
pub fn from_flags(flags: &ChannelFlags, plan: &mut Plan) -> Result<(), Invalid> {
    for (spec, step) in steps() {
        let Some(var) = flags.var(step.flag) else {
            continue;
        };
        let v = std::env::var(var)
            .map_err(|_| Invalid(format!("--{}: ${var} is not set", step.flag)))?;
        let v = (step.check)(step.noun, &v).map_err(Invalid)?;
        enable(plan, spec, step, v);
    }
    Ok(())
}

/// Asks each channel's question; an empty answer skips the channel.
pub fn ask(p: &mut Prompter<'_>, plan: &mut Plan) -> std::io::Result<()> {
    for (spec, step) in steps() {
        let hidden = spec.setting(step.key).is_none_or(|s| s.secret);
        let answer = if hidden {
            p.secret(step.prompt)?
        } else {
            p.ask(step.prompt, "")?
        };
        if answer.trim().is_empty() {
            continue;
        }
        let v = (step.check)(step.short_noun, &answer).map_err(std::io::Error::other)?;
        enable(plan, spec, step, v);
    }
    Ok(())
}

/// Issues a pairing code for each channel enabled whose step asks for one: (its line, code).
pub fn pair(home: &Home, plan: &Plan) -> anyhow::Result<Vec<(&'static str, String)>> {
    let wanted: Vec<_> = steps()
        .filter(|(spec, _)| plan.channels.contains(&spec.channel_type))
        .filter_map(|(spec, step)| step.pairing.map(|line| (spec.channel_type, line)))
        .collect();
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    let db = nanoclaw_host::db::Db::open(&home.central_db())?;
    wanted
        .into_iter()
        .map(|(channel, line)| {
            let code = db.with(|c| nanoclaw_host::access::pairing::issue(c, channel))?;
            Ok((line, code))
        })
        .collect()
}

/// A channel `pair` works for, for its `--help` example.
pub fn pairing_example() -> Option<&'static str> {
    steps()
        .find(|(_, step)| step.pairing.is_some())
        .map(|(spec, _)| spec.channel_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `setup`'s flags parsed as clap parses the command line.
    fn parse(argv: &[&str]) -> super::super::Args {
        use clap::{Args, FromArgMatches};
        let cmd = super::super::Args::augment_args(clap::Command::new("setup"));
        let m = cmd.try_get_matches_from(argv).unwrap();
        super::super::Args::from_arg_matches(&m).unwrap()
    }

    #[test]
    fn every_step_is_a_flag_naming_a_variable() {
        for (_, step) in steps() {
            let flag = format!("--{}", step.flag);
            let a = parse(&[
                "setup",
                "--non-interactive",
                &flag,
                "NANOCLAW_TEST_UNSET_VAR",
            ]);
            assert_eq!(a.channels.var(step.flag), Some("NANOCLAW_TEST_UNSET_VAR"));
            assert_eq!(
                super::super::plan::from_flags(&a, &mut std::io::empty())
                    .unwrap_err()
                    .0,
                format!("{flag}: $NANOCLAW_TEST_UNSET_VAR is not set")
            );
        }
        assert!(parse(&["setup"]).channels.0.is_empty());
    }

    #[test]
    fn every_step_is_a_question_that_enables_its_channel() {
        let answers = "v1\n".repeat(steps().count());
        let mut input = answers.as_bytes();
        let mut out = Vec::new();
        let mut p = Prompter {
            input: &mut input,
            out: &mut out,
            hide: false,
        };
        let mut plan = Plan::default();
        ask(&mut p, &mut plan).unwrap();
        let enabled: Vec<_> = steps().map(|(spec, _)| spec.channel_type).collect();
        assert_eq!(plan.channels, enabled);
        let mut stored: Vec<_> = plan
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        stored.extend(plan.config.iter().map(|(k, v)| (*k, v.as_str())));
        let mut keys: Vec<_> = steps().map(|(_, step)| (step.key, "v1")).collect();
        stored.sort_unstable();
        keys.sort_unstable();
        assert_eq!(stored, keys);
        let printed = String::from_utf8(out).unwrap();
        for (_, step) in steps() {
            assert!(printed.contains(step.prompt), "{printed}");
        }
    }
}
