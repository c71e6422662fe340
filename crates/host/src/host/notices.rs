//! What the host itself says: notices to a chat, and `system` rows to an agent.

use std::sync::Arc;

use super::Host;
use crate::{channels, db, sessions};

impl Host {
    /// Sends a host notice (not from the agent) straight to a chat.
    pub async fn notify(
        &self,
        channel_type: &str,
        platform_id: &str,
        thread_id: Option<&str>,
        text: &str,
    ) {
        let Some(ch) = self.channels.get(channel_type) else {
            return;
        };
        let item = channels::OutboundItem {
            message_out_id: nanoclaw_protocol::new_id("notice"),
            platform_id: platform_id.into(),
            thread_id: thread_id.map(Into::into),
            in_reply_to: None,
            target_platform_message_id: None,
            content: nanoclaw_protocol::content::Outbound::Message {
                text: text.into(),
                files: vec![],
                extra: Default::default(),
            },
            files: vec![],
        };
        if let Err(e) = ch.send(&item).await {
            tracing::warn!(channel = channel_type, error = %e, "notice not sent");
        }
    }

    /// Answers the agent with a `system` messages_in row (and wakes it).
    pub async fn write_system(
        self: &Arc<Self>,
        sess: &db::sessions::Session,
        content: String,
    ) -> anyhow::Result<()> {
        self.system_row(sess, content, true).await?;
        self.wake(&sess.id).await;
        Ok(())
    }

    /// Writes a system row the agent reads with its next turn, without starting one: for
    /// delivery failures, where a woken agent would answer into the same broken route and loop.
    pub async fn note_system(
        self: &Arc<Self>,
        sess: &db::sessions::Session,
        content: String,
    ) -> anyhow::Result<()> {
        self.system_row(sess, content, false).await
    }

    async fn system_row(
        &self,
        sess: &db::sessions::Session,
        content: String,
        trigger: bool,
    ) -> anyhow::Result<()> {
        let dir = self
            .home
            .session(&sess.agent_group_id, &sess.id)?
            .dir()
            .to_path_buf();
        let mut row = sessions::NewInbound::new("system", content);
        row.trigger = trigger;
        sessions::write_inbound_batched(&dir, vec![row]).await?;
        Ok(())
    }
}
