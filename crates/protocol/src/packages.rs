//! Package names an agent may ask to add to its image (`install_packages`, DESIGN §6).
//!
//! One check for both sides: the runner's tool refuses at once what the host would refuse
//! after the approver said yes, with the same message. The names end up in a Dockerfile
//! `RUN` line, so they are strict: no versions, options, paths or shell characters.

/// Most packages one agent group may add to its image (apt and npm together).
pub const MAX_PACKAGES: usize = 20;

/// Why a package list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// More than [`MAX_PACKAGES`] names.
    #[error("at most {MAX_PACKAGES} packages per agent group")]
    TooMany,
    /// A Debian name outside `[a-z0-9][a-z0-9+.-]*` (≤ 100 bytes).
    #[error("invalid apt package name {0:?}")]
    Apt(String),
    /// An npm name that is not `name` or `@scope/name` (lowercase, ≤ 214 bytes, no version).
    #[error("invalid npm package name {0:?}")]
    Npm(String),
}

/// A Debian package name: `[a-z0-9][a-z0-9+.-]*`, at most 100 bytes.
pub fn valid_apt(name: &str) -> bool {
    name.len() <= 100
        && name
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
}

fn npm_part(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
}

/// An npm package name: `name` or `@scope/name`, lowercase, at most 214 bytes, no version
/// (`lodash@4` is refused: the image pins nothing, and `@` would start a second scope).
pub fn valid_npm(name: &str) -> bool {
    name.len() <= 214
        && match name.strip_prefix('@').map(|r| r.split_once('/')) {
            Some(Some((scope, rest))) => npm_part(scope) && npm_part(rest),
            Some(None) => false,
            None => npm_part(name),
        }
}

/// Checks a whole list: the count first, then every apt name, then every npm name (the first
/// bad one is named).
pub fn validate<A: AsRef<str>, N: AsRef<str>>(apt: &[A], npm: &[N]) -> Result<(), PackageError> {
    if apt.len() + npm.len() > MAX_PACKAGES {
        return Err(PackageError::TooMany);
    }
    if let Some(bad) = apt.iter().find(|n| !valid_apt(n.as_ref())) {
        return Err(PackageError::Apt(bad.as_ref().to_string()));
    }
    if let Some(bad) = npm.iter().find(|n| !valid_npm(n.as_ref())) {
        return Err(PackageError::Npm(bad.as_ref().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: &[&str] = &[];

    #[test]
    fn names_are_strict() {
        assert_eq!(
            validate(
                &["ffmpeg", "libssl3", "g++"],
                &["typescript", "@anthropic-ai/claude-code"]
            ),
            Ok(())
        );
        for bad in ["ffmpeg; rm -rf /", "../x", "$(id)", "-oAPT::x", "Upper", ""] {
            assert_eq!(
                validate(&[bad], NONE),
                Err(PackageError::Apt(bad.into())),
                "{bad:?}"
            );
        }
        for bad in [
            "lodash@4",
            "@scope/pkg@1.2.3",
            "@scope",
            "../../x",
            "a b",
            ".hidden",
        ] {
            assert_eq!(
                validate(NONE, &[bad]),
                Err(PackageError::Npm(bad.into())),
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_PACKAGES).map(|i| format!("p{i}")).collect();
        assert_eq!(validate(&many, NONE), Err(PackageError::TooMany));
        assert_eq!(validate(&many[1..], NONE), Ok(()));
    }

    #[test]
    fn messages_are_the_hosts() {
        assert_eq!(
            validate(NONE, &["lodash@4"]).unwrap_err().to_string(),
            "invalid npm package name \"lodash@4\""
        );
        assert_eq!(
            validate(&["a;b"], NONE).unwrap_err().to_string(),
            "invalid apt package name \"a;b\""
        );
        assert_eq!(
            PackageError::TooMany.to_string(),
            "at most 20 packages per agent group"
        );
    }
}
