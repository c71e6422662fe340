//! At start: sends a killed host left in flight are asked of their channel before any retry.

use super::*;

/// At start: settles sends that were in flight when the host last stopped.
pub async fn reconcile_intents(host: &Arc<Host>) -> anyhow::Result<()> {
    let intents = host.db.call(|c| Ok(db::intents::all(c)?)).await?;
    for (sid, oid, ct) in intents {
        // One unreadable session must not keep the host from starting; its intent stays for
        // the next start (its passes cannot send while its files are unreadable either).
        if let Err(e) = reconcile_one(host, &sid, &oid, &ct).await {
            tracing::error!(session = %sid, id = %oid, error = %e, "could not reconcile an interrupted send");
        }
    }
    Ok(())
}

pub(super) async fn reconcile_one(
    host: &Arc<Host>,
    sid: &str,
    oid: &str,
    ct: &str,
) -> anyhow::Result<()> {
    let (sid, oid) = (sid.to_string(), oid.to_string());
    let sess = host
        .db
        .call({
            let sid = sid.clone();
            move |c| Ok(db::sessions::get(c, &sid)?)
        })
        .await?;
    if let Some(sess) = sess {
        let dir = host
            .home
            .session(&sess.agent_group_id, &sess.id)?
            .dir()
            .to_path_buf();
        let already: bool = {
            let (dir, oid) = (dir.clone(), oid.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
                let c = schema::open_rw(&dir.join("inbound.db"))?;
                Ok(c.query_row(
                    "SELECT EXISTS(SELECT 1 FROM delivered WHERE message_out_id=?1)",
                    [&oid],
                    |r| r.get(0),
                )?)
            })
            .await??
        };
        if !already {
            let verdict = match host.channels.get(ct) {
                Some(ch) => ch.reconcile(&oid).await,
                None => Reconciled::Unknown,
            };
            tracing::info!(session = %sid, id = %oid, ?verdict, "reconciled an interrupted send");
            let pmid = match verdict {
                Reconciled::NotSent => None,
                Reconciled::Sent(p) => Some(p),
                Reconciled::Unknown => {
                    tracing::warn!(id = %oid, "platform cannot tell whether the send happened; not re-sending (at most once)");
                    Some(None)
                }
            };
            if let Some(p) = pmid {
                let (dir, oid) = (dir.clone(), oid.clone());
                tokio::task::spawn_blocking(move || {
                    record_delivered(&dir, &oid, p.as_deref(), DeliveryStatus::Delivered)
                })
                .await??;
            }
        }
    }
    host.db
        .call(move |c| Ok(db::intents::end(c, &sid, &oid)?))
        .await?;
    Ok(())
}
