//! Telegram end to end: the real `nanoclaw run` against the testkit's fake Bot API.

use std::time::{Duration, Instant};

use nanoclaw_testkit::fake_telegram::{FakeTelegram, BOT_USERNAME};
use nanoclaw_testkit::{eventually, HostProc, TestHome};
use serde_json::{json, Value};

const TOKEN: &str = "123456:TEST-token";

fn setup() -> (FakeTelegram, TestHome) {
    let fake = FakeTelegram::start(TOKEN);
    let home = TestHome::new().telegram(&fake);
    (fake, home)
}

fn ctl(home: &TestHome, args: &[&str]) -> String {
    home.ctl(args)
}

/// Wires a Telegram chat to the main agent (unknown senders allowed); returns the messaging
/// group id.
fn wire(home: &TestHome, chat: i64, is_group: bool, engage: &str, mode: &str) -> String {
    home.wire_telegram(chat, is_group, "public", engage, mode)
}

fn replies_to(fake: &FakeTelegram, chat: i64) -> Vec<Value> {
    fake.replies_to(chat)
}

fn wait_replies(fake: &FakeTelegram, chat: i64, n: usize) -> Vec<Value> {
    fake.wait_replies(chat, n)
}

fn start(home: &TestHome) -> HostProc {
    home.start_host(&[])
}

#[test]
fn wired_dm_gets_a_reply_and_a_typing_indicator_unknown_chat_is_dropped() {
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "hello bot", None);
    let r = wait_replies(&fake, 555, 1);
    assert_eq!(r[0]["text"], "echo: hello bot");
    assert!(fake
        .calls("sendChatAction")
        .iter()
        .any(|c| c["chat_id"] == 555 && c["action"] == "typing"));
    // The sender became a user row `telegram:<id>`.
    let n: i64 = home
        .central()
        .query_row(
            "SELECT COUNT(*) FROM users WHERE id='telegram:42'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);

    fake.message(999, "group", 7, "anyone here?", None);
    let dropped = eventually(Duration::from_secs(10), || {
        let out = ctl(&home, &["dropped-messages", "list", "--json"]);
        out.contains("telegram:999").then_some(out)
    });
    assert!(dropped.is_some(), "unknown chat not in dropped-messages");
    assert!(replies_to(&fake, 999).is_empty());
}

#[test]
fn forum_topics_are_sessions_and_mentions_gate_groups() {
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, -100777, true, "pattern", "per-thread");
    fake.message(-100777, "supergroup", 42, "in topic 11", Some(11));
    fake.message(-100777, "supergroup", 42, "in topic 12", Some(12));
    let r = wait_replies(&fake, -100777, 2);
    let threads: std::collections::HashSet<i64> = r
        .iter()
        .filter_map(|m| m["message_thread_id"].as_i64())
        .collect();
    assert_eq!(
        threads,
        [11, 12].into_iter().collect(),
        "replies go back to their topic"
    );
    let sessions: i64 = home
        .central()
        .query_row(
            "SELECT COUNT(DISTINCT thread_id) FROM sessions WHERE thread_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sessions, 2, "one session per topic");

    wire(&home, -100888, true, "mention", "shared");
    fake.message(-100888, "supergroup", 42, "just chatting", None);
    fake.message(
        -100888,
        "supergroup",
        42,
        &format!("@{BOT_USERNAME} are you there?"),
        None,
    );
    let r = wait_replies(&fake, -100888, 1);
    // At rest, a reply to the non-mention could no longer come: count then.
    eventually(Duration::from_secs(20), || home.at_rest().then_some(())).expect("at rest");
    let r2 = replies_to(&fake, -100888);
    assert_eq!(r2.len(), 1, "only the mention is answered: {r2:?}");
    assert!(r[0]["text"].as_str().unwrap().contains("are you there?"));
}

