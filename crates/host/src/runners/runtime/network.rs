//! The networks session containers run on (DESIGN §8, issue 9): user-defined bridges with
//! inter-container communication off (`com.docker.network.bridge.enable_icc=false`), so no
//! agent can open a connection to another agent's container, while the host (the credential
//! proxy on the bridge's gateway) stays reachable.
//!
//! Two networks, shared by every install on the engine: [`OPEN`] routes to the internet (the
//! default: web_fetch, `pip install`, `git clone` need it) and [`INTERNAL`] routes nowhere but
//! the host (an agent group's `container_configs.limits.network = "none"`). They are created
//! once and never removed: one pair per engine cannot exhaust the engine's address pools the
//! way per-install networks left behind by killed hosts would, and sharing them costs nothing
//! since containers on them cannot reach each other anyway.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{Network, NetworkCreateRequest};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use bollard::Docker;

/// The network of agent groups with internet access.
pub const OPEN: &str = "nanoclaw";
/// The network of agent groups without it (`network = "none"`): the host only.
pub const INTERNAL: &str = "nanoclaw-internal";
/// The bridge driver's option that turns inter-container traffic on or off.
const ICC: &str = "com.docker.network.bridge.enable_icc";

/// One network as containers are attached to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    /// Engine id (names can be duplicated by a creation race; ids cannot).
    pub id: String,
    /// The host's address on the bridge: where the credential proxy listens.
    pub gateway: IpAddr,
}

/// Both networks.
#[derive(Debug, Clone)]
pub struct Networks {
    /// With internet access.
    pub open: Net,
    /// Host only.
    pub internal: Net,
}

impl Networks {
    /// Finds or creates both.
    pub async fn ensure(docker: &Docker) -> anyhow::Result<Self> {
        // Hosts starting together would each create the network, and the engine (before API
        // 1.44) accepts duplicate names, after which every container start on that name fails
        // as ambiguous. So hosts of this machine take turns here; duplicates made by hosts on
        // other machines sharing the engine are removed in `find`. A lock that is held too long
        // (by something else) is given up on, not waited for.
        let lock = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::task::spawn_blocking(machine_lock),
        )
        .await;
        let _lock = match lock {
            Ok(Ok(l)) => l,
            _ => {
                tracing::warn!(
                    "the container network lock is held by something else; going on without it"
                );
                None
            }
        };
        Ok(Self {
            open: ensure(docker, OPEN, false).await?,
            internal: ensure(docker, INTERNAL, true).await?,
        })
    }

    /// The network of a container with this outbound policy.
    pub fn of(&self, policy: crate::runners::image::Network) -> &Net {
        match policy {
            crate::runners::image::Network::Internet => &self.open,
            crate::runners::image::Network::None => &self.internal,
        }
    }
}

async fn ensure(docker: &Docker, name: &str, internal: bool) -> anyhow::Result<Net> {
    if find(docker, name).await?.is_none() {
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            internal: Some(internal),
            enable_ipv6: Some(false),
            options: Some(HashMap::from([(ICC.to_string(), "false".to_string())])),
            labels: Some(HashMap::from([(
                "nanoclaw.network".to_string(),
                if internal { "internal" } else { "open" }.to_string(),
            )])),
            ..Default::default()
        };
        docker
            .create_network(req)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the container network {name}: {e}"))?;
    }
    // Found again rather than taken from the create answer: two hosts starting at once may
    // both have created one, and all of them must settle on the same.
    let n = find(docker, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the container network {name} vanished after creation"))?;
    check(name, internal, &n)
}

/// An exclusive lock shared by the hosts of this machine (every user's: any can open it to
/// lock), released when the file is dropped; None when it cannot be had.
fn machine_lock() -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::temp_dir().join("nanoclaw-docker-networks.lock");
    // Never through a link someone planted, and never blocking on a FIFO.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&path)
        .or_else(|_| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .mode(0o644)
                .custom_flags(flags)
                .open(&path)
        })
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    // SAFETY: flock on a descriptor we own; released when `f` drops.
    (unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0).then_some(f)
}

