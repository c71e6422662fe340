//! The system prompt: global CLAUDE.md + the agent's CLAUDE.md + its memory (`CLAUDE.local.md`,
//! NanoClaw v2's file) + a generated part (DESIGN §7).

use std::fmt::Write;

use crate::store;
use crate::tools::Toolbox;
use crate::Config;

fn read(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The first line of the `CLAUDE.md` NanoClaw v2 composes at every spawn: only `@` imports of
/// files that exist inside v2's container (`/app/CLAUDE.md`, its module fragments), nothing of
/// the agent's own. We compose our own prompt instead, so such a file is skipped (and left in
/// place: v2 regenerates it anyway if pointed back).
pub const V2_COMPOSED_HEADER: &str = "<!-- Composed at spawn";

/// The agent's own memory file (NanoClaw v2's name; Claude Code also reads it by that name).
pub const MEMORY_FILE: &str = "CLAUDE.local.md";

/// How much of the memory file goes into every prompt.
pub const MAX_MEMORY_BYTES: usize = 64 * 1024;

/// The agent's CLAUDE.md, unless it is v2's composed entry point (see [`V2_COMPOSED_HEADER`]).
fn agent_instructions(dir: &std::path::Path) -> Option<String> {
    read(&dir.join("CLAUDE.md")).filter(|a| !a.trim_start().starts_with(V2_COMPOSED_HEADER))
}

/// Builds the system prompt (destinations are read fresh: wiring can change between turns).
pub fn system(cfg: &Config, tools: &Toolbox) -> String {
    let mut s = String::new();
    if let Some(g) = read(&cfg.global_dir.join("CLAUDE.md")) {
        let _ = writeln!(s, "{}\n", g.trim());
    }
    if let Some(a) = agent_instructions(&cfg.agent_dir) {
        let _ = writeln!(s, "{}\n", a.trim());
    }
    let memory = cfg.agent_dir.join(MEMORY_FILE);
    let _ = writeln!(
        s,
        "# Your memory\n`{}` is your own memory for this agent group, and you may edit it: record what you \
         will want in every future conversation (the user's preferences, project context, recurring facts), \
         short and structured; keep larger notes in files of your folder and list them there.",
        memory.display()
    );
    match read(&memory) {
        Some(m) => {
            let mut m = m.trim();
            if m.len() > MAX_MEMORY_BYTES {
                let mut end = MAX_MEMORY_BYTES;
                while !m.is_char_boundary(end) {
                    end -= 1;
                }
                m = &m[..end];
                let _ = writeln!(
                    s,
                    "It is over {MAX_MEMORY_BYTES} bytes, so only its beginning is shown: tidy it up."
                );
            }
            let _ = writeln!(s, "Its current content:\n\n{m}\n");
        }
        None => s.push_str("It is empty so far.\n\n"),
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
