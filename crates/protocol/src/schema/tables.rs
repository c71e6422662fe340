//! The session DB tables, column by column, as every protocol version has declared them.

/// One table's columns as `(name, definition)`; definitions are valid in `ALTER TABLE ADD COLUMN`
/// except for the primary key, which every version has had.
pub(super) type Columns = &'static [(&'static str, &'static str)];

const MESSAGES_IN: Columns = &[
    ("id", "TEXT PRIMARY KEY"),
    ("seq", "INTEGER UNIQUE"),
    ("kind", "TEXT NOT NULL DEFAULT 'chat'"),
    ("timestamp", "TEXT NOT NULL DEFAULT ''"),
    ("status", "TEXT DEFAULT 'pending'"),
    ("process_after", "TEXT"),
    ("recurrence", "TEXT"),
    ("series_id", "TEXT"),
    ("tries", "INTEGER DEFAULT 0"),
    ("trigger", "INTEGER NOT NULL DEFAULT 1"),
    ("platform_id", "TEXT"),
    ("channel_type", "TEXT"),
    ("thread_id", "TEXT"),
    ("content", "TEXT NOT NULL DEFAULT '{}'"),
    ("source_session_id", "TEXT"),
    ("on_wake", "INTEGER NOT NULL DEFAULT 0"),
];
const DELIVERED: Columns = &[
    ("message_out_id", "TEXT PRIMARY KEY"),
    ("platform_message_id", "TEXT"),
    ("status", "TEXT NOT NULL DEFAULT 'delivered'"),
    ("delivered_at", "TEXT NOT NULL DEFAULT ''"),
];
const DESTINATIONS: Columns = &[
    ("name", "TEXT PRIMARY KEY"),
    ("display_name", "TEXT"),
    ("type", "TEXT NOT NULL DEFAULT 'channel'"),
    ("channel_type", "TEXT"),
    ("platform_id", "TEXT"),
    ("agent_group_id", "TEXT"),
];
const SESSION_ROUTING: Columns = &[
    ("id", "INTEGER PRIMARY KEY CHECK (id = 1)"),
    ("channel_type", "TEXT"),
    ("platform_id", "TEXT"),
    ("thread_id", "TEXT"),
];
const MESSAGES_OUT: Columns = &[
    ("id", "TEXT PRIMARY KEY"),
    ("seq", "INTEGER UNIQUE"),
    ("in_reply_to", "TEXT"),
    ("timestamp", "TEXT NOT NULL DEFAULT ''"),
    ("deliver_after", "TEXT"),
    ("recurrence", "TEXT"),
    ("kind", "TEXT NOT NULL DEFAULT 'chat'"),
    ("platform_id", "TEXT"),
    ("channel_type", "TEXT"),
    ("thread_id", "TEXT"),
    ("content", "TEXT NOT NULL DEFAULT '{}'"),
];
const PROCESSING_ACK: Columns = &[
    ("message_id", "TEXT PRIMARY KEY"),
    ("status", "TEXT NOT NULL DEFAULT 'processing'"),
    ("status_changed", "TEXT NOT NULL DEFAULT ''"),
];
const SESSION_STATE: Columns = &[
    ("key", "TEXT PRIMARY KEY"),
    ("value", "TEXT NOT NULL DEFAULT ''"),
    ("updated_at", "TEXT NOT NULL DEFAULT ''"),
];
const CONTAINER_STATE: Columns = &[
    ("id", "INTEGER PRIMARY KEY CHECK (id = 1)"),
    ("current_tool", "TEXT"),
    ("tool_declared_timeout_ms", "INTEGER"),
    ("tool_started_at", "TEXT"),
    ("updated_at", "TEXT NOT NULL DEFAULT ''"),
];

pub(super) const INBOUND: &[(&str, Columns)] = &[
    ("messages_in", MESSAGES_IN),
    ("delivered", DELIVERED),
    ("destinations", DESTINATIONS),
    ("session_routing", SESSION_ROUTING),
];
pub(super) const OUTBOUND: &[(&str, Columns)] = &[
    ("messages_out", MESSAGES_OUT),
    ("processing_ack", PROCESSING_ACK),
    ("session_state", SESSION_STATE),
    ("container_state", CONTAINER_STATE),
];
pub(super) const INBOUND_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS idx_messages_in_series ON messages_in(series_id);
CREATE INDEX IF NOT EXISTS idx_messages_in_status ON messages_in(status, process_after);";
pub(super) const OUTBOUND_INDEXES: &str = "";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{DeliveryStatus, MessageStatus};

    /// The SQL defaults of the status columns are values of their types.
    #[test]
    fn status_defaults_are_typed_values() {
        let default = |cols: Columns, name: &str| -> String {
            let (_, def) = cols.iter().find(|(n, _)| *n == name).unwrap();
            let quoted = def.split("DEFAULT '").nth(1).unwrap();
            quoted.trim_end_matches('\'').to_string()
        };
        assert_eq!(
            default(MESSAGES_IN, "status").parse(),
            Ok(MessageStatus::Pending)
        );
        assert_eq!(
            default(PROCESSING_ACK, "status").parse(),
            Ok(MessageStatus::Processing)
        );
        assert_eq!(
            default(DELIVERED, "status").parse(),
            Ok(DeliveryStatus::Delivered)
        );
    }
}