/// The network called exactly `name` (the engine's filter matches substrings). Of duplicates
/// the one with the smallest id is kept, which every host picks alike, and the others are
/// removed (the engine refuses while a container uses one).
async fn find(docker: &Docker, name: &str) -> anyhow::Result<Option<Network>> {
    let filters = HashMap::from([("name", vec![name])]);
    let opts = ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let mut found: Vec<Network> = docker
        .list_networks(Some(opts))
        .await
        .map_err(|e| anyhow::anyhow!("cannot list the engine's networks: {e}"))?
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name) && n.id.is_some())
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    for extra in found.iter().skip(1) {
        let id = extra.id.as_deref().unwrap_or_default();
        tracing::warn!(
            network = name,
            id,
            "removing a duplicate of the container network (created by two hosts at once)"
        );
        if let Err(e) = docker.remove_network(id).await {
            tracing::warn!(network = name, id, error = %e, "cannot remove the duplicate network; container starts fail until it is gone");
        }
    }
    Ok(found.into_iter().next())
}

/// Refuses a network of that name that does not isolate (made by hand, or by something else):
/// joining it would undo the point of having it.
fn check(name: &str, internal: bool, n: &Network) -> anyhow::Result<Net> {
    let icc_off = n
        .options
        .as_ref()
        .and_then(|o| o.get(ICC))
        .is_some_and(|v| v == "false");
    let fix = format!("remove it (`docker network rm {name}`) and NanoClaw recreates it");
    if n.driver.as_deref() != Some("bridge") || !icc_off {
        anyhow::bail!("the Docker network {name} lets containers reach each other ({ICC} is not false): {fix}");
    }
    if n.internal.unwrap_or(false) != internal {
        let what = if internal {
            "reaches"
        } else {
            "does not reach"
        };
        anyhow::bail!(
            "the Docker network {name} {what} the internet, unlike what its name promises: {fix}"
        );
    }
    let gateway = n
        .ipam
        .as_ref()
        .and_then(|i| i.config.as_ref())
        .into_iter()
        .flatten()
        .find_map(|c| gateway_of(c.gateway.clone(), c.subnet.clone()))
        .ok_or_else(|| anyhow::anyhow!("the Docker network {name} has no IPv4 gateway"))?;
    Ok(Net {
        id: n.id.clone().unwrap_or_default(),
        gateway,
    })
}

/// The bridge gateway: as configured, else the subnet's first address (Docker's default, and
/// what older engines leave out of the IPAM answer).
fn gateway_of(gateway: Option<String>, subnet: Option<String>) -> Option<IpAddr> {
    if let Some(ip) = gateway.and_then(|g| g.parse().ok()) {
        return Some(ip);
    }
    let net: std::net::Ipv4Addr = subnet?.split('/').next()?.parse().ok()?;
    Some(std::net::Ipv4Addr::from(u32::from(net) + 1).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{Ipam, IpamConfig};

    fn net(driver: &str, icc: Option<&str>, internal: bool) -> Network {
        Network {
            id: Some("abc".into()),
            name: Some(OPEN.into()),
            driver: Some(driver.into()),
            internal: Some(internal),
            options: icc.map(|v| HashMap::from([(ICC.to_string(), v.to_string())])),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some("172.30.0.0/16".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn gateway_from_config_or_subnet() {
        assert_eq!(
            gateway_of(Some("10.1.0.254".into()), None),
            Some("10.1.0.254".parse().unwrap())
        );
        assert_eq!(
            gateway_of(None, Some("172.17.0.0/16".into())),
            Some("172.17.0.1".parse().unwrap())
        );
        assert_eq!(gateway_of(None, Some("fd00::/64".into())), None);
    }

    #[test]
    fn only_an_isolating_bridge_is_joined() {
        let ok = check(OPEN, false, &net("bridge", Some("false"), false)).unwrap();
        assert_eq!(ok.gateway, "172.30.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(ok.id, "abc");
        for (n, internal) in [
            (net("bridge", None, false), false),
            (net("bridge", Some("true"), false), false),
            (net("macvlan", Some("false"), false), false),
            (net("bridge", Some("false"), false), true),
            (net("bridge", Some("false"), true), false),
        ] {
            assert!(check(OPEN, internal, &n).is_err(), "{n:?}");
        }
    }
}
