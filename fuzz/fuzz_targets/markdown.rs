//! Model-written markdown → Telegram HTML (`parse_mode: HTML`), and the splitting before it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nanoclaw_fuzz::{check_split, check_telegram_html};
use nanoclaw_host::channels::markdown::to_telegram_html;
use nanoclaw_host::channels::telegram;

fuzz_target!(|data: &[u8]| {
    let Ok(md) = std::str::from_utf8(data) else {
        return;
    };
    check_telegram_html(&to_telegram_html(md), md);
    // A small limit so short inputs exercise the cuts.
    let max = 1 + data.first().map_or(0, |b| *b as usize % 48);
    let pieces = telegram::split(md, max);
    check_split(md, &pieces, max);
});
