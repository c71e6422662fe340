//! Typing indicators while a turn runs.

use std::sync::Arc;
use std::time::Duration;

use super::{Host, HostEvent};

impl Host {
    /// Shows the typing indicator in a chat until the turn of `message_id` is done (refreshed
    /// every 4 s; at most 10 minutes), on channels that have one.
    pub fn start_typing(
        self: &Arc<Self>,
        channel: &str,
        platform_id: &str,
        thread: Option<&str>,
        message_id: &str,
    ) {
        let Some(ch) = self.channels.get(channel).cloned() else {
            return;
        };
        if !ch.capabilities().typing {
            return;
        }
        let (pid, thread, id) = (
            platform_id.to_string(),
            thread.map(str::to_string),
            message_id.to_string(),
        );
        let mut events = self.subscribe();
        let host = self.clone();
        self.spawn(async move {
            let until = tokio::time::Instant::now() + Duration::from_secs(600);
            while tokio::time::Instant::now() < until {
                ch.typing(&pid, thread.as_deref(), true).await;
                let tick = tokio::time::sleep(Duration::from_secs(4));
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        _ = &mut tick => break,
                        _ = host.shutdown_signal() => return,
                        e = events.recv() => match e {
                            Ok(HostEvent::TurnDone { message_id, .. }) if message_id == id => {
                                ch.typing(&pid, thread.as_deref(), false).await;
                                return;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                            _ => {}
                        },
                    }
                }
            }
        });
    }
}
