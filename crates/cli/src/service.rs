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
    fn file_name(self) -> &'static str {
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
  <string>com.nanoclaw.host</string>
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
    let file = dir.join(platform.file_name());
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
            std::fs::write(&file, text)?;
            println!("wrote {}", file.display());
            if activate {
                match platform {
                    Platform::Linux => {
                        manager(&["daemon-reload"])?;
                        manager(&["enable", "--now", "nanoclaw.service"])?;
                    }
                    Platform::Macos => manager(&["load", "-w", &file.to_string_lossy()])?,
                }
                println!("service enabled and started");
            }
        }
        Action::Uninstall => {
            if activate && file.exists() {
                let _ = match platform {
                    Platform::Linux => manager(&["disable", "--now", "nanoclaw.service"]),
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
