//! The write phase of a pass: one transaction on inbound.db records acks, fates and
//! re-armed recurrences.

use super::*;

/// A row's fate, recorded in `delivered` by the pass's single write transaction.
pub(super) struct Fate {
    pub(super) out_id: String,
    pub(super) status: DeliveryStatus,
    pub(super) platform_message_id: Option<String>,
    /// A send went through (its intent is dropped once the fate is on disk).
    pub(super) sent: bool,
}

/// What the write transaction decided.
pub(super) struct Applied {
    pub(super) finished: Vec<(String, MessageStatus)>,
    pub(super) exhausted: Vec<(String, Origin)>,
    pub(super) outcome: PassOutcome,
}

/// Applies a pass in one transaction: ack sync, retries, recurrences, delivery fates.
pub(super) fn write_phase(
    dir: &std::path::Path,
    reads: Reads,
    fates: &[Fate],
    alive: bool,
    started_at: Option<&str>,
    tz: chrono_tz::Tz,
    retry_base: Duration,
) -> anyhow::Result<Applied> {
    let _w = crate::sessions::write_lock(dir);
    // inbound.db alone: outbound.db's figures came from the read phase, and an attached file
    // would be read-locked for the whole write transaction (BEGIN IMMEDIATE starts a read
    // transaction on every attached database), holding up the runner's commits.
    let mut c = schema::open_rw(&dir.join("inbound.db"))?;
    let now = Utc::now();
    let now_s = time::fmt(now);
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;

    // 1. processing_ack → messages_in.
    let mut finished = Vec::new();
    for (id, status, changed) in reads.acks {
        let take = match status {
            MessageStatus::Completed | MessageStatus::Failed => true,
            // A 'processing' ack counts only if the live runner wrote it: a dead runner's ack
            // would otherwise flip a row reset for retry back to 'processing'.
            MessageStatus::Processing => alive && started_at.is_some_and(|s| changed.as_str() >= s),
            MessageStatus::Pending | MessageStatus::Paused => false,
        };
        if take {
            tx.execute(
                "UPDATE main.messages_in SET status=?2 WHERE id=?1",
                params![id, status],
            )?;
            if status != MessageStatus::Processing {
                finished.push((id, status));
            }
        }
    }

    // 2. Work of a dead runner goes back to pending with backoff, or fails after MAX_TRIES.
    let mut exhausted = Vec::new();
    for (id, tries, origin) in reads.stuck {
        // Its runner finished it before dying (the reply and the ack are one transaction):
        // retrying would answer it twice (seen in the chaos test once runners lived a few
        // milliseconds longer than their host, inside bubblewrap).
        if finished.iter().any(|(f, _)| f == &id) {
            continue;
        }
        let tries = tries + 1;
        if tries >= MAX_TRIES {
            tx.execute(
                "UPDATE main.messages_in SET status='failed', tries=?2 WHERE id=?1",
                params![id, tries],
            )?;
            tracing::warn!(id = %id, tries, "message failed after its last try");
            exhausted.push((id, origin));
        } else {
            let backoff = retry_base * 2u32.pow((tries - 1) as u32);
            let after = time::fmt(now + chrono::Duration::from_std(backoff)?);
            tx.execute(
                "UPDATE main.messages_in SET status='pending', tries=?2, process_after=?3 WHERE id=?1",
                params![id, tries, after],
            )?;
            tracing::info!(id = %id, tries, retry_at = %after, "runner died mid-turn; message will be retried");
        }
    }

    // 3. Recurring rows re-arm from their scheduled time.
    let recurring: Vec<Recurring> = {
        let mut st = tx.prepare_cached(
            "SELECT id, recurrence, process_after, timestamp, series_id FROM main.messages_in
             WHERE status IN ('completed', 'failed') AND recurrence IS NOT NULL",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Recurring {
                id: r.get(0)?,
                cron: r.get(1)?,
                process_after: r.get(2)?,
                timestamp: r.get(3)?,
                series_id: r.get(4)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for r in recurring {
        let scheduled = r
            .process_after
            .as_deref()
            .or(Some(r.timestamp.as_str()))
            .and_then(time::parse)
            .unwrap_or(now);
        match crate::sweep::scheduling::next_occurrence(&r.cron, tz, scheduled, now) {
            Ok(next) => {
                let max =
                    nanoclaw_protocol::seq::max_seq(&tx, "main.messages_in")?.max(reads.max_out);
                let seq = nanoclaw_protocol::seq::next(nanoclaw_protocol::seq::Side::Host, max);
                tx.execute(
                    "INSERT INTO main.messages_in(id, seq, kind, timestamp, status, process_after, recurrence,
                       series_id, tries, trigger, platform_id, channel_type, thread_id, content, source_session_id, on_wake)
                     SELECT ?2, ?3, kind, ?4, 'pending', ?5, recurrence, COALESCE(series_id, id), 0, trigger,
                       platform_id, channel_type, thread_id, content, source_session_id, on_wake
                     FROM main.messages_in WHERE id=?1",
                    params![r.id, nanoclaw_protocol::new_id("msg"), seq, now_s, time::fmt(next)],
                )?;
                let series = r.series_id.as_deref().unwrap_or(&r.id);
                tracing::info!(series, next = %time::fmt(next), "recurring message re-armed");
            }
            Err(e) => tracing::warn!(id = %r.id, error = %e, "recurrence dropped"),
        }
        tx.execute(
            "UPDATE main.messages_in SET recurrence=NULL WHERE id=?1",
            [&r.id],
        )?;
    }

    // 4. Fates of this pass's outbound rows.
    for f in fates {
        tx.execute(
            "INSERT OR IGNORE INTO main.delivered(message_out_id, platform_message_id, status, delivered_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![f.out_id, f.platform_message_id, f.status, now_s],
        )?;
    }

    // 4b. Rows refused at read time, recorded with their ids' exact bytes.
    for r in &reads.refused {
        tx.execute(
            "INSERT OR IGNORE INTO main.delivered(message_out_id, platform_message_id, status, delivered_at)
             VALUES (?1, NULL, 'failed', ?2)",
            params![r.id, now_s],
        )?;
    }

    // 5. What is left to do, for scheduling.
    let due_now: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM main.messages_in WHERE status='pending' AND trigger=1
           AND (process_after IS NULL OR process_after <= ?1))",
        [&now_s],
        |r| r.get(0),
    )?;
    let next_in: Option<String> = tx
        .query_row(
            "SELECT MIN(process_after) FROM main.messages_in WHERE status='pending' AND process_after > ?1",
            [&now_s],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let busy: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM main.messages_in WHERE status='processing')",
        [],
        |r| r.get(0),
    )?;
    tx.commit()?;
    let next_due = [next_in, reads.next_out]
        .into_iter()
        .flatten()
        .filter_map(|s| time::parse(&s))
        .chain(reads.more.then_some(now))
        .min();
    Ok(Applied {
        finished,
        exhausted,
        outcome: PassOutcome {
            due_now,
            next_due,
            busy,
        },
    })
}

/// Records one row's fate at once (reconciliation at start, outside any pass).
pub(super) fn record_delivered(
    dir: &std::path::Path,
    out_id: &str,
    platform_msg: Option<&str>,
    status: DeliveryStatus,
) -> anyhow::Result<()> {
    let _w = crate::sessions::write_lock(dir);
    let c = schema::open_rw(&dir.join("inbound.db"))?;
    c.execute(
        "INSERT OR IGNORE INTO delivered(message_out_id, platform_message_id, status, delivered_at) VALUES (?1, ?2, ?3, ?4)",
        params![out_id, platform_msg, status, time::now()],
    )?;
    Ok(())
}
