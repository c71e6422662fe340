//! Static descriptors of the resources `nanoclaw ctl` manages: one per central-DB table.
//!
//! Everything the generic CRUD in [`super::crud`] puts into SQL text (table, column and key
//! names, the ORDER BY clause) comes from here; values from users are always bound parameters.
//! A resource's entity rules are attached here too ([`Hooks`], written in [`super::hooks`]), so a
//! new resource is one descriptor and its entry in [`RESOURCES`].

use nanoclaw_protocol::status::{
    EngageMode, IgnoredMessagePolicy, SenderScope, SessionMode, UnknownSenderPolicy,
};
use nanoclaw_protocol::Home;
use rusqlite::Connection;
use serde_json::Value;

use super::crud::{Key, Row};
use super::hooks;
use super::CtlError;

/// How a column's value is typed on input and rendered on output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// 64-bit integer.
    Int,
    /// Boolean stored as 0/1.
    Bool,
    /// JSON array stored as text.
    JsonArray,
    /// JSON object stored as text.
    JsonObject,
    /// Any JSON value stored as text (a word that is not JSON is taken as a JSON string).
    Json,
}

impl Kind {
    /// Name used in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Int => "an integer",
            Kind::Bool => "true or false",
            Kind::JsonArray => "a JSON array",
            Kind::JsonObject => "a JSON object",
            Kind::Json => "JSON",
        }
    }
}

/// Who may set a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Settable on create and update.
    ReadWrite,
    /// Settable on create only (identity: keys, folders, the ends of a wiring).
    CreateOnly,
    /// Set by nanoclaw (generated ids, timestamps, host-owned state).
    ReadOnly,
}

/// Values nanoclaw generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen {
    /// Nothing generated.
    None,
    /// A new id `<prefix>-<uuid>` on create.
    Id,
    /// The current time on create.
    Now,
    /// The current time on create and on every update.
    NowAlways,
}

/// One column of a resource.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    /// Column name (the flag is this with `_` → `-`).
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Must be given on create.
    pub required: bool,
    /// May be NULL.
    pub nullable: bool,
    /// Value stored when create omits the column (None: the table's SQL default).
    pub default: Option<&'static str>,
    /// Who may set it.
    pub access: Access,
    /// Generated value.
    pub generated: Gen,
    /// Allowed values (empty: any).
    pub choices: &'static [&'static str],
    /// Resource whose key this column references (checked before writing).
    pub refs: Option<&'static str>,
}

impl Col {
    const fn new(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            kind,
            required: false,
            nullable: false,
            default: None,
            access: Access::ReadWrite,
            generated: Gen::None,
            choices: &[],
            refs: None,
        }
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
    const fn default(mut self, v: &'static str) -> Self {
        self.default = Some(v);
        self
    }
    const fn once(mut self) -> Self {
        self.access = Access::CreateOnly;
        self
    }
    const fn ro(mut self) -> Self {
        self.access = Access::ReadOnly;
        self
    }
    const fn choices(mut self, c: &'static [&'static str]) -> Self {
        self.choices = c;
        self
    }
    const fn refs(mut self, r: &'static str) -> Self {
        self.refs = Some(r);
        self
    }
    /// The `--flag` spelling of this column.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }
}

const fn text(name: &'static str) -> Col {
    Col::new(name, Kind::Text)
}
const fn int(name: &'static str) -> Col {
    Col::new(name, Kind::Int)
}
const fn boolean(name: &'static str) -> Col {
    Col::new(name, Kind::Bool)
}
const fn json_array(name: &'static str) -> Col {
    Col::new(name, Kind::JsonArray)
}
const fn json_object(name: &'static str) -> Col {
    Col::new(name, Kind::JsonObject)
}
const fn json(name: &'static str) -> Col {
    Col::new(name, Kind::Json)
}
/// A generated `<prefix>-…` id.
const fn gen_id(name: &'static str) -> Col {
    let mut c = Col::new(name, Kind::Text).ro();
    c.generated = Gen::Id;
    c
}
/// A creation timestamp.
const fn created(name: &'static str) -> Col {
    let mut c = Col::new(name, Kind::Text).ro();
    c.generated = Gen::Now;
    c
}
/// A timestamp refreshed on every write.
const fn touched(name: &'static str) -> Col {
    let mut c = Col::new(name, Kind::Text).ro();
    c.generated = Gen::NowAlways;
    c
}

