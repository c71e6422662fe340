//! Skills: `SKILL.md` files (front matter `name`, `description`) found in the skills folders,
//! listed in the system prompt and loaded on demand with the `skill` tool.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{arg_str, Set, Tool, ToolFuture, Toolbox};

/// A discovered skill.
#[derive(Debug, Clone, PartialEq)]
pub struct Skill {
    /// Name (front matter, else the folder name).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// The SKILL.md file.
    pub path: PathBuf,
}

fn front_matter(text: &str, key: &str) -> Option<String> {
    let body = text.strip_prefix("---")?;
    let end = body.find("\n---")?;
    body[..end].lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Finds skills in the given folders and the agent folder's `skills/`; earlier folders win.
pub fn discover(dirs: &[PathBuf], agent_dir: &Path) -> Vec<Skill> {
    let mut all = dirs.to_vec();
    all.push(agent_dir.join("skills"));
    let mut out: Vec<Skill> = Vec::new();
    for dir in all.iter().rev() {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path().join("SKILL.md");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let folder = e.file_name().to_string_lossy().into_owned();
            let name = front_matter(&text, "name").unwrap_or(folder);
            let description = front_matter(&text, "description").unwrap_or_default();
            // Later (agent) folders are read first; an agent's own skill overrides a bundled one.
            if !out.iter().any(|s| s.name == name) {
                out.push(Skill {
                    name,
                    description,
                    path,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The `skill` tool, offered when there are skills.
pub struct SkillTool;

impl Tool for SkillTool {
    fn name(&self) -> &'static str {
        "skill"
    }
    fn description(&self) -> &'static str {
        "Load the full instructions of a skill listed in the system prompt."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
    }
    fn set(&self) -> Set {
        Set::All
    }
    fn offered(&self, tb: &Toolbox) -> bool {
        !tb.skills.is_empty()
    }
    fn call<'a>(&'a self, tb: &'a Toolbox, input: &'a Value) -> ToolFuture<'a> {
        Box::pin(async move { load(&tb.skills, input) })
    }
}

/// Returns a skill's SKILL.md.
pub fn load(skills: &[Skill], input: &Value) -> Result<String, String> {
    let name = arg_str(input, "name")?;
    let s = skills
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no skill named {name:?}"))?;
    std::fs::read_to_string(&s.path).map_err(|e| format!("{}: {e}", s.path.display()))
}
