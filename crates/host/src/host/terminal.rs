//! The terminal's first use: its chat, wiring and owner.

use nanoclaw_protocol::status::UnknownSenderPolicy;

use super::Host;
use crate::{channels, db};

impl Host {
    /// First use of the terminal for an agent: its chat, wiring (pattern `.`) and the
    /// `cli:local` owner. An existing terminal chat is left as the user configured it.
    pub async fn ensure_terminal_wiring(&self, folder: &str) -> anyhow::Result<()> {
        let folder = folder.to_string();
        let home = self.home.clone();
        self.db
            .call(move |c| {
                nanoclaw_protocol::names::validate(&folder)?;
                let pid = channels::cli::CliChannel::platform_for(Some(&folder));
                if db::messaging_groups::find(c, channels::cli::CHANNEL, &pid)?.is_some() {
                    return Ok(());
                }
                let tx = c.transaction()?;
                let ag = match db::agent_groups::by_folder(&tx, &folder)? {
                    Some(g) => g,
                    None if folder == "main" => db::agent_groups::create(&tx, "Main", "main")?,
                    None => anyhow::bail!("no agent group with folder {folder:?} (create it with `nanoclaw ctl groups create`)"),
                };
                std::fs::create_dir_all(home.group_dir(&ag.folder)?)?;
                let mg = db::messaging_groups::create(&tx, channels::cli::CHANNEL, &pid, Some("terminal"), false, UnknownSenderPolicy::Strict)?;
                let w = db::wirings::NewWiring::every_message(&mg.id, &ag.id);
                db::wirings::create(&tx, &w)?;
                db::users::ensure(&tx, "cli:local", "cli", Some("terminal"))?;
                db::users::grant(&tx, "cli:local", "owner", None, None)?;
                tx.commit()?;
                tracing::info!(folder = %folder, "terminal wired to agent group");
                Ok(())
            })
            .await
    }
}