/// A verb of `nanoclaw ctl <resource> <verb>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Rows, optionally filtered.
    List,
    /// One row by key.
    Get,
    /// A new row.
    Create,
    /// Change columns of one row.
    Update,
    /// Remove one row.
    Delete,
}

impl Verb {
    /// Parses a verb name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "list" | "ls" => Verb::List,
            "get" | "show" => Verb::Get,
            "create" | "add" => Verb::Create,
            "update" | "set" => Verb::Update,
            "delete" | "rm" | "remove" => Verb::Delete,
            _ => return None,
        })
    }
    /// Canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Verb::List => "list",
            Verb::Get => "get",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Delete => "delete",
        }
    }
    /// Does it write?
    pub fn writes(self) -> bool {
        matches!(self, Verb::Create | Verb::Update | Verb::Delete)
    }
}

const ALL: &[Verb] = &[
    Verb::List,
    Verb::Get,
    Verb::Create,
    Verb::Update,
    Verb::Delete,
];
const NO_CREATE: &[Verb] = &[Verb::List, Verb::Get, Verb::Update, Verb::Delete];
const READ_ONLY: &[Verb] = &[Verb::List, Verb::Get];

/// Creates a row from its checked values, in place of the generic insert; returns its key.
pub type CreateHook = fn(&Connection, &Home, &Resource, &Row) -> Result<Key, CtlError>;
/// Checks an update of a row (as stored) with new values, before it is written.
pub type UpdateHook = fn(&Connection, &Resource, &Value, &Row) -> Result<(), CtlError>;
/// Checks a delete of the row with this key, before anything is deleted.
pub type DeleteHook = fn(&Connection, &Resource, &Key) -> Result<(), CtlError>;

/// The entity rules of a resource, run inside the request's transaction: where its invariants
/// live in `db::*` helpers, or need a clearer message than a constraint failure.
#[derive(Debug, Clone, Copy)]
pub struct Hooks {
    /// Replaces the generic create (references checked, the row inserted as given).
    pub create: Option<CreateHook>,
    /// Runs before the generic update.
    pub before_update: Option<UpdateHook>,
    /// Runs before the generic delete (and its cascade).
    pub before_delete: Option<DeleteHook>,
}

impl Hooks {
    /// No rules beyond the descriptor's own.
    pub const NONE: Hooks = Hooks {
        create: None,
        before_update: None,
        before_delete: None,
    };
}

/// One resource of `nanoclaw ctl`.
#[derive(Debug)]
pub struct Resource {
    /// CLI name (`messaging-groups`).
    pub name: &'static str,
    /// Table.
    pub table: &'static str,
    /// Primary-key columns; a nullable one matches NULL when omitted.
    pub key: &'static [&'static str],
    /// Prefix of generated ids (single generated key only).
    pub id_prefix: Option<&'static str>,
    /// Columns in display order.
    pub cols: &'static [Col],
    /// Verbs allowed.
    pub verbs: &'static [Verb],
    /// ORDER BY clause of `list`.
    pub order_by: &'static str,
    /// Changes must be pushed into running sessions (`Host::refresh_projections`).
    pub refresh: bool,
    /// One-line description.
    pub about: &'static str,
    /// Entity rules of create, update and delete.
    pub hooks: Hooks,
}

