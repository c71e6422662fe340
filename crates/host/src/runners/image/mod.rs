//! `nanoclaw image build`: the agent images, built through the engine API with no registry.
//!
//! The slim image is `FROM scratch`: a statically linked `nanoclaw-agent` plus busybox (Debian's
//! `busybox-static`) for a shell and core utilities. The full image's Dockerfile lives in
//! `container/` and needs a registry for its Debian base.

mod group;

pub use group::{
    ensure_group_image, group_dockerfile, group_tag, validate_packages, Limits, Network, Packages,
};

use std::io::Read;
use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

/// Tag of the slim image.
pub const SLIM_TAG: &str = "nanoclaw-agent:slim";
/// Tag of the full image.
pub const FULL_TAG: &str = "nanoclaw-agent:latest";

/// Busybox applets linked into the slim image.
const APPLETS: &[&str] = &[
    "sh", "ash", "ls", "cat", "cp", "mv", "rm", "mkdir", "rmdir", "echo", "grep", "egrep", "sed",
    "awk", "head", "tail", "wc", "sort", "uniq", "find", "xargs", "env", "pwd", "touch", "date",
    "sleep", "chmod", "ln", "readlink", "realpath", "dirname", "basename", "tr", "cut", "test",
    "[", "true", "false", "printf", "which", "vi", "less", "tar", "gzip", "gunzip", "diff", "id",
    "stat", "du", "df", "ps", "kill", "tee", "expr", "seq",
];

