//! Slash commands in chat messages: admin commands handled by the runner, filtered ones dropped,
//! everything else passed to the model as text (DESIGN §7).

/// What to do with a message's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Not a command the runner handles: give it to the model.
    PassThrough,
    /// `/clear`: drop the provider's session state.
    Clear,
    /// `/compact`: summarise the conversation now.
    Compact,
    /// An admin command from someone who is not an admin.
    Refused(String),
    /// A command that must never reach the model (it would act on the runner itself).
    Filtered,
}

/// Commands only admins may run.
const ADMIN: &[&str] = &["/clear", "/compact"];
/// Commands of the Claude Code CLI that make no sense (or harm) inside the sandbox.
const FILTERED: &[&str] = &[
    "/login",
    "/logout",
    "/config",
    "/doctor",
    "/exit",
    "/quit",
    "/vim",
    "/terminal-setup",
];

/// Admin user ids from `NANOCLAW_ADMIN_USER_IDS` (comma separated).
pub fn admins_from_env() -> Vec<String> {
    std::env::var(nanoclaw_protocol::env::ADMIN_USER_IDS)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Classifies a chat message.
pub fn classify(text: &str, sender_id: &str, admins: &[String]) -> Command {
    let t = text.trim();
    if !t.starts_with('/') {
        return Command::PassThrough;
    }
    let word = t
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if FILTERED.contains(&word.as_str()) {
        return Command::Filtered;
    }
    if !ADMIN.contains(&word.as_str()) {
        return Command::PassThrough;
    }
    if !admins.iter().any(|a| a == sender_id) {
        return Command::Refused(format!(
            "{word} is an admin command; you are not an admin of this agent."
        ));
    }
    match word.as_str() {
        "/clear" => Command::Clear,
        _ => Command::Compact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_gating_and_filtering() {
        let admins = vec!["telegram:1".to_string()];
        assert_eq!(classify("/clear", "telegram:1", &admins), Command::Clear);
        assert_eq!(
            classify(" /COMPACT now", "telegram:1", &admins),
            Command::Compact
        );
        assert!(matches!(
            classify("/clear", "telegram:2", &admins),
            Command::Refused(_)
        ));
        assert_eq!(classify("/login", "telegram:1", &admins), Command::Filtered);
        assert_eq!(
            classify("/weather", "telegram:2", &admins),
            Command::PassThrough
        );
        assert_eq!(
            classify("hello /clear", "telegram:2", &admins),
            Command::PassThrough
        );
    }
}
