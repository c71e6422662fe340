//! `doctor`'s report on the install itself: whose central DB this is (a NanoClaw v2 install is
//! recognised and adopted), what it holds, and what could not be carried over, with the fix.
//!
//! Reads the DB without migrating it: doctor may run beside a host (ours or v2's).

use nanoclaw_host::config::Settings;
use nanoclaw_protocol::Home;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::doctor::Verdict;

/// The install's checks.
pub fn checks(home: &Home, settings: &Settings) -> Vec<(&'static str, Verdict)> {
    let mut out = vec![];
    if let Ok(Some(sock)) =
        crate::run::runtime().map(|rt| rt.block_on(nanoclaw_host::foreign_host(home)))
    {
        if !nanoclaw_host::host_running(home) {
            out.push(("install", Verdict::Fail(format!(
                "another host (NanoClaw v2?) is serving this home: something listens on {}. Fix: stop it (v2: `systemctl --user stop nanoclaw`, or `launchctl unload` its plist) before `nanoclaw run`",
                sock.display()
            ))));
        }
    }
    let path = home.central_db();
    if !path.exists() {
        out.push((
            "install",
            Verdict::Ok("new home: the first `nanoclaw run` or `chat` creates data/v2.db".into()),
        ));
        return out;
    }
    let c = match Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => {
            out.push((
                "install",
                Verdict::Fail(format!(
                    "{}: {e}. Fix: check the file's owner and mode",
                    path.display()
                )),
            ));
            return out;
        }
    };
    match report(&c, home, settings, &mut out) {
        Ok(()) => {}
        Err(e) => out.push((
            "install",
            Verdict::Fail(format!("{} cannot be read: {e}", path.display())),
        )),
    }
    out
}

fn report(
    c: &Connection,
    home: &Home,
    settings: &Settings,
    out: &mut Vec<(&'static str, Verdict)>,
) -> rusqlite::Result<()> {
    let names: Vec<String> = c
        .prepare("SELECT name FROM schema_version ORDER BY version")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let has = |n: &str| names.iter().any(|x| x == n);
    let adopted: Option<String> = c
        .query_row(
            "SELECT applied FROM schema_version WHERE name = 'adopted-from-nanoclaw-v2'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let v2_names = names
        .iter()
        .filter(|n| nanoclaw_host::db::migrations::v2_names().any(|v| v == n.as_str()))
        .count();
    out.push(("install", match (&adopted, has("initial-v2-schema"), has("delivery_intents_sticky_threads")) {
        (Some(when), _, _) => Verdict::Ok(format!("NanoClaw v2 install recognised ({v2_names} v2 migrations), adopted {when}: v2's tables kept as v2 has them, ours beside")),
        (None, true, false) => Verdict::Ok(format!("NanoClaw v2 install recognised ({v2_names} v2 migrations): the next `nanoclaw run` adopts it in place (v2's tables and rows are kept; v2 can still be pointed back at it)")),
        (None, _, true) => Verdict::Ok("NanoClaw (Rust) install".into()),
        _ => Verdict::Ok(format!("central DB with {} migrations of an earlier release: the next `nanoclaw run` brings it to NanoClaw v2's shapes", names.len())),
    }));
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
    let groups = count("SELECT COUNT(*) FROM agent_groups")?;
    let sessions = count("SELECT COUNT(*) FROM sessions WHERE status IS NOT 'closed'")?;
    let mut missing = 0;
    {
        let mut st =
            c.prepare("SELECT id, agent_group_id FROM sessions WHERE status IS NOT 'closed'")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, ag) = row?;
            let ok = home
                .session(&ag, &id)
                .map(|p| p.inbound_db().exists())
                .unwrap_or(false);
            if !ok {
                missing += 1;
            }
        }
    }
    out.push(("sessions", if missing == 0 {
        Verdict::Ok(format!("{groups} agent group(s), {sessions} active session(s), each with its folder"))
    } else {
        Verdict::Warn(format!("{groups} agent group(s), {sessions} active session(s); {missing} without a folder under {} (they start afresh on their next message)", home.sessions_dir().display()))
    }));
    let registry = nanoclaw_host::channels::Registry::from_settings(home, settings);
    let compiled = nanoclaw_host::channels::compiled();
    let mut st = c.prepare(
        "SELECT m.channel_type, COUNT(DISTINCT m.id) FROM messaging_groups m
         JOIN messaging_group_agents w ON w.messaging_group_id = m.id
         GROUP BY m.channel_type ORDER BY m.channel_type",
    )?;
    let wired: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (ct, n) in wired {
        out.push(("channel", if registry.get(&ct).is_some() {
            Verdict::Ok(format!("{ct}: {n} wired chat(s), adapter enabled"))
        } else if compiled.contains(&ct.as_str()) {
            let keys = nanoclaw_host::channels::SPECS
                .iter()
                .find(|s| s.channel_type == ct)
                .map(|s| s.enabled_by().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Verdict::Warn(format!("{ct}: {n} wired chat(s), but the adapter is not enabled. Fix: set {keys} in {}", home.env_file().display()))
        } else {
            Verdict::Warn(format!("{ct}: {n} wired chat(s) not carried over: this build has no {ct} adapter yet (its chats and sessions are kept, and answer again once it has)"))
        }));
    }
    let mut st = c.prepare(
        "SELECT agent_group_id, image_tag, effort, max_messages_per_prompt, skills FROM container_configs",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let ag: String = r.get(0)?;
        let image: Option<String> = r.get(1)?;
        let effort: Option<String> = r.get(2)?;
        let max: Option<i64> = r.get(3)?;
        let skills: String = r.get(4)?;
        let mut ignored = vec![];
        if image.is_some_and(|i| !i.is_empty()) {
            ignored.push("image_tag (v2's image holds v2's runner; ours is built from packages_apt/packages_npm: `nanoclaw image build`)");
        }
        if effort.is_some_and(|e| !e.is_empty()) {
            ignored.push("effort (not passed to the model yet)");
        }
        if max.is_some() {
            ignored.push("max_messages_per_prompt (every pending message goes in one prompt)");
        }
        if skills.trim() != "\"all\"" {
            ignored.push("skills (every installed skill is offered)");
        }
        if !ignored.is_empty() {
            out.push(("config", Verdict::Warn(format!(
                "{ag}: not carried over: {} (kept in the DB for v2; see `nanoclaw ctl container-configs help`)",
                ignored.join("; ")
            ))));
        }
    }
    Ok(())
}
