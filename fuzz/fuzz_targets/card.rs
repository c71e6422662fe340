//! A card body as an agent sends it, rendered as text channels and Telegram show it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nanoclaw_fuzz::{check_split, check_telegram_html};
use nanoclaw_host::channels::markdown::to_telegram_html;
use nanoclaw_host::channels::{telegram, text_of};
use nanoclaw_protocol::content::{CardView, Outbound};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(card) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let view = CardView::parse(&card);
    let tidy = |s: &str| !s.is_empty() && s.trim() == s;
    assert!(view.title.is_empty() || tidy(&view.title));
    assert!(view.lines.iter().all(|l| tidy(l)));
    for (label, url) in &view.links {
        assert!(tidy(label));
        assert!(url.starts_with("https://") || url.starts_with("http://"), "{url:?}");
        assert!(!url.contains(char::is_whitespace), "{url:?}");
    }
    let with_links = view.markdown(true);
    let without = view.markdown(false);
    assert_eq!(view.is_empty(), with_links.is_empty());
    assert!(view.links.iter().all(|(_, u)| with_links.contains(u.as_str())));
    // Without a fallback text, text channels show the card with its links.
    let out = Outbound::Card {
        card: card.clone(),
        fallback_text: String::new(),
    };
    assert_eq!(text_of(&out).as_deref(), Some(with_links.as_str()));
    // Telegram: the text (links become buttons), split, each piece as HTML.
    let max = 64;
    let pieces = telegram::split(&without, max);
    check_split(&without, &pieces, max);
    for p in &pieces {
        check_telegram_html(&to_telegram_html(p), p);
    }
});