#[test]
fn restart_loses_and_repeats_no_update_and_429_is_honoured() {
    let (fake, home) = setup();
    let host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "one", None);
    wait_replies(&fake, 555, 1);
    host.stop();
    // Arrive while the host is down.
    fake.message(555, "private", 42, "two", None);
    fake.message(555, "private", 42, "three", None);
    fake.fail_with_429("sendMessage", 1, 1);
    let t0 = Instant::now();
    let _host = start(&home);
    let r = wait_replies(&fake, 555, 3);
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "retry_after was not honoured"
    );
    // A repeated update would be a row of its own (or a second reply): wait until every update
    // is confirmed and every session at rest, then count.
    eventually(Duration::from_secs(20), || {
        (fake.unconfirmed() == 0 && home.at_rest()).then_some(())
    })
    .expect("updates confirmed and sessions at rest");
    let texts: Vec<String> = replies_to(&fake, 555)
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 3, "no update repeated: {texts:?}");
    for t in ["echo: one", "echo: two", "echo: three"] {
        assert!(
            texts.iter().any(|x| x == t) || r.iter().any(|m| m["text"] == t),
            "{t} missing: {texts:?}"
        );
    }
    assert_eq!(
        fake.unconfirmed(),
        0,
        "every update confirmed by the offset"
    );
    let offset: String = home
        .central()
        .query_row(
            "SELECT value FROM channel_state WHERE channel_type='telegram' AND key='offset'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(offset, "4");
}

#[test]
fn a_webhook_left_on_the_bot_is_removed_so_polling_works() {
    let (fake, home) = setup();
    fake.set_webhook("https://old-install.example/hook");
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "still there?", None);
    let r = wait_replies(&fake, 555, 1);
    assert_eq!(r[0]["text"], "echo: still there?");
    assert_eq!(fake.webhook(), None);
}

