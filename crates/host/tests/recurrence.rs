//! A recurring message re-arms at the right next time in a non-UTC timezone, from its scheduled
//! time, in the same series, through the real runner.

mod support;

use std::time::Duration;

use chrono::{Datelike, TimeZone, Utc};
use chrono_tz::America::New_York;
use nanoclaw_host::channels::InboundEvent;
use nanoclaw_host::sessions::{write_inbound, NewInbound};
use rusqlite::Connection;
use support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_task_rearms_at_nine_new_york_time() {
    let (th, h) = support::host(&[("TZ", "America/New_York")]).await;
    let ev = InboundEvent {
        sender_name: "me".into(),
        ..support::message("cli", "local", "local", "hello")
    };
    let out = h.route(ev).await.unwrap();
    let dir = support::session_dir(&th, &out.accepted[0].session_id);

    // Scheduled at the most recent 09:00 in New York (due now).
    let now_ny = Utc::now().with_timezone(&New_York);
    let mut sched = New_York
        .with_ymd_and_hms(
            now_ny.year_ce().1 as i32,
            now_ny.month0() + 1,
            now_ny.day0() + 1,
            9,
            0,
            0,
        )
        .unwrap();
    if sched > now_ny {
        sched -= chrono::Duration::days(1);
    }
    let expected = {
        let d = sched.date_naive() + chrono::Duration::days(1);
        New_York
            .from_local_datetime(&d.and_hms_opt(9, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let mut row = NewInbound::new("task", r#"{"prompt":"daily report"}"#.into());
    row.recurrence = Some("0 9 * * *".into());
    row.process_after = Some(nanoclaw_protocol::time::fmt(sched.with_timezone(&Utc)));
    row.channel_type = Some("cli".into());
    row.platform_id = Some("local".into());
    let first = row.id.clone();
    let d = dir.clone();
    tokio::task::spawn_blocking(move || write_inbound(&d, &[row]))
        .await
        .unwrap()
        .unwrap();
    h.wake(&out.accepted[0].session_id).await;

    let next = eventually(Duration::from_secs(20), move || {
        let c = Connection::open(dir.join("inbound.db")).ok()?;
        c.query_row(
            "SELECT process_after, status FROM messages_in WHERE series_id = ?1 AND id != ?1",
            [&first],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .ok()
    })
    .await
    .expect("next occurrence written");
    assert_eq!(next.0, nanoclaw_protocol::time::fmt(expected));
    assert_eq!(next.1, "pending");
    h.shutdown().await;
}
