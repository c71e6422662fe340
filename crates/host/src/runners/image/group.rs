//! Per-agent-group images: the packages an approver allowed, the limits of its containers.

use bollard::Docker;

use super::{append_file, build};

/// Per-agent-group container limits (`container_configs.limits`); unset fields use the host's
/// defaults (`NANOCLAW_CONTAINER_MEMORY_MB`, `…_CPUS_MILLI`, `…_PIDS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Memory in MiB.
    pub memory_mb: Option<u64>,
    /// CPUs (fractional allowed).
    pub cpus: Option<f64>,
    /// Max processes.
    pub pids: Option<u64>,
    /// Outbound reach (`"network"`: `"internet"`, the default, or `"none"`); read by
    /// [`Limits::parse`], which fails closed.
    #[serde(skip)]
    pub network: Network,
}

/// Where an agent group's containers may connect to besides the host's credential proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// Anywhere (web_fetch, package installs, git need it): the default.
    #[default]
    Internet,
    /// Nowhere: only the host (the credential proxy) answers.
    None,
}

impl Limits {
    /// Reads `container_configs.limits`. What cannot be read is reported and left at the
    /// defaults, except the network: an unreadable or unknown value means `none`, so a typo
    /// never opens the internet to a group meant to be cut off.
    pub fn parse(json: &str) -> (Self, Option<String>) {
        let mut v: serde_json::Value = match serde_json::from_str(json) {
            Ok(v) => v,
            Err(e) => {
                let closed = Self {
                    network: Network::None,
                    ..Self::default()
                };
                return (closed, Some(e.to_string()));
            }
        };
        let mut problem = None;
        let network = match v.as_object_mut().and_then(|o| o.remove("network")) {
            None | Some(serde_json::Value::Null) => Network::Internet,
            Some(serde_json::Value::String(s)) if s == "internet" => Network::Internet,
            Some(serde_json::Value::String(s)) if s == "none" => Network::None,
            Some(other) => {
                problem = Some(format!(
                    "network {other} is neither \"internet\" nor \"none\"; none used"
                ));
                Network::None
            }
        };
        let mut limits = match serde_json::from_value::<Self>(v) {
            Ok(l) => l,
            Err(e) => {
                problem.get_or_insert(e.to_string());
                Self::default()
            }
        };
        limits.network = network;
        (limits, problem)
    }
}

/// Packages an agent group's image adds on top of the base image.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct Packages {
    /// Debian packages.
    #[serde(default)]
    pub apt: Vec<String>,
    /// Global npm packages.
    #[serde(default)]
    pub npm: Vec<String>,
}

impl Packages {
    /// From `container_configs.packages_apt` and `packages_npm` (NanoClaw v2's JSON lists).
    pub fn from_columns(apt: &str, npm: &str) -> serde_json::Result<Self> {
        Ok(Self {
            apt: serde_json::from_str(apt)?,
            npm: serde_json::from_str(npm)?,
        })
    }
}

/// Strict package-name check (`nanoclaw_protocol::packages`, the same check the runner's
/// `install_packages` tool makes): Debian names (`[a-z0-9][a-z0-9+.-]*`) and npm names
/// (`@scope/name`, lowercase, no version, path or shell characters).
pub fn validate_packages(p: &Packages) -> anyhow::Result<()> {
    Ok(nanoclaw_protocol::packages::validate(&p.apt, &p.npm)?)
}

/// The tag of an agent group's image: the base plus a hash of the sorted package list, so the
/// same list reuses the same image.
pub fn group_tag(base: &str, p: &Packages) -> String {
    let mut apt = p.apt.clone();
    let mut npm = p.npm.clone();
    apt.sort();
    apt.dedup();
    npm.sort();
    npm.dedup();
    let key = format!("{base}\n{}\n{}", apt.join(" "), npm.join(" "));
    let h = nanoclaw_protocol::fnv1a(key.as_bytes());
    format!("nanoclaw-agent-custom:{h:016x}")
}

/// The Dockerfile of an agent group's image (names validated first).
pub fn group_dockerfile(base: &str, p: &Packages) -> anyhow::Result<String> {
    validate_packages(p)?;
    let mut df = format!("FROM {base}\nUSER root\n");
    if !p.apt.is_empty() {
        df.push_str(&format!(
            "RUN apt-get update && apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*\n",
            p.apt.join(" ")
        ));
    }
    if !p.npm.is_empty() {
        df.push_str(&format!(
            "RUN npm install -g {} && npm cache clean --force\n",
            p.npm.join(" ")
        ));
    }
    df.push_str("USER 65530:65530\nENTRYPOINT [\"/usr/local/bin/nanoclaw-agent\"]\n");
    Ok(df)
}

