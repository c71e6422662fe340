//! The `docker` runtime: one hardened container per session on the Docker Engine API (bollard;
//! Podman's compatible socket works the same way through `DOCKER_HOST`).
//!
//! Hardening (DESIGN §8): non-root user, every capability dropped, no-new-privileges, read-only
//! root with a tmpfs `/tmp`, memory/cpu/pids limits, only the session's own folders mounted,
//! inbound.db read-only on top, no secret in env or mounts, a network where containers cannot
//! reach each other (`network.rs`), the engine's init as PID 1 to reap zombies, and for a root
//! host a dedicated uid that names no account.

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
/// uid (and gid) of containers when the host user is root (containers never run as root): one
/// that names no account, so the folders handed to it belong to no one who can log in. Below
/// 65536 so engines with user namespaces (65,536 ids mapped) can run it; above systemd's
/// dynamic users (61184–65519), outside adduser's range, and not distroless' 65532. The images
/// name it in their passwd and USER; nothing relies on that (HOME comes from the env).
pub const DEDICATED_UID: u32 = 65_530;

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

/// The uid:gid containers run as: the host user's, or for a root host a dedicated one (see
/// [`decide_user`]), decided once by [`DockerRuntime::new`].
pub fn container_user() -> (u32, u32) {
    *USER.get_or_init(|| {
        decide_user(std::env::var("NANOCLAW_CONTAINER_UID").ok().as_deref()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "no unused uid for containers");
            (DEDICATED_UID, DEDICATED_UID)
        })
    })
}

static USER: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();

/// The host user's uid:gid; for a root host `NANOCLAW_CONTAINER_UID` (uid = gid, never 0) or
/// [`DEDICATED_UID`], refused when an account or group already has it.
pub fn decide_user(override_uid: Option<&str>) -> anyhow::Result<(u32, u32)> {
    // SAFETY: getuid/getgid have no preconditions.
    let host = unsafe { (libc::getuid(), libc::getgid()) };
    pick_user(host, override_uid, account_of, group_of)
}

fn pick_user(
    host: (u32, u32),
    override_uid: Option<&str>,
    account: impl Fn(u32) -> Option<String>,
    group: impl Fn(u32) -> Option<String>,
) -> anyhow::Result<(u32, u32)> {
    if host.0 != 0 {
        return Ok(host);
    }
    if let Some(v) = override_uid {
        let uid: u32 = v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("NANOCLAW_CONTAINER_UID={v:?} is not a uid"))?;
        if uid == 0 {
            anyhow::bail!("NANOCLAW_CONTAINER_UID=0 would run containers as root");
        }
        // The operator's choice (e.g. an account made for this): honoured, but said.
        if let Some(name) = account(uid) {
            tracing::warn!(uid, account = %name, "NANOCLAW_CONTAINER_UID is an existing account: it owns the agents' folders");
        }
        return Ok((uid, uid));
    }
    let id = DEDICATED_UID;
    if let Some(name) = account(id).or_else(|| group(id).map(|g| format!("group {g}"))) {
        anyhow::bail!("uid {id}, which containers of a root host run as, is taken by {name}: set NANOCLAW_CONTAINER_UID to an unused uid");
    }
    Ok((id, id))
}

/// The account with this uid, through NSS (so directory accounts count too).
fn account_of(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: zeroed passwd is a valid out-parameter; buf outlives the call and the result.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    // An unanswerable lookup counts as taken: better refuse than hand folders to an account.
    if rc != 0 {
        return Some(format!("an account (lookup failed: error {rc})"));
    }
    (!out.is_null()).then(|| {
        // SAFETY: on success pw_name points into buf, NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
        format!("the account {}", name.to_string_lossy())
    })
}