const SLIM_DOCKERFILE: &str = "FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/bin
WORKDIR /workspace
USER 65530:65530
ENTRYPOINT [\"/usr/local/bin/nanoclaw-agent\"]
";

/// Whether an ELF file is statically linked (no program interpreter).
pub fn is_static_elf(path: &Path) -> anyhow::Result<bool> {
    let mut f =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.by_ref().take(64 * 1024).read_to_end(&mut buf)?;
    if buf.len() < 64 || &buf[..4] != b"\x7fELF" || buf[4] != 2 || buf[5] != 1 {
        anyhow::bail!(
            "{} is not a 64-bit little-endian ELF executable",
            path.display()
        );
    }
    let u16_at = |o: usize| u16::from_le_bytes([buf[o], buf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(buf[0x20..0x28].try_into()?) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > buf.len() {
            anyhow::bail!("{}: program headers past the first 64 KiB", path.display());
        }
        if u32::from_le_bytes(buf[o..o + 4].try_into()?) == 3 {
            return Ok(false); // PT_INTERP: needs a dynamic loader
        }
    }
    Ok(true)
}

/// The default static runner: `nanoclaw-agent` next to this executable, or the crt-static build.
pub fn default_agent_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let profile = dir
        .file_name()
        .map(|p| p.to_os_string())
        .unwrap_or_default();
    // target/<profile>/nanoclaw → target/x86_64-unknown-linux-gnu/<profile>/nanoclaw-agent
    let cross = dir.parent().map(|t| {
        t.join(format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
            .join(&profile)
            .join("nanoclaw-agent")
    });
    cross
        .filter(|p| p.is_file())
        .unwrap_or_else(|| dir.join("nanoclaw-agent"))
}

fn append_file(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.append_data(&mut h, path, data)?;
    Ok(())
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> anyhow::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(mode);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_cksum();
    tar.append_data(&mut h, path, std::io::empty())?;
    Ok(())
}

/// The build context (a tar) of the slim image.
pub fn slim_context(agent_bin: &Path, busybox: &Path) -> anyhow::Result<Vec<u8>> {
    for (what, p, fix) in [
        ("runner", agent_bin, "build it with: RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p nanoclaw-agent"),
        ("busybox", busybox, "install Debian's busybox-static package (apt-get install busybox-static)"),
    ] {
        if !p.is_file() {
            anyhow::bail!("{what} not found at {}: {fix}", p.display());
        }
        if !is_static_elf(p)? {
            anyhow::bail!("{what} at {} is dynamically linked; the slim image needs a static one: {fix}", p.display());
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    append_file(&mut tar, "Dockerfile", SLIM_DOCKERFILE.as_bytes(), 0o644)?;
    for d in [
        "rootfs",
        "rootfs/bin",
        "rootfs/usr",
        "rootfs/usr/local",
        "rootfs/usr/local/bin",
        "rootfs/etc",
        "rootfs/workspace",
    ] {
        append_dir(&mut tar, d, 0o755)?;
    }
    append_dir(&mut tar, "rootfs/tmp", 0o1777)?;
    append_file(
        &mut tar,
        "rootfs/usr/local/bin/nanoclaw-agent",
        &std::fs::read(agent_bin)?,
        0o755,
    )?;
    append_file(
        &mut tar,
        "rootfs/bin/busybox",
        &std::fs::read(busybox)?,
        0o755,
    )?;
    for a in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, format!("rootfs/bin/{a}"), "busybox")?;
    }
    append_file(
        &mut tar,
        "rootfs/etc/passwd",
        b"root:x:0:0::/root:/bin/sh\nagent:x:65530:65530::/workspace/agent:/bin/sh\n",
        0o644,
    )?;
    append_file(
        &mut tar,
        "rootfs/etc/group",
        b"root:x:0:\nagent:x:65530:\n",
        0o644,
    )?;
    Ok(tar.into_inner()?)
}

/// The build context of the full image: every file under `dir` (the repo's `container/`) plus
/// the runner binary as `nanoclaw-agent`.
pub fn dir_context(dir: &Path, agent_bin: &Path) -> anyhow::Result<Vec<u8>> {
    if !dir.join("Dockerfile").is_file() {
        anyhow::bail!("no Dockerfile in {}", dir.display());
    }
    let agent = std::fs::read(agent_bin)
        .map_err(|e| anyhow::anyhow!("runner {}: {e}", agent_bin.display()))?;
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir)?;
    append_file(&mut tar, "nanoclaw-agent", &agent, 0o755)?;
    Ok(tar.into_inner()?)
}

/// Checks a Dockerfile for what our images promise: a base, a non-root USER, an exec-form
/// ENTRYPOINT running the runner, no ADD from URLs, no secrets in ENV/ARG. Returns the problems.
pub fn lint_dockerfile(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    // Continuation lines belong to the instruction above.
    let joined = text.replace("\\\n", " ");
    let instrs: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (i, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (i.to_ascii_uppercase(), rest.trim().to_string())
        })
        .collect();
    // Only ARGs may come before the first FROM.
    if instrs
        .iter()
        .find(|(i, _)| i != "ARG")
        .map(|(i, _)| i.as_str())
        != Some("FROM")
    {
        problems.push("the first instruction must be FROM".into());
    }
    match instrs.iter().rev().find(|(i, _)| i == "USER") {
        Some((_, u)) if u.starts_with("0") || u.starts_with("root") => {
            problems.push("the final USER is root".into())
        }
        None => problems.push("no USER: the image would run as root".into()),
        _ => {}
    }
    match instrs.iter().rev().find(|(i, _)| i == "ENTRYPOINT") {
        Some((_, e)) if !e.starts_with('[') => {
            problems.push("ENTRYPOINT must use the exec (JSON) form".into())
        }
        Some((_, e)) if !e.contains("nanoclaw-agent") => {
            problems.push("ENTRYPOINT does not run nanoclaw-agent".into())
        }
        None => problems.push("no ENTRYPOINT".into()),
        _ => {}
    }
    for (i, rest) in &instrs {
        if i == "ADD" && (rest.contains("http://") || rest.contains("https://")) {
            problems
                .push("ADD from a URL: download in a RUN step with verification instead".into());
        }
        let upper = rest.to_ascii_uppercase();
        if (i == "ENV" || i == "ARG")
            && ["KEY", "TOKEN", "SECRET", "PASSWORD"]
                .iter()
                .any(|s| upper.contains(s))
        {
            problems.push(format!("{i} {rest}: secrets never go into images"));
        }
    }
    problems
}

/// Builds an image from a tar context, reporting each build line through `progress`.
pub async fn build(
    docker: &Docker,
    tag: &str,
    context: Vec<u8>,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<()> {
    let opts = BuildImageOptionsBuilder::default()
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| anyhow::anyhow!("image build failed: {e}"))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            anyhow::bail!("image build failed: {err}");
        }
        if let Some(line) = info.stream.or(info.status) {
            let line = line.trim_end();
            if !line.is_empty() {
                progress(line);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_dockerfile_and_slim_dockerfile_lint_clean() {
        let full = include_str!("../../../../../container/Dockerfile");
        assert_eq!(lint_dockerfile(full), Vec::<String>::new());
        assert_eq!(lint_dockerfile(SLIM_DOCKERFILE), Vec::<String>::new());
        let bad = "FROM x\nENV ANTHROPIC_API_KEY=sk\nADD https://x/y /y\nENTRYPOINT /bin/sh\n";
        let p = lint_dockerfile(bad);
        assert_eq!(p.len(), 4, "{p:?}");
    }

    #[test]
    fn detects_dynamic_binaries_and_refuses_them() {
        // The test binary itself is dynamically linked.
        let me = std::env::current_exe().unwrap();
        assert!(!is_static_elf(&me).unwrap());
        let err = slim_context(&me, &me).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        assert!(is_static_elf(Path::new("/etc/hostname")).is_err());
    }
}
