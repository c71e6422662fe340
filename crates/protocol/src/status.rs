//! The closed sets of text values stored in status, mode and policy columns, as types.
//!
//! Their spellings are on-disk formats shared with NanoClaw v2 (session DBs and the central
//! DB), so each type's text is fixed here once; a value outside the set is an error naming the
//! allowed ones instead of a silent fallback. Every type converts to and from SQL text
//! (`ToSql`/`FromSql`), JSON strings (serde) and `&str` (`as_str`, `FromStr`, `Display`).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A text that is not one of a type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?} (allowed: {})", .allowed.join(", "))]
pub struct UnknownValue {
    /// What was being read ("engage mode").
    pub what: &'static str,
    /// The text given.
    pub got: String,
    /// The values there are.
    pub allowed: &'static [&'static str],
}

/// Declares a fieldless enum stored as text, with its conversions.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order messages list them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The text of every value, in the order of [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The stored text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        got: s.to_string(),
                        allowed: Self::NAMES,
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: UnknownValue| FromSqlError::Other(Box::new(e)))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

text_enum! {
    /// `messages_in.status` (host-owned) and `processing_ack.status` (the runner's ack, which
    /// uses `processing`, `completed` and `failed` only).
    MessageStatus("message status") {
        /// Waiting to be handed to the agent (at `process_after`, when set).
        #[default]
        Pending = "pending",
        /// Handed to the agent, no answer yet.
        Processing = "processing",
        /// Handled.
        Completed = "completed",
        /// Given up on (bad content, or out of retries).
        Failed = "failed",
        /// A scheduled task on hold (`pause_task`).
        Paused = "paused",
    }
}

text_enum! {
    /// `delivered.status`: what became of an outbound row.
    DeliveryStatus("delivery status") {
        /// Sent (or needs no sending).
        #[default]
        Delivered = "delivered",
        /// Can never be sent; not retried.
        Failed = "failed",
    }
}

text_enum! {
    /// `messaging_group_agents.engage_mode`: which messages of a chat wake the agent.
    EngageMode("engage mode") {
        /// Messages matching `engage_pattern` (a regex).
        Pattern = "pattern",
        /// Mentions of the bot, and every message of a direct chat.
        #[default]
        Mention = "mention",
        /// As `mention`, and then every message of a thread where the bot was mentioned.
        MentionSticky = "mention-sticky",
    }
}

text_enum! {
    /// `messaging_group_agents.sender_scope`: whose messages reach the agent.
    SenderScope("sender scope") {
        /// Everyone the chat lets in.
        #[default]
        All = "all",
        /// Only members of the agent group and holders of a role in it (or a global one).
        Known = "known",
    }
}

text_enum! {
    /// `messaging_group_agents.ignored_message_policy`: what happens to a message that does
    /// not engage the agent.
    IgnoredMessagePolicy("ignored message policy") {
        /// Not stored.
        #[default]
        Drop = "drop",
        /// Stored without waking the agent, as context for its next turn.
        Accumulate = "accumulate",
    }
}

text_enum! {
    /// `messaging_group_agents.session_mode`: which session a chat's messages go to.
    SessionMode("session mode") {
        /// One session per chat and agent group.
        #[default]
        Shared = "shared",
        /// One session per thread of the chat.
        PerThread = "per-thread",
        /// One session per agent group, shared by all its chats.
        AgentShared = "agent-shared",
    }
}

text_enum! {
    /// `messaging_groups.unknown_sender_policy`: what happens to a message from someone the
    /// chat does not know.
    UnknownSenderPolicy("unknown sender policy") {
        /// Dropped (and audited).
        #[default]
        Strict = "strict",
        /// Parked until an approver lets the sender in.
        RequestApproval = "request_approval",
        /// Let in.
        Public = "public",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Every value of `T` survives `&str`, SQL and JSON, and an unknown text names the values.
    fn round_trips<T>(all: &[T], names: &[&str], what: &str)
    where
        T: Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr<Err = UnknownValue>
            + ToSql
            + FromSql
            + serde::Serialize
            + serde::de::DeserializeOwned,
    {
        let c = Connection::open_in_memory().unwrap();
        assert_eq!(all.len(), names.len());
        for (v, name) in all.iter().zip(names) {
            assert_eq!(v.to_string(), *name);
            assert_eq!(name.parse::<T>().unwrap(), *v);
            let text: String = c.query_row("SELECT ?1", [v], |r| r.get(0)).unwrap();
            assert_eq!(text, *name, "stored as its text");
            let back: T = c.query_row("SELECT ?1", [name], |r| r.get(0)).unwrap();
            assert_eq!(back, *v);
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("{name:?}"));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v);
        }
        let err = "Nope".parse::<T>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unknown {what} \"Nope\" (allowed: {})", names.join(", "))
        );
        let sql: rusqlite::Result<T> = c.query_row("SELECT 'Nope'", [], |r| r.get(0));
        assert!(sql.unwrap_err().to_string().contains("allowed:"));
        let int: rusqlite::Result<T> = c.query_row("SELECT 1", [], |r| r.get(0));
        assert!(int.is_err(), "not text");
        assert!(serde_json::from_str::<T>("\"Nope\"").is_err());
    }

    #[test]
    fn every_value_round_trips_and_unknown_ones_are_named() {
        round_trips(MessageStatus::ALL, MessageStatus::NAMES, "message status");
        round_trips(
            DeliveryStatus::ALL,
            DeliveryStatus::NAMES,
            "delivery status",
        );
        round_trips(EngageMode::ALL, EngageMode::NAMES, "engage mode");
        round_trips(SenderScope::ALL, SenderScope::NAMES, "sender scope");
        round_trips(
            IgnoredMessagePolicy::ALL,
            IgnoredMessagePolicy::NAMES,
            "ignored message policy",
        );
        round_trips(SessionMode::ALL, SessionMode::NAMES, "session mode");
        round_trips(
            UnknownSenderPolicy::ALL,
            UnknownSenderPolicy::NAMES,
            "unknown sender policy",
        );
    }

    /// NanoClaw v2's spellings and column defaults, which both installs read.
    #[test]
    fn the_on_disk_spellings_are_v2s() {
        assert_eq!(
            MessageStatus::NAMES,
            ["pending", "processing", "completed", "failed", "paused"]
        );
        assert_eq!(DeliveryStatus::NAMES, ["delivered", "failed"]);
        assert_eq!(EngageMode::NAMES, ["pattern", "mention", "mention-sticky"]);
        assert_eq!(SenderScope::NAMES, ["all", "known"]);
        assert_eq!(IgnoredMessagePolicy::NAMES, ["drop", "accumulate"]);
        assert_eq!(SessionMode::NAMES, ["shared", "per-thread", "agent-shared"]);
        assert_eq!(
            UnknownSenderPolicy::NAMES,
            ["strict", "request_approval", "public"]
        );
        let defaults = [
            MessageStatus::default().as_str(),
            DeliveryStatus::default().as_str(),
            EngageMode::default().as_str(),
            SenderScope::default().as_str(),
            IgnoredMessagePolicy::default().as_str(),
            SessionMode::default().as_str(),
            UnknownSenderPolicy::default().as_str(),
        ];
        assert_eq!(
            defaults,
            [
                "pending",
                "delivered",
                "mention",
                "all",
                "drop",
                "shared",
                "strict"
            ]
        );
    }
}