fn group_of(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: as in account_of.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    let rc = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 {
        return Some(format!("(lookup failed: error {rc})"));
    }
    (!out.is_null()).then(|| {
        // SAFETY: on success gr_name points into buf, NUL-terminated.
        unsafe { std::ffi::CStr::from_ptr(gr.gr_name) }
            .to_string_lossy()
            .into_owned()
    })
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
    networks: super::network::Networks,
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
        // Decided before any container starts (NSS lookups may block).
        let uid = settings.get("NANOCLAW_CONTAINER_UID");
        let user = tokio::task::spawn_blocking(move || decide_user(uid.as_deref())).await??;
        let user = *USER.get_or_init(|| user);
        tracing::info!(uid = user.0, gid = user.1, "containers run as");
        let networks = super::network::Networks::ensure(&docker).await?;
        Ok(Self {
            docker,
            image,
            slug: install_slug(home.root()),
            logs_dir: home.logs_dir().join("containers"),
            memory: settings.u64("NANOCLAW_CONTAINER_MEMORY_MB", 1024) as i64 * 1024 * 1024,
            nano_cpus: (settings.u64("NANOCLAW_CONTAINER_CPUS_MILLI", 1000) as i64) * 1_000_000,
            pids: settings.u64("NANOCLAW_CONTAINER_PIDS", 256) as i64,
            networks,
        })
    }

    /// The deterministic container name of a session.
    pub fn container_name(&self, session_id: &str) -> String {
        format!("nanoclaw-{}-{session_id}", self.slug)
    }

    /// The create body for a session (pure: tested without an engine).
    pub fn spec(&self, spec: &RunnerSpec, image: &str) -> ContainerCreateBody {
        let (uid, gid) = container_user();
        let net = self.networks.of(spec.limits.network);
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
                // Its own network's gateway, where the credential proxy listens (`host-gateway`
                // would name the default bridge's, which the internal network cannot reach).
                network_mode: Some(net.id.clone()),
                extra_hosts: Some(vec![format!("host.docker.internal:{}", net.gateway)]),
                // The engine's init as PID 1 reaps orphaned zombies, which would otherwise fill
                // the pids limit until the agent cannot fork.
                init: Some(true),
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
        let image = if spec.packages == crate::runners::image::Packages::default() {
            self.image.clone()
        } else {
            match crate::runners::image::ensure_group_image(
                &self.docker,
                &self.image,
                &spec.packages,
                |l| tracing::debug!(line = l, "group image build"),
            )
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

    async fn host_endpoint(&self) -> (Vec<std::net::IpAddr>, String) {
        // Each container's `host.docker.internal` is its network's gateway.
        let n = &self.networks;
        (
            vec![n.open.gateway, n.internal.gateway],
            "host.docker.internal".into(),
        )
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
        let _ = tokio::fs::create_dir_all(&self.logs_dir).await;
        let file = self.logs_dir.join(format!(
            "{}-{}.log",
            self.name,
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        ));
        if let Err(e) = tokio::fs::write(&file, out).await {
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

    async fn kill(&mut self) {
        let opts = bollard::query_parameters::KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        let _ = self.docker.kill_container(&self.id, Some(opts)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{pick_user, DEDICATED_UID};

    #[test]
    fn a_root_host_runs_containers_as_an_unused_uid() {
        let none = |_: u32| None;
        let d = (DEDICATED_UID, DEDICATED_UID);
        assert_eq!(
            pick_user((1001, 1002), None, none, none).unwrap(),
            (1001, 1002)
        );
        assert_eq!(
            pick_user((1001, 1002), Some("5000"), none, none).unwrap(),
            (1001, 1002)
        );
        assert_eq!(pick_user((0, 0), None, none, none).unwrap(), d);
        let taken = |u: u32| (u == DEDICATED_UID).then(|| "the account bob".to_string());
        let e = pick_user((0, 0), None, taken, none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bob") && e.contains("NANOCLAW_CONTAINER_UID"),
            "{e}"
        );
        let g = |u: u32| (u == DEDICATED_UID).then(|| "staff".to_string());
        assert!(
            pick_user((0, 0), None, none, g).is_err(),
            "a group has the id"
        );
        assert_eq!(
            pick_user((0, 0), Some("70000"), none, none).unwrap(),
            (70000, 70000)
        );
        assert!(pick_user((0, 0), Some("0"), none, none).is_err(), "root");
        assert!(pick_user((0, 0), Some("x"), none, none).is_err());
    }

    #[test]
    fn the_real_lookup_finds_root_and_not_the_dedicated_uid() {
        assert_eq!(super::account_of(0).as_deref(), Some("the account root"));
        // This machine has no account with it (the default would be refused otherwise).
        assert_eq!(super::account_of(DEDICATED_UID), None);
    }
}
