//! Validation of names that become path components (agent folders, session ids, message ids).

use crate::{Error, Result};

/// Longest accepted name.
pub const MAX_NAME: usize = 64;

/// Accepts `[A-Za-z0-9][A-Za-z0-9_.-]*` up to 64 chars, never `.`/`..`-like or containing a separator.
pub fn validate(name: &str) -> Result<&str> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !name.contains("..");
    if ok {
        Ok(name)
    } else {
        Err(Error::InvalidName(format!(
            "{name:?}: use letters, digits, '-', '_' or '.', start with a letter or digit, at most {MAX_NAME} characters"
        )))
    }
}

/// Turns a free-form display name into a valid folder name (`"My Agent!"` → `my-agent`).
pub fn normalize_folder(name: &str) -> Result<String> {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out
        .trim_end_matches('-')
        .chars()
        .take(MAX_NAME)
        .collect::<String>();
    validate(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_traversal() {
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "a..b",
            "a\\b",
            "x\0",
            &"a".repeat(65),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        for good in ["main", "team-1", "a.b_c"] {
            assert!(validate(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize_folder("My Agent!").unwrap(), "my-agent");
        assert_eq!(normalize_folder("../../etc").unwrap(), "etc");
        assert!(normalize_folder("../").is_err());
    }
}
