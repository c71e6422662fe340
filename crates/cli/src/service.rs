//! `nanoclaw service install|uninstall|status`: run the host at login as a systemd user unit
//! (Linux) or a launchd agent (macOS).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nanoclaw_protocol::Home;

/// Which service manager to write for.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum Platform {
    /// systemd user unit.
    Linux,
    /// launchd agent.
    Macos,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn current() -> Self {
        if cfg!(target_os = "macos") {
            Self::Macos
        } else {
            Self::Linux
        }
    }
    /// The service of one home: named after it (`nanoclaw-<slug>.service`,
    /// `com.nanoclaw-<slug>.plist`), so two homes on one machine run as two services (as
    /// NanoClaw v2.0.63 made its names per install; ours differ from v2's `nanoclaw-v2-…`, so
    /// both can be installed while a user moves over).
    fn file_name(self, home: &Home) -> String {
        match self {
            Self::Linux => format!("{}.service", unit_name(home)),
            Self::Macos => format!("{}.plist", launchd_label(home)),
        }
    }
    /// The fixed name of releases before per-install names.
    fn legacy_file_name(self) -> &'static str {
        match self {
            Self::Linux => "nanoclaw.service",
            Self::Macos => "com.nanoclaw.host.plist",
        }
    }
    fn default_dir(self) -> anyhow::Result<PathBuf> {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .ok_or_else(|| anyhow::anyhow!("HOME is not set: pass --dir"))?;
        Ok(match self {
            Self::Linux => home.join(".config/systemd/user"),
            Self::Macos => home.join("Library/LaunchAgents"),
        })
    }
}

/// Eight hex digits naming a home: a hash of its absolute path.
pub fn install_slug(home: &Home) -> String {
    let root = std::path::absolute(home.root()).unwrap_or_else(|_| home.root().to_path_buf());
    let h = nanoclaw_protocol::fnv1a(root.to_string_lossy().as_bytes());
    format!("{:08x}", (h >> 32) as u32 ^ h as u32)
}

/// The systemd unit of a home, without `.service`.
pub fn unit_name(home: &Home) -> String {
    format!("nanoclaw-{}", install_slug(home))
}

/// The launchd label of a home.
pub fn launchd_label(home: &Home) -> String {
    format!("com.nanoclaw-{}", install_slug(home))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A systemd user unit that runs `exe --home home run` and restarts it on failure.
pub fn systemd_unit(exe: &Path, home: &Home) -> String {
    // systemd splits ExecStart on spaces: quote both paths.
    format!(
        "[Unit]\nDescription=NanoClaw personal assistant host\nAfter=network-online.target\nWants=network-online.target\n\n\
         [Service]\nType=simple\nExecStart=\"{}\" --home \"{}\" run\nRestart=on-failure\nRestartSec=5\nKillSignal=SIGTERM\nTimeoutStopSec=30\n\n\
         [Install]\nWantedBy=default.target\n",
        exe.display(),
        home.root().display()
    )
}

/// A launchd agent with the same behaviour.
pub fn launchd_plist(exe: &Path, home: &Home) -> String {
    let log = home.logs_dir().join("launchd.log");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{}</string>
  <key>ProgramArguments</key>
  <array>
    <string>{}</string>
    <string>--home</string>
    <string>{}</string>
    <string>run</string>
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>StandardErrorPath</key>
  <string>{}</string>
</dict>
</plist>
"#,
        xml_escape(&launchd_label(home)),
        xml_escape(&exe.display().to_string()),
        xml_escape(&home.root().display().to_string()),
        xml_escape(&log.display().to_string())
    )
}

/// What `service` should do.
pub enum Action {
    /// Write (and activate) the service.
    Install,
    /// Remove it.
    Uninstall,
    /// Say whether it is installed and whether the host runs.
    Status,
}