/// Builds (or reuses) an agent group's image on top of `base`; returns its tag.
pub async fn ensure_group_image(
    docker: &Docker,
    base: &str,
    p: &Packages,
    progress: impl FnMut(&str),
) -> anyhow::Result<String> {
    let tag = group_tag(base, p);
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let df = group_dockerfile(base, p)?;
    let mut tar = tar::Builder::new(Vec::new());
    append_file(&mut tar, "Dockerfile", df.as_bytes(), 0o644)?;
    build(docker, &tag, tar.into_inner()?, progress).await?;
    Ok(tag)
}

#[cfg(test)]
mod group_tests {
    use super::*;
    use crate::runners::image::{lint_dockerfile, SLIM_DOCKERFILE};

    fn pk(apt: &[&str], npm: &[&str]) -> Packages {
        Packages {
            apt: apt.iter().map(|s| s.to_string()).collect(),
            npm: npm.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn names_are_strict() {
        assert!(validate_packages(&pk(
            &["ffmpeg", "libssl3", "g++"],
            &["typescript", "@anthropic-ai/claude-code"]
        ))
        .is_ok());
        for bad in [
            pk(&["ffmpeg; rm -rf /"], &[]),
            pk(&["../x"], &[]),
            pk(&["$(id)"], &[]),
            pk(&[], &["@scope"]),
            pk(&[], &["../../x"]),
            pk(&[], &["a b"]),
        ] {
            assert!(validate_packages(&bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..21).map(|i| format!("p{i}")).collect();
        assert!(validate_packages(&Packages {
            apt: many,
            npm: vec![]
        })
        .is_err());
    }

    #[test]
    fn limits_parse_and_the_network_fails_closed() {
        let (l, p) = Limits::parse(r#"{"memoryMb": 256, "pids": 64, "network": "none"}"#);
        assert_eq!(
            (l.memory_mb, l.pids, l.network, p),
            (Some(256), Some(64), Network::None, None)
        );
        assert_eq!(Limits::parse("{}"), (Limits::default(), None));
        assert_eq!(
            Limits::parse(r#"{"network": "internet"}"#).0.network,
            Network::Internet
        );
        for bad in [
            r#"{"network": "None"}"#,
            r#"{"network": false}"#,
            r#"{"network": "none", "pids": "x"}"#,
        ] {
            let (l, p) = Limits::parse(bad);
            assert_eq!(l.network, Network::None, "{bad}");
            assert!(p.is_some(), "{bad}");
        }
        // A column that is not JSON at all: default limits, and no internet.
        let (l, p) = Limits::parse("nope");
        assert_eq!((l.memory_mb, l.network), (None, Network::None));
        assert!(p.is_some());
    }

    #[test]
    fn images_name_the_dedicated_uid() {
        let uid = crate::runners::runtime::docker::DEDICATED_UID;
        let user = format!("USER {uid}:{uid}");
        assert!(SLIM_DOCKERFILE.contains(&user));
        let df = group_dockerfile("nanoclaw-agent:slim", &pk(&["jq"], &[])).unwrap();
        assert!(df.contains(&user), "{df}");
        let full = include_str!("../../../../../container/Dockerfile");
        assert!(
            full.contains(&format!("--uid {uid}")),
            "container/Dockerfile"
        );
    }

    #[test]
    fn tag_is_stable_per_package_set() {
        let a = group_tag("nanoclaw-agent:latest", &pk(&["b", "a"], &[]));
        assert_eq!(
            a,
            group_tag("nanoclaw-agent:latest", &pk(&["a", "b", "a"], &[]))
        );
        assert_ne!(a, group_tag("nanoclaw-agent:latest", &pk(&["a"], &[])));
        assert_ne!(a, group_tag("nanoclaw-agent:slim", &pk(&["a", "b"], &[])));
        let df =
            group_dockerfile("nanoclaw-agent:latest", &pk(&["ffmpeg"], &["typescript"])).unwrap();
        assert!(
            lint_dockerfile(&df).is_empty(),
            "{:?}",
            lint_dockerfile(&df)
        );
        assert!(df.contains("apt-get install -y --no-install-recommends ffmpeg"));
    }
}
