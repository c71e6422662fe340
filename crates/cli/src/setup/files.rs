//! Writing the plan into the home: secrets into `.env` (0600 from its first byte, replaced
//! atomically, other lines kept), choices into `nanoclaw.toml`, the main group's CLAUDE.md.

use std::io::Write;
use std::path::Path;

use nanoclaw_protocol::env;
use nanoclaw_protocol::providers;
use nanoclaw_protocol::Home;

use super::Plan;

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
    toml_set.extend(plan.config.iter().cloned());
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
