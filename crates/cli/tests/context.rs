//! What the agent sees of a message: which chat spoke (for a session that hears several) and
//! what a reply answers. Real `nanoclaw run` + runner with the anthropic provider against the
//! testkit's fake Messages API, and Telegram through the fake Bot API.

use nanoclaw_testkit::fake_model::{FakeModel, Reply};
use nanoclaw_testkit::fake_telegram::FakeTelegram;
use nanoclaw_testkit::{eventually, TestHome};
use serde_json::Value;

const TOKEN: &str = "123456:TEST-token";

#[test]
fn an_agent_shared_session_knows_which_chat_spoke_and_what_a_reply_answers() {
    let model = FakeModel::start();
    let tg = FakeTelegram::start(TOKEN);
    let home = TestHome::new()
        .env("NANOCLAW_PROVIDER", "anthropic")
        .env("ANTHROPIC_BASE_URL", &model.anthropic_url())
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .telegram(&tg);
    let _host = home.start_host(&[]);
    for chat in [-100, -200] {
        home.wire_telegram(chat, true, "public", "pattern", "agent-shared");
    }
    // The agent answers each message in the chat it came from, by that chat's name.
    model.respond_with(|r| {
        let t = r.last_user_text();
        let from = t.rsplit("from=\"").next()?.split('"').next()?.to_string();
        Some(Reply::text(&format!(
            "<message to=\"{from}\">hi {from}</message>"
        )))
    });
    let dests: Vec<Value> =
        serde_json::from_str(&home.ctl(&["destinations", "list", "--json"])).unwrap();
    let name_of = |chat: i64| -> String {
        let mg: Vec<Value> = serde_json::from_str(&home.ctl(&[
            "messaging-groups",
            "list",
            "--platform-id",
            &format!("telegram:{chat}"),
            "--json",
        ]))
        .unwrap();
        dests
            .iter()
            .find(|d| d["target_id"] == mg[0]["id"])
            .and_then(|d| d["local_name"].as_str())
            .unwrap()
            .to_string()
    };
    let (a, b) = (name_of(-100), name_of(-200));
    assert_ne!(a, b);
    tg.message(-100, "supergroup", 42, "hello from A", None);
    let ra = tg.wait_replies(-100, 1);
    assert_eq!(ra[0]["text"], format!("hi {a}"));
    tg.message(-200, "supergroup", 43, "hello from B", None);
    let rb = tg.wait_replies(-200, 1);
    assert_eq!(rb[0]["text"], format!("hi {b}"));
    assert_eq!(tg.replies_to(-100).len(), 1, "B's answer did not go to A");

    // A reply to an old message reaches the model with the quoted text.
    tg.reply(-100, 42, "and this?", 7, "Bob", "the old words");
    let seen = eventually(std::time::Duration::from_secs(30), || {
        model
            .received()
            .iter()
            .map(|r| r.last_user_text())
            .find(|t| t.contains("and this?"))
    })
    .expect("the reply reached the model");
    assert!(
        seen.contains("<quoted_message from=\"Bob\">the old words</quoted_message>"),
        "{seen}"
    );
    assert!(seen.contains(&format!("from=\"{a}\"")), "{seen}");
    // Routing fields stay invisible.
    assert!(!seen.contains("telegram:-100"), "{seen}");
}
