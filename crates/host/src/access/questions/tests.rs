use super::*;
use nanoclaw_protocol::status::SenderScope;

/// A chat with `policy` wired to a group, a session in it, and a question or approval card.
fn world(policy: UnknownSenderPolicy, scope: SenderScope) -> (rusqlite::Connection, String) {
    let mut c = rusqlite::Connection::open_in_memory().unwrap();
    db::migrations::run(&mut c).unwrap();
    let ag = db::agent_groups::create(&c, "A", "a").unwrap();
    let other = db::agent_groups::create(&c, "B", "b").unwrap();
    let mg =
        db::messaging_groups::create(&c, "telegram", "telegram:-5", None, true, policy).unwrap();
    let mut w = db::wirings::NewWiring::new(&mg.id, &ag.id);
    w.sender_scope = scope;
    db::wirings::create(&c, &w).unwrap();
    for u in [
        "telegram:1",
        "telegram:2",
        "telegram:3",
        "telegram:4",
        "telegram:5",
    ] {
        db::users::ensure(&c, u, "telegram", None).unwrap();
    }
    db::users::grant(&c, "telegram:1", "owner", None, None).unwrap();
    db::users::grant(&c, "telegram:2", "admin", Some(&ag.id), None).unwrap();
    db::users::grant(&c, "telegram:5", "admin", Some(&other.id), None).unwrap();
    db::users::add_member(&c, "telegram:3", &ag.id, None).unwrap();
    c.execute(
        "INSERT INTO sessions(id, agent_group_id, messaging_group_id, status, container_status, created_at)
         VALUES ('s1', ?1, ?2, 'active', 'stopped', '2025-01-01')",
        params![ag.id, mg.id],
    )
    .unwrap();
    c.execute(
        "INSERT INTO pending_approvals(approval_id, session_id, request_id, action, payload, created_at, agent_group_id, status)
         VALUES ('appr-1', 's1', 'req-1', 'install_packages', '{}', '2025-01-01', ?1, 'pending')",
        [&ag.id],
    )
    .unwrap();
    (c, ag.id)
}

fn card(kind: Kind, id: &str, for_user: Option<&str>) -> Open {
    Open {
        question_id: id.into(),
        agent_question_id: id.into(),
        session_id: "s1".into(),
        title: String::new(),
        options: vec![],
        platform_message_id: None,
        channel_type: "telegram".into(),
        platform_id: "telegram:-5".into(),
        thread_id: None,
        kind,
        for_user: for_user.map(str::to_string),
    }
}

fn may(c: &rusqlite::Connection, q: &Open, who: &str) -> bool {
    authorize(c, q, who).unwrap().is_ok()
}

#[test]
fn an_approval_is_decided_by_its_approver_or_an_admin_of_the_group_only() {
    let (c, _) = world(UnknownSenderPolicy::Public, SenderScope::All);
    let q = card(Kind::Approval, "appr-1", Some("telegram:4"));
    assert!(may(&c, &q, "telegram:4"), "the approver it was sent to");
    assert!(may(&c, &q, "telegram:1"), "an owner");
    assert!(may(&c, &q, "telegram:2"), "a scoped admin");
    assert!(!may(&c, &q, "telegram:3"), "a plain member");
    assert!(!may(&c, &q, "telegram:5"), "an admin of another group");
    assert!(!may(&c, &q, "telegram:99"), "a stranger");
    // An approval card whose approval is unknown decides nothing.
    assert!(!may(
        &c,
        &card(Kind::Approval, "appr-x", None),
        "telegram:3"
    ));
}

#[test]
fn a_question_is_answered_only_by_senders_the_chat_admits() {
    let (c, _) = world(UnknownSenderPolicy::Strict, SenderScope::All);
    let q = card(Kind::Question, "q-1", None);
    assert!(may(&c, &q, "telegram:3"), "a member");
    assert!(may(&c, &q, "telegram:1"), "the owner");
    assert!(!may(&c, &q, "telegram:99"), "a stranger in a strict chat");
    let (c, _) = world(UnknownSenderPolicy::Public, SenderScope::All);
    assert!(may(&c, &q, "telegram:99"), "anyone in a public chat");
    let (c, _) = world(UnknownSenderPolicy::Public, SenderScope::Known);
    assert!(
        !may(&c, &q, "telegram:99"),
        "the asking agent admits only known senders"
    );
    assert!(may(&c, &q, "telegram:3"));
    let q = card(Kind::Question, "q-1", Some("telegram:3"));
    assert!(!may(&c, &q, "telegram:1"), "a question for one person");
    assert!(may(&c, &q, "telegram:3"));
}

#[test]
fn numbered_or_labelled_replies() {
    let o =
        QuestionOption::normalize_all(&[json!("Tea"), json!({"label": "Coffee", "value": "cof"})]);
    assert_eq!(choice_from_text("2", &o), Some(1));
    assert_eq!(choice_from_text(" coffee ", &o), Some(1));
    assert_eq!(choice_from_text("3", &o), None);
    assert_eq!(choice_from_text("maybe", &o), None);
    assert_eq!(choice_from_text("COF", &o), Some(1));
}
