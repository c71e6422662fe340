//! The home is the host user's alone: conversations, the central DB, the transcript, logs and
//! both sockets (whoever can connect to `cli.sock` chats as the owner) are private.
//!
//! Directories 0700, files 0600: a umask at host start (except for a root host, see
//! [`umask`]), explicit modes where the host creates its private files, and [`tighten`] for an
//! install made before (or by hand). `nanoclaw doctor` reports what [`check`] finds.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nanoclaw_protocol::Home;

/// Mode of the host's directories.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the host's files.
pub const FILE_MODE: u32 = 0o600;

/// Sets the process umask so whatever the host creates is its user's only.
///
/// A root host keeps group/other read bits (umask 022): its containers run as another uid and
/// must read what the host puts in their folders during a run (attachments, skills, global
/// memory). Nothing is exposed by that: every such file lies under the home and `data/`, which
/// are 0700, and the private files get explicit modes.
pub fn umask() {
    // SAFETY: geteuid and umask have no preconditions; the umask is process-wide by design.
    unsafe {
        let mask = if libc::geteuid() == 0 { 0o022 } else { 0o077 };
        libc::umask(mask);
    }
}

/// The directories and files that must be private, with their wanted mode (existing ones only).
pub fn private_paths(home: &Home) -> Vec<(PathBuf, u32)> {
    let data = home.data_dir();
    let logs = home.logs_dir();
    let mut v = vec![
        (home.root().to_path_buf(), DIR_MODE),
        (data.clone(), DIR_MODE),
        (logs.clone(), DIR_MODE),
        (home.env_file(), FILE_MODE),
        (home.config_file(), FILE_MODE),
        (home.central_db(), FILE_MODE),
        (data.join("v2.db-wal"), FILE_MODE),
        (data.join("v2.db-shm"), FILE_MODE),
        (data.join("cli-transcript.jsonl"), FILE_MODE),
        (home.cli_sock(), FILE_MODE),
        (home.control_sock(), FILE_MODE),
    ];
    if let Ok(rd) = std::fs::read_dir(&logs) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "log") {
                v.push((p, FILE_MODE));
            }
        }
    }
    v.retain(|(p, _)| p.symlink_metadata().is_ok());
    v
}

/// A private path that others can reach: (path, its mode, the mode it should have).
#[derive(Debug, Clone, PartialEq)]
pub struct Loose {
    /// The path.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// What they should be.
    pub want: u32,
}

/// Private paths with group or other permission bits.
pub fn check(home: &Home) -> Vec<Loose> {
    private_paths(home)
        .into_iter()
        .filter_map(|(path, want)| {
            let mode = path.symlink_metadata().ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some(Loose { path, mode, want })
        })
        .collect()
}

/// Tightens an existing install (home, `data/`, `logs/` and the private files in them);
/// returns what it changed. Links are left alone (chmod would follow them).
pub fn tighten(home: &Home) -> std::io::Result<Vec<Loose>> {
    let loose = check(home);
    for l in &loose {
        if l.path.symlink_metadata()?.file_type().is_symlink() {
            continue;
        }
        std::fs::set_permissions(&l.path, std::fs::Permissions::from_mode(l.want))?;
    }
    Ok(loose)
}

/// Creates the home's private directories (0700) if missing, then [`tighten`]s; called at
/// host start, before logs or DBs are opened.
pub fn harden(home: &Home) -> std::io::Result<Vec<Loose>> {
    umask();
    for d in [home.root().to_path_buf(), home.data_dir(), home.logs_dir()] {
        create_private_dir(&d)?;
    }
    tighten(home)
}

/// `create_dir_all` with the last component 0700.
pub fn create_private_dir(d: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(d)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets a file the host created to 0600 (it may predate the umask, or the umask is a root's).
pub fn private_file(p: &Path) -> std::io::Result<()> {
    let m = p.metadata()?.permissions().mode() & 0o777;
    if m != FILE_MODE {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_install_is_found_and_tightened() {
        let t = tempfile::tempdir().unwrap();
        let home = Home::new(t.path());
        std::fs::create_dir_all(home.data_dir()).unwrap();
        std::fs::create_dir_all(home.logs_dir()).unwrap();
        std::fs::write(home.central_db(), "").unwrap();
        std::fs::write(home.logs_dir().join("nanoclaw.log"), "").unwrap();
        for (p, m) in [
            (home.root().to_path_buf(), 0o755),
            (home.data_dir(), 0o755),
            (home.logs_dir(), 0o755),
            (home.central_db(), 0o644),
            (home.logs_dir().join("nanoclaw.log"), 0o644),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        }
        let found: Vec<PathBuf> = check(&home).into_iter().map(|l| l.path).collect();
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found.contains(&home.central_db()));
        tighten(&home).unwrap();
        assert!(check(&home).is_empty());
        let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(home.root()), 0o700);
        assert_eq!(mode(&home.central_db()), 0o600);
    }
}
