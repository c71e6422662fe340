//! The system prompt: global CLAUDE.md + the agent's CLAUDE.md + a generated part (DESIGN §7).

use std::fmt::Write;

use crate::store;
use crate::tools::Toolbox;
use crate::Config;

fn read(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Builds the system prompt (destinations are read fresh: wiring can change between turns).
pub fn system(cfg: &Config, tools: &Toolbox) -> String {
    let mut s = String::new();
    if let Some(g) = read(&cfg.global_dir.join("CLAUDE.md")) {
        let _ = writeln!(s, "{}\n", g.trim());
    }
    if let Some(a) = read(&cfg.agent_dir.join("CLAUDE.md")) {
        let _ = writeln!(s, "{}\n", a.trim());
    }
    let _ = writeln!(
        s,
        "# NanoClaw\nYou are {}, a personal assistant living in the user's chat apps. Messages arrive in a <messages> block \
         (sender, local time, seq). Your final answer is sent to the current chat. Wrap private reasoning in \
         <internal>…</internal>: it is never sent. Refer to messages by seq (edit_message, add_reaction). Your working \
         folder is {} (memory and files persist there).",
        cfg.assistant_name,
        cfg.agent_dir.display()
    );
    let dests = store::lock(&tools.store).destinations().unwrap_or_default();
    if !dests.is_empty() {
        s.push_str("\n## Destinations\nAddress one with <message to=\"name\">…</message> in your answer, or the `to` argument of send_message:\n");
        for d in &dests {
            let _ = writeln!(
                s,
                "- {} ({}{})",
                d.name,
                d.kind,
                d.display_name
                    .as_deref()
                    .map(|n| format!(", {n}"))
                    .unwrap_or_default()
            );
        }
    }
    if !tools.skills.is_empty() {
        s.push_str("\n## Skills\nLoad one with the `skill` tool when it applies:\n");
        for sk in &tools.skills {
            let _ = writeln!(s, "- {}: {}", sk.name, sk.description);
        }
    }
    s.push_str("\n## Tools\nFile tools resolve relative paths in your folder and refuse paths outside the workspace. \
        bash runs with a timeout; long output is truncated. Use send_message for progress on long tasks, \
        ask_user_question for choices, schedule_task for reminders and recurring work.\n");
    s
}
