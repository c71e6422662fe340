//! The hostile runner: an agent that controls everything it can write (its session folder, its
//! outbound.db, its inbox and outbox, the rows and ids it sends) attacks the host, in the
//! process runtime and in the Docker runtime. Each test plays one attack and checks that
//! nothing outside the session was read, written or deleted, that the host stayed bounded and
//! kept serving other sessions, and that the attack left an audit line (DESIGN §3, §11.3).
//!
//! One module per area; `support` holds the homes, the scripted fake model and the checks.

mod access;
mod containers;
mod db;
mod fs;
mod sandbox;
mod support;
