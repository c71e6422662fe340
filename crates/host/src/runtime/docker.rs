//! The `docker` runtime: one hardened container per session on the Docker Engine API (bollard;
//! Podman's compatible socket works the same way through `DOCKER_HOST`).
//!
//! Hardening (DESIGN §8): non-root user, every capability dropped, no-new-privileges, read-only
//! root with a tmpfs `/tmp`, memory/cpu/pids limits, only the session's own folders mounted,
//! inbound.db read-only on top, no secret in env or mounts.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::{Exit, RunnerHandle, RunnerSpec, Runtime};

/// Image used when `NANOCLAW_IMAGE` is not set.
pub const DEFAULT_IMAGE: &str = "nanoclaw-agent:slim";
/// Label naming the install (one per home) that owns a container.
pub const LABEL_INSTALL: &str = "nanoclaw.install";
/// Label naming the session a container serves.
pub const LABEL_SESSION: &str = "nanoclaw.session";
/// uid:gid used inside containers when the host user is root (containers never run as root).
pub const FALLBACK_USER: (u32, u32) = (1000, 1000);

/// Connects to the engine from `DOCKER_HOST` or the platform default, negotiating the API version.
pub async fn connect() -> anyhow::Result<Docker> {
    let docker = Docker::connect_with_defaults()
        .map_err(|e| anyhow::anyhow!("no Docker engine configured: {e}"))?;
    let docker = tokio::time::timeout(Duration::from_secs(5), docker.negotiate_version())
        .await
        .map_err(|_| anyhow::anyhow!("the Docker engine did not answer within 5 s"))?
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the Docker engine: {e} (is it running? is DOCKER_HOST right?)"
            )
        })?;
    docker
        .ping()
        .await
        .map_err(|e| anyhow::anyhow!("the Docker engine does not answer: {e}"))?;
    Ok(docker)
}

/// A short stable id of a home, so containers of different installs never mix.
pub fn install_slug(home: &Path) -> String {
    let path = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
    let h = nanoclaw_protocol::fnv1a(path.to_string_lossy().as_bytes());
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

/// The uid:gid containers run as: the host user's, or [`FALLBACK_USER`] when that is root.
pub fn container_user() -> (u32, u32) {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        FALLBACK_USER
    } else {
        (uid, gid)
    }
}

/// Runs runners as containers.
pub struct DockerRuntime {
    docker: Docker,
    image: String,
    slug: String,
    logs_dir: std::path::PathBuf,
    memory: i64,
    nano_cpus: i64,
    pids: i64,
}

impl DockerRuntime {
    /// Connects and checks the image exists.
    pub async fn new(
        home: &nanoclaw_protocol::Home,
        settings: &crate::config::Settings,
    ) -> anyhow::Result<Self> {
        let docker = connect().await?;
        let image = settings
            .get("NANOCLAW_IMAGE")
            .unwrap_or_else(|| DEFAULT_IMAGE.into());
        if docker.inspect_image(&image).await.is_err() {
            anyhow::bail!("image {image} not found: build it with `nanoclaw image build --slim`");
        }
        Ok(Self {
            docker,
            image,
            slug: install_slug(home.root()),
            logs_dir: home.logs_dir().join("containers"),
            memory: settings.u64("NANOCLAW_CONTAINER_MEMORY_MB", 1024) as i64 * 1024 * 1024,
            nano_cpus: (settings.u64("NANOCLAW_CONTAINER_CPUS_MILLI", 1000) as i64) * 1_000_000,
            pids: settings.u64("NANOCLAW_CONTAINER_PIDS", 256) as i64,
        })
    }

    /// The deterministic container name of a session.
    pub fn container_name(&self, session_id: &str) -> String {
        format!("nanoclaw-{}-{session_id}", self.slug)
    }