impl Resource {
    /// Column by name.
    pub fn col(&self, name: &str) -> Option<&'static Col> {
        self.cols.iter().find(|c| c.name == name)
    }
    /// Is `name` a key column?
    pub fn is_key(&self, name: &str) -> bool {
        self.key.contains(&name)
    }
    /// `a, b, c` of every column.
    pub fn select_list(&self) -> String {
        self.cols
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// `--a, --b` of every column, for messages.
    pub fn flags(&self) -> String {
        self.cols
            .iter()
            .map(|c| format!("--{}", c.flag()))
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// `--a, --b` of the key columns, for messages.
    pub fn key_flags(&self) -> String {
        self.key
            .iter()
            .map(|k| format!("--{}", k.replace('_', "-")))
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// Verb names, for messages.
    pub fn verb_names(&self) -> String {
        self.verbs
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// Is the key one column?
    pub fn single_key(&self) -> Option<&'static str> {
        match self.key {
            [k] => Some(k),
            _ => None,
        }
    }
    /// Multi-line help: verbs and fields.
    pub fn help(&self) -> String {
        let mut s = format!(
            "{} — {} (table {})\nverbs: {}\n",
            self.name,
            self.about,
            self.table,
            self.verb_names()
        );
        match self.single_key() {
            Some(k) => s.push_str(&format!(
                "addressed by: <{k}> or --{}\n",
                k.replace('_', "-")
            )),
            None => s.push_str(&format!("addressed by: {}\n", self.key_flags())),
        }
        s.push_str("fields:\n");
        for c in self.cols {
            let mut notes = vec![c.kind.describe().to_string()];
            if c.required {
                notes.push("required".into());
            }
            if !c.choices.is_empty() {
                notes.push(c.choices.join("|"));
            }
            if let Some(d) = c.default {
                notes.push(format!("default {d}"));
            }
            if let Some(r) = c.refs {
                notes.push(format!("id of {r}"));
            }
            match c.access {
                Access::ReadOnly => notes.push("read-only".into()),
                Access::CreateOnly => notes.push("set on create".into()),
                Access::ReadWrite => {}
            }
            if c.nullable {
                notes.push("optional".into());
            }
            s.push_str(&format!("  --{:<24} {}\n", c.flag(), notes.join(", ")));
        }
        s
    }
}

/// `agent_groups`.
pub static GROUPS: Resource = Resource {
    name: "groups",
    table: "agent_groups",
    key: &["id"],
    id_prefix: Some("ag"),
    cols: &[
        gen_id("id"),
        text("name").required(),
        // Defaults to the normalised name (see the create hook).
        text("folder").once(),
        text("agent_provider").nullable(),
        created("created_at"),
    ],
    verbs: ALL,
    order_by: "created_at, id",
    refresh: true,
    about: "agent groups: a workspace folder under groups/ with its own memory and container",
    hooks: Hooks {
        create: Some(hooks::create_group),
        ..Hooks::NONE
    },
};

/// `messaging_groups`.
pub static MESSAGING_GROUPS: Resource = Resource {
    name: "messaging-groups",
    table: "messaging_groups",
    key: &["id"],
    id_prefix: Some("mg"),
    cols: &[
        gen_id("id"),
        text("channel_type").required().once(),
        text("platform_id").required().once(),
        text("name").nullable(),
        boolean("is_group").default("false"),
        text("unknown_sender_policy")
            .default(UnknownSenderPolicy::Strict.as_str())
            .choices(UnknownSenderPolicy::NAMES),
        created("created_at"),
        // Set when the owner refused the chat (NanoClaw v2); clear it to let the chat in again.
        text("denied_at").nullable(),
    ],
    verbs: ALL,
    order_by: "created_at, id",
    refresh: true,
    about: "chats on a platform",
    hooks: Hooks::NONE,
};

/// `messaging_group_agents`.
pub static WIRINGS: Resource = Resource {
    name: "wirings",
    table: "messaging_group_agents",
    key: &["id"],
    id_prefix: Some("wire"),
    cols: &[
        gen_id("id"),
        text("messaging_group_id")
            .required()
            .once()
            .refs("messaging-groups"),
        text("agent_group_id").required().once().refs("groups"),
        text("engage_mode")
            .default(EngageMode::Mention.as_str())
            .choices(EngageMode::NAMES),
        text("engage_pattern").nullable(),
        text("sender_scope")
            .default(SenderScope::All.as_str())
            .choices(SenderScope::NAMES),
        text("ignored_message_policy")
            .default(IgnoredMessagePolicy::Drop.as_str())
            .choices(IgnoredMessagePolicy::NAMES),
        text("session_mode")
            .default(SessionMode::Shared.as_str())
            .choices(SessionMode::NAMES),
        int("priority").default("0"),
        created("created_at"),
    ],
    verbs: ALL,
    order_by: "messaging_group_id, priority DESC, created_at, id",
    refresh: true,
    about: "which agent groups a chat reaches, and how",
    hooks: Hooks {
        create: Some(hooks::create_wiring),
        before_update: Some(hooks::update_wiring),
        ..Hooks::NONE
    },
};

/// `users`.
pub static USERS: Resource = Resource {
    name: "users",
    table: "users",
    key: &["id"],
    id_prefix: None,
    cols: &[
        // `<channel_type>:<handle>`, given by the admin.
        text("id").required().once(),
        // Defaults to the channel type in the id.
        text("kind").once(),
        text("display_name").nullable(),
        created("created_at"),
    ],
    verbs: ALL,
    order_by: "created_at, id",
    refresh: false,
    about: "people, as <channel_type>:<handle> (telegram:42, cli:local)",
    hooks: Hooks {
        create: Some(hooks::create_user),
        ..Hooks::NONE
    },
};

/// `user_roles`.
pub static ROLES: Resource = Resource {
    name: "roles",
    table: "user_roles",
    key: &["user_id", "role", "agent_group_id"],
    id_prefix: None,
    cols: &[
        text("user_id").required().once().refs("users"),
        text("role").required().once().choices(&["owner", "admin"]),
        text("agent_group_id").nullable().once().refs("groups"),
        text("granted_by").nullable(),
        created("granted_at"),
    ],
    verbs: ALL,
    order_by: "granted_at, user_id, role",
    refresh: false,
    about: "owner (always global) and admin (global, or of one agent group) roles",
    hooks: Hooks {
        create: Some(hooks::create_role),
        ..Hooks::NONE
    },
};

/// `agent_group_members`.
pub static MEMBERS: Resource = Resource {
    name: "members",
    table: "agent_group_members",
    key: &["user_id", "agent_group_id"],
    id_prefix: None,
    cols: &[
        text("user_id").required().once().refs("users"),
        text("agent_group_id").required().once().refs("groups"),
        text("added_by").nullable(),
        created("added_at"),
    ],
    verbs: ALL,
    order_by: "added_at, user_id, agent_group_id",
    refresh: false,
    about: "plain members of an agent group (known senders)",
    hooks: Hooks {
        create: Some(hooks::create_member),
        before_delete: Some(hooks::delete_member),
        ..Hooks::NONE
    },
};

/// `user_dms`.
pub static USER_DMS: Resource = Resource {
    name: "user-dms",
    table: "user_dms",
    key: &["user_id", "channel_type"],
    id_prefix: None,
    cols: &[
        text("user_id").required().once().refs("users"),
        text("channel_type").required().once(),
        text("messaging_group_id")
            .required()
            .refs("messaging-groups"),
        touched("resolved_at"),
    ],
    verbs: ALL,
    order_by: "user_id, channel_type",
    refresh: false,
    about: "the direct-message chat of a user on a channel",
    hooks: Hooks::NONE,
};

/// `sessions` (created by the router, never by hand).
pub static SESSIONS: Resource = Resource {
    name: "sessions",
    table: "sessions",
    key: &["id"],
    id_prefix: Some("sess"),
    cols: &[
        gen_id("id"),
        text("agent_group_id").ro(),
        text("messaging_group_id").nullable().ro(),
        text("thread_id").nullable().ro(),
        text("agent_provider").nullable(),
        text("status"),
        text("container_status").ro(),
        text("last_active").nullable().ro(),
        created("created_at"),
    ],
    verbs: NO_CREATE,
    order_by: "created_at, id",
    refresh: false,
    about: "conversations of an agent group with a chat (created by the router)",
    hooks: Hooks::NONE,
};

/// `agent_destinations`.
pub static DESTINATIONS: Resource = Resource {
    name: "destinations",
    table: "agent_destinations",
    key: &["agent_group_id", "local_name"],
    id_prefix: None,
    cols: &[
        text("agent_group_id").required().once().refs("groups"),
        text("local_name").required().once(),
        text("target_type")
            .required()
            .choices(&["channel", "agent"]),
        // A messaging group id (channel) or an agent group id (agent): checked by the hook.
        text("target_id").required(),
        created("created_at"),
    ],
    verbs: ALL,
    order_by: "agent_group_id, local_name",
    refresh: true,
    about: "names an agent can send to: chats and other agents",
    hooks: Hooks {
        create: Some(hooks::create_destination),
        before_update: Some(hooks::update_destination),
        ..Hooks::NONE
    },
};

/// `pending_approvals` (created by the host).
pub static APPROVALS: Resource = Resource {
    name: "approvals",
    table: "pending_approvals",
    key: &["approval_id"],
    id_prefix: Some("appr"),
    cols: &[
        gen_id("approval_id"),
        text("session_id").nullable().ro(),
        text("request_id").nullable().ro(),
        text("action").ro(),
        json_object("payload").ro(),
        created("created_at"),
        text("agent_group_id").nullable().ro(),
        text("channel_type").nullable().ro(),
        text("platform_id").nullable().ro(),
        text("platform_message_id").nullable().ro(),
        text("expires_at").nullable(),
        text("status"),
        text("title").nullable().ro(),
        json_array("options_json").nullable().ro(),
    ],
    verbs: NO_CREATE,
    order_by: "created_at, approval_id",
    refresh: false,
    about: "actions waiting for an admin's approval",
    hooks: Hooks::NONE,
};

/// `unregistered_senders` (an audit: read-only), one row per chat as NanoClaw v2 keeps it.
pub static DROPPED_MESSAGES: Resource = Resource {
    name: "dropped-messages",
    table: "unregistered_senders",
    key: &["channel_type", "platform_id"],
    id_prefix: None,
    cols: &[
        text("channel_type").ro(),
        text("platform_id").ro(),
        text("user_id").nullable().ro(),
        text("sender_name").nullable().ro(),
        text("reason").ro(),
        text("messaging_group_id").nullable().ro(),
        text("agent_group_id").nullable().ro(),
        int("message_count").ro(),
        text("first_seen").ro(),
        text("last_seen").ro(),
    ],
    verbs: READ_ONLY,
    order_by: "last_seen DESC, channel_type, platform_id",
    refresh: false,
    about: "chats whose messages were dropped: the latest reason and sender, with a count (audit, read-only)",
    hooks: Hooks::NONE,
};

/// `pending_sender_approvals` (read-only: answered through the approver's card).
pub static SENDER_APPROVALS: Resource = Resource {
    name: "sender-approvals",
    table: "pending_sender_approvals",
    key: &["id"],
    id_prefix: None,
    cols: &[
        text("id").ro(),
        text("messaging_group_id").ro(),
        text("agent_group_id").ro(),
        text("sender_identity").ro(),
        text("sender_name").nullable().ro(),
        json_object("original_message").ro(),
        text("approver_user_id").ro(),
        text("created_at").ro(),
        text("title").ro(),
        json_array("options_json").ro(),
    ],
    verbs: READ_ONLY,
    order_by: "created_at, id",
    refresh: false,
    about: "unknown senders waiting for an approver (request_approval chats; read-only)",
    hooks: Hooks::NONE,
};

/// `pending_channel_approvals` (read-only: answered through the owner's card).
pub static CHANNEL_APPROVALS: Resource = Resource {
    name: "channel-approvals",
    table: "pending_channel_approvals",
    key: &["messaging_group_id"],
    id_prefix: None,
    cols: &[
        text("messaging_group_id").ro(),
        text("agent_group_id").ro(),
        json_object("original_message").ro(),
        text("approver_user_id").ro(),
        text("created_at").ro(),
        text("title").ro(),
        json_array("options_json").ro(),
    ],
    verbs: READ_ONLY,
    order_by: "created_at, messaging_group_id",
    refresh: false,
    about: "new chats waiting for the owner to connect or refuse them (read-only)",
    hooks: Hooks::NONE,
};

/// `container_configs`, in NanoClaw v2's shape plus our limits.
pub static CONTAINER_CONFIGS: Resource = Resource {
    name: "container-configs",
    table: "container_configs",
    key: &["agent_group_id"],
    id_prefix: None,
    cols: &[
        text("agent_group_id").required().once().refs("groups"),
        text("provider").nullable(),
        text("model").nullable(),
        text("effort").nullable(),
        text("image_tag").nullable(),
        text("assistant_name").nullable(),
        int("max_messages_per_prompt").nullable(),
        json("skills").default("\"all\""),
        json_object("mcp_servers").default("{}"),
        json_array("packages_apt").default("[]"),
        json_array("packages_npm").default("[]"),
        json_array("additional_mounts").default("[]"),
        touched("updated_at"),
        text("cli_scope")
            .default("group")
            .choices(&["disabled", "group", "global"]),
        json_object("limits").default("{}"),
        int("turn_stuck_ms").nullable(),
        int("turn_max_ms").nullable(),
    ],
    verbs: ALL,
    order_by: "agent_group_id",
    refresh: false,
    about: "per agent group container settings: provider, model, assistant name, packages, MCP servers, mounts, limits",
    hooks: Hooks::NONE,
};

/// Every resource, in help order.
pub static RESOURCES: &[&Resource] = &[
    &GROUPS,
    &MESSAGING_GROUPS,
    &WIRINGS,
    &USERS,
    &ROLES,
    &MEMBERS,
    &USER_DMS,
    &SESSIONS,
    &DESTINATIONS,
    &APPROVALS,
    &DROPPED_MESSAGES,
    &SENDER_APPROVALS,
    &CHANNEL_APPROVALS,
    &CONTAINER_CONFIGS,
];

/// Resource by CLI name (a few aliases accepted).
pub fn find(name: &str) -> Option<&'static Resource> {
    let name = match name {
        "group" | "agent-groups" => "groups",
        "messaging-group" | "chats" => "messaging-groups",
        "wiring" => "wirings",
        "user" => "users",
        "role" => "roles",
        "member" => "members",
        "session" => "sessions",
        "destination" => "destinations",
        "approval" => "approvals",
        "container-config" => "container-configs",
        other => other,
    };
    RESOURCES.iter().copied().find(|r| r.name == name)
}

/// `groups, messaging-groups, …`, for messages.
pub fn names() -> String {
    RESOURCES
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_consistent() {
        for r in RESOURCES {
            assert!(!r.key.is_empty(), "{}", r.name);
            for k in r.key {
                assert!(r.col(k).is_some(), "{}: key {k} not a column", r.name);
            }
            let gens = r.cols.iter().filter(|c| c.generated == Gen::Id).count();
            assert_eq!(gens > 0, r.id_prefix.is_some(), "{}", r.name);
            for c in r.cols {
                if let Some(t) = c.refs {
                    assert!(find(t).is_some(), "{}.{} refs {t}", r.name, c.name);
                }
                assert!(
                    c.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{}",
                    c.name
                );
            }
            assert_eq!(find(r.name).map(|x| x.name), Some(r.name));
            let can = |v| r.verbs.contains(&v);
            assert!(r.hooks.create.is_none() || can(Verb::Create), "{}", r.name);
            assert!(
                r.hooks.before_update.is_none() || can(Verb::Update),
                "{}",
                r.name
            );
            assert!(
                r.hooks.before_delete.is_none() || can(Verb::Delete),
                "{}",
                r.name
            );
        }
    }
}