/// Runs a `service` subcommand.
pub fn service(
    home: Home,
    action: Action,
    platform: Option<Platform>,
    dir: Option<PathBuf>,
    activate: bool,
) -> anyhow::Result<ExitCode> {
    let platform = platform.unwrap_or_else(Platform::current);
    let dir = match dir {
        Some(d) => d,
        None => platform.default_dir()?,
    };
    let file = dir.join(platform.file_name(&home));
    let unit = format!("{}.service", unit_name(&home));
    // A service of an earlier release, under the fixed name, that runs this very home.
    let legacy = dir.join(platform.legacy_file_name());
    let legacy_ours = std::fs::read_to_string(&legacy).is_ok_and(|t| {
        t.contains(&format!("\"{}\"", home.root().display()))
            || t.contains(&format!(
                "<string>{}</string>",
                xml_escape(&home.root().display().to_string())
            ))
    });
    let manager = |args: &[&str]| {
        let (cmd, args): (&str, Vec<&str>) = match platform {
            Platform::Linux => ("systemctl", [&["--user"][..], args].concat()),
            Platform::Macos => ("launchctl", args.to_vec()),
        };
        match std::process::Command::new(cmd).args(&args).status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(anyhow::anyhow!("{cmd} {} failed ({s})", args.join(" "))),
            Err(e) => Err(anyhow::anyhow!("cannot run {cmd}: {e}")),
        }
    };
    match action {
        Action::Install => {
            let exe = std::env::current_exe()?;
            let text = match platform {
                Platform::Linux => systemd_unit(&exe, &home),
                Platform::Macos => launchd_plist(&exe, &home),
            };
            std::fs::create_dir_all(&dir)?;
            if legacy_ours {
                // Moved to the per-install name: the old unit must not start a second host.
                if activate {
                    let _ = match platform {
                        Platform::Linux => {
                            manager(&["disable", "--now", platform.legacy_file_name()])
                        }
                        Platform::Macos => manager(&["unload", "-w", &legacy.to_string_lossy()]),
                    };
                }
                std::fs::remove_file(&legacy)?;
                println!(
                    "removed {} (this home's service of an earlier release)",
                    legacy.display()
                );
            }
            std::fs::write(&file, text)?;
            println!("wrote {}", file.display());
            if activate {
                match platform {
                    Platform::Linux => {
                        manager(&["daemon-reload"])?;
                        manager(&["enable", "--now", &unit])?;
                    }
                    Platform::Macos => manager(&["load", "-w", &file.to_string_lossy()])?,
                }
                println!("service enabled and started");
            }
        }
        Action::Uninstall => {
            if activate && file.exists() {
                let _ = match platform {
                    Platform::Linux => manager(&["disable", "--now", &unit]),
                    Platform::Macos => manager(&["unload", "-w", &file.to_string_lossy()]),
                };
            }
            match std::fs::remove_file(&file) {
                Ok(()) => println!("removed {}", file.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    println!("not installed ({} does not exist)", file.display())
                }
                Err(e) => return Err(e.into()),
            }
        }
        Action::Status => {
            if legacy_ours {
                println!(
                    "note: {} is this home's service of an earlier release; `nanoclaw service install` moves it to {}",
                    legacy.display(),
                    file.display()
                );
            }
            println!(
                "service file: {}",
                if file.exists() {
                    file.display().to_string()
                } else {
                    "not installed".into()
                }
            );
            println!(
                "host: {}",
                if nanoclaw_host::host_running(&home) {
                    "running"
                } else {
                    "not running"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_per_home_and_stable() {
        let a = Home::new("/home/ann/nanoclaw");
        let b = Home::new("/home/ann/work-assistant");
        assert_eq!(unit_name(&a), unit_name(&Home::new("/home/ann/nanoclaw")));
        assert_ne!(unit_name(&a), unit_name(&b));
        assert_ne!(launchd_label(&a), launchd_label(&b));
        let slug = install_slug(&a);
        assert!(slug.len() == 8 && slug.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            Platform::Linux.file_name(&a),
            format!("nanoclaw-{slug}.service")
        );
        assert_eq!(
            Platform::Macos.file_name(&a),
            format!("com.nanoclaw-{slug}.plist")
        );
    }

    #[test]
    fn unit_and_plist_formats() {
        let home = Home::new("/home/ann/my nano");
        let exe = Path::new("/usr/local/bin/nanoclaw");
        let unit = systemd_unit(exe, &home);
        for line in [
            "[Unit]",
            "[Service]",
            "[Install]",
            "ExecStart=\"/usr/local/bin/nanoclaw\" --home \"/home/ann/my nano\" run",
            "Restart=on-failure",
            "WantedBy=default.target",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line} missing in\n{unit}");
        }
        // Every non-section, non-blank line is Key=Value.
        assert!(unit
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('['))
            .all(|l| l.split_once('=').is_some_and(|(k, _)| !k.is_empty())));
        let plist = launchd_plist(Path::new("/Applications/a&b/nanoclaw"), &home);
        assert!(plist.contains(&format!("<string>{}</string>", launchd_label(&home))));
        assert!(plist.starts_with("<?xml version=\"1.0\""));
        assert!(plist.contains("<string>/Applications/a&amp;b/nanoclaw</string>"));
        assert!(plist.contains("<key>RunAtLoad</key>\n  <true/>"));
        assert_eq!(
            plist.matches("<dict>").count(),
            plist.matches("</dict>").count()
        );
        assert_eq!(
            plist.matches("<array>").count(),
            plist.matches("</array>").count()
        );
    }
}