    /// The create body for a session (pure: tested without an engine).
    pub fn spec(&self, spec: &RunnerSpec, image: &str) -> ContainerCreateBody {
        let (uid, gid) = container_user();
        let binds: Vec<String> = [
            format!("{}:/workspace:rw", spec.session_dir.display()),
            format!(
                "{}:/workspace/inbound.db:ro",
                spec.session_dir.join("inbound.db").display()
            ),
            format!("{}:/workspace/agent:rw", spec.agent_dir.display()),
            format!("{}:/workspace/global:ro", spec.global_dir.display()),
            format!(
                "{}:/workspace/agent/.claude:rw",
                spec.claude_shared.display()
            ),
            format!("{}:/workspace/skills:ro", spec.skills_dir.display()),
        ]
        .into_iter()
        .chain(spec.extra_mounts.iter().map(|m| {
            format!(
                "{}:{}:{}",
                m.host.display(),
                m.container,
                if m.readonly { "ro" } else { "rw" }
            )
        }))
        .collect();
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push("HOME=/workspace/agent".into());
        let labels = HashMap::from([
            (LABEL_INSTALL.to_string(), self.slug.clone()),
            (LABEL_SESSION.to_string(), spec.session_id.clone()),
        ]);
        ContainerCreateBody {
            image: Some(image.to_string()),
            user: Some(format!("{uid}:{gid}")),
            env: Some(env),
            labels: Some(labels),
            working_dir: Some("/workspace/agent".into()),
            host_config: Some(HostConfig {
                binds: Some(binds),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_string(),
                    "rw,noexec,nosuid,size=64m".to_string(),
                )])),
                memory: Some(
                    spec.limits
                        .memory_mb
                        .map_or(self.memory, |m| m as i64 * 1024 * 1024),
                ),
                nano_cpus: Some(
                    spec.limits
                        .cpus
                        .map_or(self.nano_cpus, |c| (c * 1e9) as i64),
                ),
                pids_limit: Some(spec.limits.pids.map_or(self.pids, |p| p as i64)),
                extra_hosts: Some(vec!["host.docker.internal:host-gateway".into()]),
                init: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn remove(&self, name: &str) {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self.docker.remove_container(name, Some(opts)).await;
    }
}

/// The bridge gateway: as configured, else the subnet's first address (Docker's default, and
/// what older engines leave out of the IPAM answer).
fn gateway_of(gateway: Option<String>, subnet: Option<String>) -> Option<std::net::IpAddr> {
    if let Some(ip) = gateway.and_then(|g| g.parse().ok()) {
        return Some(ip);
    }
    let net: std::net::Ipv4Addr = subnet?.split('/').next()?.parse().ok()?;
    Some(std::net::Ipv4Addr::from(u32::from(net) + 1).into())
}

/// Gives the container user the session and agent folders (the host may be root; the container
/// never is, and without capabilities it cannot bypass file permissions).
fn hand_over(spec: &RunnerSpec) -> anyhow::Result<()> {
    let (uid, gid) = container_user();
    for dir in [&spec.session_dir, &spec.agent_dir, &spec.claude_shared] {
        chown_tree(dir, uid, gid)?;
    }
    Ok(())
}

