//! The NanoClaw host: receives platform messages, routes them into per-session SQLite files,
//! runs each session's agent-runner, and delivers its replies. See docs/ARCHITECTURE.md.
//!
//! # Layout
//!
//! The folders follow a message through the host:
//!
//! - [`channels`]: the platform adapters (terminal, Telegram…) behind one narrow interface,
//!   [`channels::ChannelContext`]; they turn platform updates into [`channels::InboundEvent`]s
//!   and send outbound items.
//! - [`ingress`]: judges an inbound event in order — size, chat and sender policy, engage
//!   rules, answers to open questions — and writes it into the session's `inbound.db`, waking
//!   the session.
//! - [`sessions`]: session folders, their projections and the host's writes to `inbound.db`
//!   (the single writer of that file).
//! - [`runners`]: starts and stops each session's agent-runner on a runtime
//!   (`process` or Docker), with its mounts, skills, image and the credential proxy.
//! - [`delivery`]: egress — reads a session's `outbound.db`, checks the ACL, sends through the
//!   channel exactly once, routes agent-to-agent rows, reconciles after a crash.
//! - [`sweep`]: the periodic pass over every session (stuck turns, due work, idle runners),
//!   scheduled tasks and the daily retention pass.
//! - [`access`]: who may do what — the ACL of outbound rows, approvals, questions, pairing.
//! - [`actions`]: the agent's system requests (tasks, wirings, packages…), executed or parked
//!   for approval.
//! - [`control`]: `nanoclaw ctl`, the admin API over a private socket.
//! - Infrastructure: [`host`] (the [`Host`] every stage shares: lifecycle, events, timers,
//!   notices), [`db`] (the central DB), [`config`], [`logging`], [`perms`], [`failpoint`].

pub mod access;
pub(crate) mod actions;
pub mod channels;
pub mod config;
pub mod control;
pub mod db;
pub(crate) mod delivery;
pub(crate) mod failpoint;
pub mod host;
pub(crate) mod ingress;
pub mod logging;
pub mod perms;
pub mod runners;
pub mod sessions;
pub mod sweep;

pub use failpoint::{failpoint, failpoint_active};
pub use host::{foreign_host, host_running, Host, HostEvent};
