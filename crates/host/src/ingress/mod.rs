//! Ingress (DESIGN §6): an inbound event is judged in the order a message is, each step in
//! its own module, so nothing consults a question or a session for a sender not admitted:
//!
//! 1. [`admit`]: the size limit, the chat (wired, denied, unknown), pairing codes, the
//!    unknown-sender policy.
//! 2. [`answers`]: a reply picking an option of the chat's open question is its answer.
//! 3. [`engage`]: each wiring's engage rule and sender scope → the sessions to write.
//! 4. [`write`]: the rows in each session's inbound.db, and the wake.

mod admit;
mod answers;
mod engage;
mod write;

use std::sync::Arc;

use rusqlite::Connection;

use crate::channels::InboundEvent;
use crate::db::{self, unregistered::Reason};
use crate::Host;

use admit::PAIRED;
pub use engage::Router;

/// One row ingress wrote.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Session.
    pub session_id: String,
    /// `messages_in.id`.
    pub message_id: String,
    /// Whether it wakes the agent.
    pub trigger: bool,
}

/// Result of routing one event.
#[derive(Debug, Default, Clone)]
pub struct RouteOutcome {
    /// Rows written (fan-out: one per engaged wiring).
    pub accepted: Vec<Accepted>,
    /// Why nothing engaged, when that is worth telling the sender.
    pub dropped: Option<String>,
    /// Handled by the host itself (e.g. an approval decided): what to tell the sender.
    pub notice: Option<String>,
}

/// Routes one inbound event: judges it, writes it and wakes the sessions it engages.
pub async fn route(host: &Arc<Host>, ev: InboundEvent) -> anyhow::Result<RouteOutcome> {
    if let Some(out) = admit::too_large(host, &ev).await? {
        return Ok(out);
    }
    let h = host.clone();
    let ev2 = ev.clone();
    let (plans, dropped) = match host.db.call(move |c| plan(&h, c, &ev2, true)).await? {
        Planned::Route(plans, dropped) => (plans, dropped),
        Planned::Answer(q, index) => {
            if let Some(out) = answers::answer(host, &ev, *q, index).await? {
                return Ok(out);
            }
            let (h, ev2) = (host.clone(), ev.clone());
            match host.db.call(move |c| plan(&h, c, &ev2, false)).await? {
                Planned::Route(plans, dropped) => (plans, dropped),
                Planned::Answer(..) => unreachable!("plan without answers never answers"),
            }
        }
    };
    if dropped.as_deref() == Some(PAIRED) {
        host.notify(
            &ev.channel_type,
            &ev.platform_id,
            ev.thread_id.as_deref(),
            "Paired! You are now the owner, and this chat talks to your main agent.",
        )
        .await;
    }
    write::write(host, &ev, plans, dropped).await
}

/// What `plan` decided.
enum Planned {
    /// Rows to write (and why nothing engaged, if so).
    Route(Vec<engage::Plan>, Option<String>),
    /// An admitted sender's reply that picks an option of the chat's open question.
    Answer(Box<crate::access::questions::Open>, usize),
}

/// Steps 1–3, under the central DB lock (atomic session creation). `answers`: whether a reply
/// to an open question is taken as its answer (false once the answer was refused).
fn plan(
    host: &Host,
    c: &mut Connection,
    ev: &InboundEvent,
    answers: bool,
) -> anyhow::Result<Planned> {
    let admitted = match admit::admit(c, ev)? {
        Ok(a) => a,
        Err(dropped) => return Ok(Planned::Route(vec![], dropped)),
    };
    if answers {
        if let Some((q, index)) = answers::detect(c, ev)? {
            return Ok(Planned::Answer(Box::new(q), index));
        }
    }
    Ok(Planned::Route(engage::plans(host, c, ev, &admitted)?, None))
}

/// Records an event that was given up on after [`ROUTE_ATTEMPTS`] failed routings (the audit of
/// `ctl dropped-messages`), so a channel can confirm it and serve the next one.
pub async fn give_up(host: &Arc<Host>, ev: &InboundEvent, error: &anyhow::Error) {
    let (ct, pid, user, name) = (
        ev.channel_type.clone(),
        ev.platform_id.clone(),
        user_id(ev),
        ev.sender_name.clone(),
    );
    tracing::warn!(channel = %ct, platform = %pid, error = %error, "update could not be routed; recorded and skipped");
    let r = host
        .db
        .call(move |c| {
            Ok(db::unregistered::record(
                c,
                &ct,
                &pid,
                Some(&user),
                Some(&name),
                Reason::RouteFailed,
                None,
                None,
            )?)
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "could not record a skipped update");
    }
}

/// Routings of one platform update before it is recorded and skipped: a failure that repeats
/// (one session's broken files) must not hold up every other chat behind it.
pub const ROUTE_ATTEMPTS: u32 = 3;

/// A row id derived from the platform's message id, so a redelivered message maps to the same row.
fn stable_id(channel: &str, platform_id: &str, message: &str) -> String {
    let h = nanoclaw_protocol::fnv1a(format!("{channel}\0{platform_id}\0{message}").as_bytes());
    format!("msg-{channel}-{h:016x}")
}

fn user_id(ev: &InboundEvent) -> String {
    format!("{}:{}", ev.channel_type, ev.sender_handle)
}