#[test]
fn a_wrong_token_is_one_clear_error_at_start() {
    let fake = FakeTelegram::start(TOKEN);
    let home = TestHome::new()
        .env("TELEGRAM_BOT_TOKEN", "999:wrong")
        .env("TELEGRAM_API_URL", fake.url());
    let o = home.cmd(&["run"]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: Telegram rejected the bot token")
            && last.contains("TELEGRAM_BOT_TOKEN"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn pairing_code_makes_the_sender_owner_and_wires_the_dm() {
    let (fake, home) = setup();
    let _host = start(&home);
    let o = home.run(&["pair", "telegram"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let code = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(code.len(), 14, "XXXX-XXXX-XXXX: {code}");
    // A wrong code in a DM, and the right code in a group, do nothing.
    fake.message(321, "private", 77, "000000x", None);
    fake.message(-100321, "group", 78, &code, None);
    fake.message(321, "private", 77, &code, None);
    let r = wait_replies(&fake, 321, 1);
    assert!(
        r[0]["text"].as_str().unwrap().starts_with("Paired!"),
        "{r:?}"
    );
    let role: String = home
        .central()
        .query_row(
            "SELECT role FROM user_roles WHERE user_id='telegram:77'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(role, "owner");
    let other: i64 = home
        .central()
        .query_row(
            "SELECT COUNT(*) FROM user_roles WHERE user_id='telegram:78'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(other, 0);
    fake.message(321, "private", 77, "hello", None);
    let r = wait_replies(&fake, 321, 2);
    assert_eq!(r[1]["text"], "echo: hello");
    // The code is spent.
    // Refused codes fall through to routing: the unwired chat's drop record is the barrier
    // (a pairing would have replied instead of being recorded).
    fake.message(654, "private", 99, &code, None);
    eventually(Duration::from_secs(10), || {
        ctl(&home, &["dropped-messages", "list", "--json"])
            .contains("telegram:654")
            .then_some(())
    })
    .expect("the spent code dropped");
    assert!(replies_to(&fake, 654).is_empty());
}

#[test]
fn edits_and_reactions_target_the_right_telegram_messages() {
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "hello", None);
    wait_replies(&fake, 555, 1);
    let dir = home.session_dirs().remove(0);
    let (user_seq, reply_seq): (i64, i64) = {
        let i = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
        let o = rusqlite::Connection::open(dir.join("outbound.db")).unwrap();
        (
            i.query_row("SELECT seq FROM messages_in WHERE kind='chat'", [], |r| {
                r.get(0)
            })
            .unwrap(),
            o.query_row("SELECT seq FROM messages_out", [], |r| r.get(0))
                .unwrap(),
        )
    };
    // The agent edits its reply and reacts to the user's message (rows as the runner writes them).
    for (i, content) in [
        serde_json::json!({"operation": "edit", "messageId": reply_seq, "text": "edited"}),
        serde_json::json!({"operation": "reaction", "messageId": user_seq, "emoji": "👍"}),
    ]
    .iter()
    .enumerate()
    {
        nanoclaw_testkit::runner_insert(
            &dir,
            &format!("out-op-{i}"),
            "telegram",
            "telegram:555",
            content,
            &[],
        );
    }
    let edit = eventually(Duration::from_secs(10), || {
        fake.calls("editMessageText").into_iter().next()
    })
    .expect("edit sent");
    assert_eq!(edit["text"], "edited");
    assert_eq!(edit["chat_id"], 555);
    assert_eq!(
        edit["message_id"], 102,
        "the bot's own reply (the user's message was 101)"
    );
    let reaction = eventually(Duration::from_secs(10), || {
        fake.calls("setMessageReaction").into_iter().next()
    })
    .expect("reaction sent");
    assert_eq!(reaction["reaction"][0]["emoji"], "👍");
    assert_eq!(reaction["message_id"], 101, "the user's Telegram message");
}

/// Status of an outbound row in `delivered`, once it has one.
fn fate_of(dir: &std::path::Path, id: &str) -> Option<String> {
    rusqlite::Connection::open(dir.join("inbound.db"))
        .ok()?
        .query_row(
            "SELECT status FROM delivered WHERE message_out_id = ?1",
            [id],
            |r| r.get(0),
        )
        .ok()
}

#[test]
fn edits_and_reactions_follow_telegram_rules() {
    let fake = FakeTelegram::start(TOKEN);
    // Slow retries: a refusal that was retried would take a minute to fail.
    let home = TestHome::new()
        .telegram(&fake)
        .env("NANOCLAW_SEND_RETRY_BASE_MS", "4000");
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "hello", None);
    let reply = wait_replies(&fake, 555, 1).remove(0);
    let reply_mid = reply["_message_id"].as_i64().unwrap();
    let dir = home.session_dirs().remove(0);
    let seq_of = |table: &str, db: &str| -> i64 {
        rusqlite::Connection::open(dir.join(db))
            .unwrap()
            .query_row(&format!("SELECT MIN(seq) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let (user_seq, reply_seq) = (
        seq_of("messages_in", "inbound.db"),
        seq_of("messages_out", "outbound.db"),
    );
    let settled = |id: &str| {
        eventually(Duration::from_secs(3), || fate_of(&dir, id))
            .unwrap_or_else(|| panic!("{id} not settled in 3 s"))
    };

    // The same text again: Telegram says "not modified", which is success.
    let same = reply["text"].as_str().unwrap().to_string();
    let (_, id) = runner_writes(
        &home,
        json!({"operation": "edit", "messageId": reply_seq, "text": same}),
    );
    assert_eq!(settled(&id), "delivered");

    // "❤️" as models write it reaches Telegram as "❤".
    let (_, id) = runner_writes(
        &home,
        json!({"operation": "reaction", "messageId": user_seq, "emoji": "❤️"}),
    );
    assert_eq!(settled(&id), "delivered");
    assert_eq!(
        fake.calls("setMessageReaction")[0]["reaction"][0]["emoji"],
        "❤"
    );

    // An emoji Telegram refuses fails at once (no retries) and the agent learns why.
    let (_, id) = runner_writes(
        &home,
        json!({"operation": "reaction", "messageId": user_seq, "emoji": "✅"}),
    );
    assert_eq!(settled(&id), "failed");
    let note = system_rows(&dir)
        .into_iter()
        .find(|n| n["result"]["messageId"] == id.as_str())
        .expect("agent told");
    assert!(
        note["result"]["error"]
            .as_str()
            .unwrap()
            .contains("does not allow ✅"),
        "{note}"
    );

    // Too old to edit: the new text arrives as a new message instead of being lost.
    fake.freeze(reply_mid);
    let (_, id) = runner_writes(
        &home,
        json!({"operation": "edit", "messageId": reply_seq, "text": "corrected"}),
    );
    assert_eq!(settled(&id), "delivered");
    assert!(replies_to(&fake, 555)
        .iter()
        .any(|m| m["text"] == "corrected"));
}

/// Plays the runner: writes a messages_out row into the chat's only session. The session's
/// real runner may be writing at the same moment (a turn the test's last message started), so
/// the seq is taken inside the insert's own IMMEDIATE transaction, as the runner takes it.
fn runner_writes(home: &TestHome, content: Value) -> (std::path::PathBuf, String) {
    let dir = home.session_dirs().into_iter().next().expect("a session");
    let id = nanoclaw_protocol::new_id("out-test");
    nanoclaw_testkit::runner_insert(&dir, &id, "telegram", "telegram:555", &content, &[]);
    (dir, id)
}

/// Contents of a session's messages_in rows matching `filter` (SQL).
fn inbound_contents(dir: &std::path::Path, filter: &str) -> Vec<Value> {
    let c = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let mut st = c
        .prepare(&format!("SELECT content FROM messages_in WHERE {filter}"))
        .unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|s| serde_json::from_str(&s.unwrap()).unwrap())
        .collect()
}

fn answer_rows(dir: &std::path::Path) -> Vec<Value> {
    inbound_contents(dir, "json_extract(content, '$.questionId') IS NOT NULL")
}

#[test]
fn question_card_round_trip_through_a_button_press() {
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "hi", None);
    wait_replies(&fake, 555, 1);
    let (dir, _) = runner_writes(
        &home,
        json!({"operation": "ask_question", "questionId": "q-drink", "title": "Drinks", "question": "Tea or coffee?",
            "options": ["Tea", {"label": "Coffee", "selectedLabel": "☕ Coffee it is", "value": "coffee"}]}),
    );
    let card = eventually(Duration::from_secs(10), || {
        replies_to(&fake, 555)
            .into_iter()
            .find(|m| m["reply_markup"]["inline_keyboard"].is_array())
    })
    .expect("question sent with an inline keyboard");
    let buttons = card["reply_markup"]["inline_keyboard"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(buttons.len(), 2);
    assert_eq!(buttons[1][0]["text"], "Coffee");
    let data = buttons[1][0]["callback_data"].as_str().unwrap().to_string();
    assert!(data.len() <= 64);
    let mid = card["_message_id"].as_i64().unwrap();
    // Persisted in v2's normalised shape, so a v2 install reads it (and we read v2's).
    // The record is written just after the send: wait for it.
    let stored: String = eventually(Duration::from_secs(10), || {
        home.central()
            .query_row(
                "SELECT q.options_json FROM pending_questions q JOIN question_cards c USING (question_id)
                 WHERE c.agent_question_id = 'q-drink'",
                [],
                |r| r.get(0),
            )
            .ok()
    })
    .expect("question recorded under the agent's id");
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap()[1],
        json!({"label": "Coffee", "selectedLabel": "☕ Coffee it is", "value": "coffee"})
    );
    fake.press(555, 42, mid, &data);
    let answers = eventually(Duration::from_secs(10), || {
        let a = answer_rows(&dir);
        (!a.is_empty()).then_some(a)
    })
    .expect("the answer reached the asking session");
    assert_eq!(answers[0]["questionId"], "q-drink");
    assert_eq!(answers[0]["selectedOption"], "coffee", "the option's value");
    assert_eq!(answers[0]["senderId"], "telegram:42");
    let edit = eventually(Duration::from_secs(10), || {
        fake.calls("editMessageText")
            .into_iter()
            .find(|e| e["message_id"] == mid)
    })
    .expect("card edited to show the choice");
    assert!(edit["text"].as_str().unwrap().contains("☕ Coffee it is"));
    assert_eq!(edit["reply_markup"]["inline_keyboard"], json!([]));
    // The host edits the card before it answers the press: wait for the fake's record of the
    // answer itself, not for the edit that precedes it.
    eventually(Duration::from_secs(10), || {
        fake.calls("answerCallbackQuery")
            .iter()
            .any(|c| c["text"] == "✓ Coffee")
            .then_some(())
    })
    .expect("press answered with the choice");
    // A second press is harmless: no second answer.
    fake.press(555, 42, mid, &data);
    eventually(Duration::from_secs(10), || {
        (fake.calls("answerCallbackQuery").len() >= 2).then_some(())
    })
    .expect("second press answered");
    assert_eq!(answer_rows(&dir).len(), 1);
}

/// The system rows the host wrote into a session (what the agent is told).
fn system_rows(dir: &std::path::Path) -> Vec<Value> {
    inbound_contents(dir, "kind = 'system'")
}

#[test]
fn a_card_shows_its_links_as_url_buttons_and_an_empty_card_is_dropped_and_reported() {
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "hi", None);
    wait_replies(&fake, 555, 1);
    let (dir, _) = runner_writes(
        &home,
        json!({"card": {"title": "Daily", "description": "Your <plate> today", "children": ["• one"],
            "actions": [{"label": "Calendar", "url": "https://cal.example/today"}, {"label": "No link"}]},
            "fallbackText": "Daily: your plate"}),
    );
    let card = eventually(Duration::from_secs(10), || {
        replies_to(&fake, 555)
            .into_iter()
            .find(|m| m["reply_markup"].is_object())
    })
    .expect("card sent");
    assert_eq!(card["parse_mode"], "HTML");
    assert_eq!(
        card["text"],
        "<b>Daily</b>\n\nYour &lt;plate&gt; today\n\n• one"
    );
    assert_eq!(
        card["reply_markup"]["inline_keyboard"],
        json!([[{"text": "Calendar", "url": "https://cal.example/today"}]]),
        "only link actions become buttons"
    );
    // Nothing to show: an audited drop, and the agent is told instead of the reply vanishing.
    let (_, bad) = runner_writes(&home, json!({"card": {"oops": true}}));
    let note = eventually(Duration::from_secs(10), || {
        system_rows(&dir)
            .into_iter()
            .find(|n| n["result"]["messageId"] == bad.as_str())
    })
    .expect("agent told about the dropped card");
    assert_eq!(note["action"], "delivery_failed");
    assert!(note["result"]["error"]
        .as_str()
        .unwrap()
        .contains("empty card"));
    // The host tells the agent before it records the row's fate: wait for the record.
    let status = eventually(Duration::from_secs(10), || fate_of(&dir, &bad))
        .expect("the dropped card's fate recorded");
    assert_eq!(status, "failed");
    let out = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    // Context for the next turn, not a turn of its own: a woken agent would answer into the
    // same route and could loop.
    let trigger: i64 = out
        .query_row(
            "SELECT trigger FROM messages_in WHERE kind = 'system' AND content LIKE '%delivery_failed%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(trigger, 0);
    assert_eq!(
        replies_to(&fake, 555).len(),
        2,
        "nothing sent for the empty card"
    );
}

#[test]
fn numbered_text_reply_answers_a_question() {
    // The default TTL: with a short one the question could expire before a loaded host routes
    // the reply (the expiry has its own test below).
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "hi", None);
    wait_replies(&fake, 555, 1);
    // Answered by a numbered text reply (what channels without buttons rely on).
    let (dir, _) = runner_writes(
        &home,
        json!({"operation": "ask_question", "questionId": "q-1", "title": "Pick", "question": "Which?", "options": ["Red", "Blue"]}),
    );
    eventually(Duration::from_secs(10), || {
        replies_to(&fake, 555)
            .into_iter()
            .find(|m| m["reply_markup"].is_object())
    })
    .expect("card sent");
    // The record follows the send: the reply must not overtake it.
    eventually(Duration::from_secs(10), || {
        home.central()
            .query_row("SELECT 1 FROM pending_questions", [], |r| {
                r.get::<_, i64>(0)
            })
            .ok()
    })
    .expect("question recorded");
    fake.message(555, "private", 42, "2", None);
    let a = eventually(Duration::from_secs(10), || {
        answer_rows(&dir).into_iter().next()
    })
    .expect("text reply answered");
    assert_eq!(a["selectedOption"], "Blue");
}

#[test]
fn an_expired_question_is_closed_and_a_late_press_refused() {
    let fake = FakeTelegram::start(TOKEN);
    let home = TestHome::new()
        .telegram(&fake)
        .env("NANOCLAW_QUESTION_TTL_MS", "1500")
        .env("NANOCLAW_SWEEP_INTERVAL_MS", "300");
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "hi", None);
    wait_replies(&fake, 555, 1);
    // An expired question: the press is refused and nothing reaches the session.
    let (dir, _) = runner_writes(
        &home,
        json!({"operation": "ask_question", "questionId": "q-2", "title": "Late", "question": "Still there?", "options": ["Yes"]}),
    );
    let card = eventually(Duration::from_secs(10), || {
        replies_to(&fake, 555).into_iter().find(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.contains("Still there?"))
        })
    })
    .expect("card sent");
    let data = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .unwrap()
        .to_string();
    // The sweep closes the expired card (its text says so and its buttons are gone). That edit is
    // the barrier that the question expired; a sleep past the TTL only makes it likely.
    let mid = card["_message_id"].clone();
    let closed = eventually(Duration::from_secs(10), || {
        fake.calls("editMessageText")
            .into_iter()
            .find(|e| e["message_id"] == mid)
    })
    .expect("expired card edited");
    assert!(
        closed["text"].as_str().unwrap().contains("expired"),
        "{closed}"
    );
    fake.press(555, 42, mid.as_i64().unwrap(), &data);
    let refused = eventually(Duration::from_secs(10), || {
        fake.calls("answerCallbackQuery").into_iter().find(|c| {
            c["text"]
                .as_str()
                .is_some_and(|t| t.contains("no longer open"))
        })
    });
    assert!(refused.is_some(), "expired press answered as such");
    // The refusal is sent after the press was handled: no answer reached the session.
    assert!(answer_rows(&dir).is_empty());
    assert!(closed.get("reply_markup").is_none());
}

#[test]
fn voice_notes_stickers_and_locations_reach_the_agent() {
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.media(
        555,
        42,
        "voice",
        json!({"duration": 3, "mime_type": "audio/ogg"}),
        b"OggS-voice",
        None,
    );
    wait_replies(&fake, 555, 1);
    fake.media(
        555,
        42,
        "sticker",
        json!({"emoji": "👍", "width": 512, "height": 512,
        "is_animated": false, "is_video": false, "type": "regular"}),
        b"RIFF-webp",
        None,
    );
    fake.location(555, 42, 52.52, 13.405);
    let r = wait_replies(&fake, 555, 3);
    assert_eq!(r[1]["text"], "echo: [sticker 👍]");
    assert_eq!(r[2]["text"], "echo: [location 52.52, 13.405]");
    let dir = home.session_dirs().into_iter().next().unwrap();
    let c = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let first: String = c
        .query_row(
            "SELECT content FROM messages_in ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let att = &serde_json::from_str::<Value>(&first).unwrap()["attachments"][0];
    assert_eq!(att["mimeType"], "audio/ogg");
    let name = att["name"].as_str().unwrap();
    assert!(
        name.starts_with("voice-") && name.ends_with(".ogg"),
        "{name}"
    );
    assert_eq!(
        std::fs::read(dir.join(att["path"].as_str().unwrap())).unwrap(),
        b"OggS-voice"
    );
}

#[test]
fn a_file_in_and_a_file_out() {
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.document(
        555,
        42,
        "notes.txt",
        "text/plain",
        b"remember the milk",
        Some("see attached"),
    );
    let r = wait_replies(&fake, 555, 1);
    assert_eq!(r[0]["text"], "echo: see attached");
    let dir = home.session_dirs().into_iter().next().unwrap();
    let c = rusqlite::Connection::open(dir.join("inbound.db")).unwrap();
    let content: String = c
        .query_row(
            "SELECT content FROM messages_in ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let v: Value = serde_json::from_str(&content).unwrap();
    let att = &v["attachments"][0];
    assert_eq!(att["name"], "notes.txt");
    assert_eq!(att["mimeType"], "text/plain");
    let path = att["path"].as_str().unwrap();
    assert!(path.starts_with("inbox/"), "{path}");
    assert_eq!(std::fs::read(dir.join(path)).unwrap(), b"remember the milk");
    assert!(
        !home
            .path()
            .join("data/tmp")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false),
        "staging cleaned"
    );

    // Out: the runner put a file in outbox/<id>/ and wrote the row.
    let dir2 = dir.clone();
    let id = "out-file-1";
    std::fs::create_dir_all(dir2.join("outbox").join(id)).unwrap();
    std::fs::write(
        dir2.join("outbox").join(id).join("report.csv"),
        b"a,b\n1,2\n",
    )
    .unwrap();
    nanoclaw_testkit::runner_insert(
        &dir2,
        id,
        "telegram",
        "telegram:555",
        &json!({"text": "your report", "files": ["report.csv"]}),
        &[],
    );
    let up = eventually(Duration::from_secs(10), || {
        fake.uploads().into_iter().next()
    })
    .expect("file uploaded");
    assert_eq!(up.method, "sendDocument");
    assert_eq!(up.filename, "report.csv");
    assert_eq!(up.bytes, b"a,b\n1,2\n");
    assert_eq!(up.fields["caption"], "your report");
    assert_eq!(up.fields["chat_id"], 555);
    eventually(Duration::from_secs(5), || {
        (!dir2.join("outbox").join(id).exists()).then_some(())
    })
    .expect("outbox cleared after delivery");
}

#[test]
fn markdown_becomes_telegram_html_with_a_plain_fallback() {
    let (fake, home) = setup();
    let _host = start(&home);
    wire(&home, 555, false, "mention", "shared");
    fake.message(555, "private", 42, "**bold** & <x>", None);
    let r = wait_replies(&fake, 555, 1);
    assert_eq!(r[0]["text"], "echo: <b>bold</b> &amp; &lt;x&gt;");
    assert_eq!(r[0]["parse_mode"], "HTML");
    fake.reject_html(1);
    fake.message(555, "private", 42, "*again*", None);
    let r = wait_replies(&fake, 555, 2);
    assert_eq!(
        r[1]["text"], "echo: *again*",
        "sent as plain text after the 400"
    );
    assert!(r[1].get("parse_mode").is_none());
}

/// A host that keeps failing at start backs off (NanoClaw v2's schedule, shrunk here with
/// `NANOCLAW_STARTUP_BACKOFF_UNIT_MS`) and `status` and `doctor` say why; a clean shutdown
/// resets it.
#[test]
fn a_host_failing_at_start_backs_off_and_says_why() {
    let fake = FakeTelegram::start(TOKEN);
    let home = TestHome::new()
        .env("TELEGRAM_BOT_TOKEN", "999:wrong")
        .env("TELEGRAM_API_URL", fake.url())
        .env("NANOCLAW_STARTUP_BACKOFF_UNIT_MS", "1");
    for attempt in 1..=5 {
        let o = home.cmd(&["run"]).output().unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.contains("without a clean shutdown; waiting"),
            attempt >= 3,
            "attempt {attempt}: {err}"
        );
    }
    let status = String::from_utf8_lossy(&home.run(&["status"]).stdout).to_string();
    let line = status
        .lines()
        .find(|l| l.starts_with("startup:"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        line.contains("5 start(s) in a row")
            && line.contains("Telegram rejected the bot token")
            && line.contains("the next start waits 300 s"),
        "{line}"
    );
    let doctor = String::from_utf8_lossy(&home.run(&["doctor"]).stdout).to_string();
    assert!(
        doctor.contains("warn  startup: 5 start(s) in a row"),
        "{doctor}"
    );
    // Fixed: the host starts, and a clean stop forgets the failures.
    let host = home.start_host(&[("TELEGRAM_BOT_TOKEN", TOKEN)]);
    host.stop();
    let status = String::from_utf8_lossy(&home.run(&["status"]).stdout).to_string();
    assert!(!status.contains("startup:"), "{status}");
}
