//! Container skills shipped with NanoClaw (`container/skills/*/SKILL.md`), written into the home
//! at start and mounted read-only into every runner.

use std::path::PathBuf;

/// `(name, SKILL.md)` of every bundled skill.
const BUNDLED: &[(&str, &str)] = &[
    (
        "welcome",
        include_str!("../../../../container/skills/welcome/SKILL.md"),
    ),
    (
        "self-customisation",
        include_str!("../../../../container/skills/self-customisation/SKILL.md"),
    ),
];

/// Writes the bundled skills to `data/skills/` (refreshing old copies) and returns that folder.
pub fn install(home: &nanoclaw_protocol::Home) -> anyhow::Result<PathBuf> {
    let dir = home.data_dir().join("skills");
    for (name, text) in BUNDLED {
        let d = dir.join(name);
        std::fs::create_dir_all(&d)?;
        let f = d.join("SKILL.md");
        if std::fs::read_to_string(&f).ok().as_deref() != Some(*text) {
            std::fs::write(&f, text)?;
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundled_skills_have_front_matter() {
        for (name, text) in super::BUNDLED {
            assert!(text.starts_with("---\n"), "{name}");
            assert!(text.contains(&format!("name: {name}\n")), "{name}");
            assert!(text.contains("\ndescription: "), "{name}");
        }
    }
}
