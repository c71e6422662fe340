//! The checks of the wizard's answers and flags: each returns the value to keep or one line
//! for the user.

use super::Invalid;

/// The runtimes `setup` offers.
pub const RUNTIMES: &[&str] = &["auto", "docker", "process"];

/// One of `allowed`, case-insensitive.
pub fn check_choice(what: &str, v: &str, allowed: &[&str]) -> Result<String, Invalid> {
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

/// Keys and tokens: one line, no spaces, sane length (the channels' rule too).
pub fn check_secret(what: &str, v: &str) -> Result<String, Invalid> {
    nanoclaw_host::channels::single_token(what, v).map_err(Invalid)
}

/// An http(s) URL, without its trailing slash.
pub fn check_url(v: &str) -> Result<String, Invalid> {
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

/// The assistant's name: it goes into `nanoclaw.toml` and CLAUDE.md.
pub fn check_name(v: &str) -> Result<String, Invalid> {
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