/// The walk goes through directory fds (fchownat with AT_SYMLINK_NOFOLLOW, protocol::beneath):
/// the agent owns what is inside and may swap a folder for a link mid-walk; a path-based walk
/// would then chown the link's target (as root: any file on the host).
fn chown_tree(p: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    nanoclaw_protocol::beneath::Dir::open(p)?.chown_tree(uid, gid)?;
    Ok(())
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn start(&self, spec: &RunnerSpec) -> anyhow::Result<Box<dyn RunnerHandle>> {
        let name = self.container_name(&spec.session_id);
        self.remove(&name).await;
        {
            let spec = spec.clone();
            tokio::task::spawn_blocking(move || hand_over(&spec)).await??;
        }
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        // Approved packages live in the agent group's own image, built once per package set.
        let image = if spec.packages == crate::image::Packages::default() {
            self.image.clone()
        } else {
            match crate::image::ensure_group_image(&self.docker, &self.image, &spec.packages, |l| {
                tracing::debug!(line = l, "group image build")
            })
            .await
            {
                Ok(image) => image,
                // A conversation that works without its extra packages beats one that cannot
                // start at all; the failure is logged for `nanoclaw doctor` / the owner.
                Err(e) => {
                    tracing::error!(agent_group = %spec.agent_group_id, error = %format!("{e:#}"), "building the agent group's image failed; starting from the base image without its extra packages");
                    self.image.clone()
                }
            }
        };
        let created = self
            .docker
            .create_container(Some(opts), self.spec(spec, &image))
            .await?;
        self.docker.start_container(&created.id, None).await?;
        Ok(Box::new(ContainerHandle {
            docker: self.docker.clone(),
            id: created.id,
            name,
            logs_dir: self.logs_dir.clone(),
        }))
    }

    async fn host_endpoint(&self) -> (Option<std::net::IpAddr>, String) {
        // Containers on the default bridge reach the host at the bridge's gateway address,
        // which `host.docker.internal:host-gateway` names inside the container.
        let gw = self
            .docker
            .inspect_network("bridge", None)
            .await
            .ok()
            .and_then(|n| {
                n.ipam?
                    .config?
                    .into_iter()
                    .find_map(|c| gateway_of(c.gateway, c.subnet))
            });
        (gw, "host.docker.internal".into())
    }

    async fn cleanup_orphans(&self) -> anyhow::Result<()> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_INSTALL}={}", self.slug)])]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        for c in self.docker.list_containers(Some(opts)).await? {
            if let Some(id) = c.id {
                tracing::info!(container = %id, "removing a container left by a previous host");
                self.remove(&id).await;
            }
        }
        Ok(())
    }
}

struct ContainerHandle {
    docker: Docker,
    id: String,
    name: String,
    logs_dir: std::path::PathBuf,
}

impl ContainerHandle {
    /// Keeps the output of a container that failed, for `nanoclaw doctor` and debugging.
    async fn keep_logs(&self) {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let mut out = String::new();
        let mut logs = self.docker.logs(&self.id, Some(opts));
        while let Some(Ok(chunk)) = logs.next().await {
            out.push_str(&chunk.to_string());
        }
        let _ = std::fs::create_dir_all(&self.logs_dir);
        let file = self.logs_dir.join(format!(
            "{}-{}.log",
            self.name,
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        ));
        if let Err(e) = std::fs::write(&file, out) {
            tracing::warn!(error = %e, "cannot keep container logs");
        }
    }
}

#[async_trait]
impl RunnerHandle for ContainerHandle {
    fn id(&self) -> String {
        self.id.chars().take(12).collect()
    }

    async fn wait(&mut self) -> Exit {
        let code = match self.docker.wait_container(&self.id, None).next().await {
            Some(Ok(r)) => Some(r.status_code as i32),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                Some(code as i32)
            }
            _ => None,
        };
        if code != Some(0) {
            self.keep_logs().await;
        }
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self.docker.remove_container(&self.id, Some(opts)).await;
        Exit {
            code,
            killed: code.is_none_or(|c| c >= 128),
        }
    }

    async fn stop(&mut self) {
        let opts = StopContainerOptionsBuilder::default().t(5).build();
        let _ = self.docker.stop_container(&self.id, Some(opts)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gateway_from_config_or_subnet() {
        assert_eq!(
            super::gateway_of(Some("10.1.0.254".into()), None),
            Some("10.1.0.254".parse().unwrap())
        );
        assert_eq!(
            super::gateway_of(None, Some("172.17.0.0/16".into())),
            Some("172.17.0.1".parse().unwrap())
        );
        assert_eq!(super::gateway_of(None, Some("fd00::/64".into())), None);
    }
}
