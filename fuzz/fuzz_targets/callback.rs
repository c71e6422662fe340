//! Telegram button presses: callback_data is chosen by the client, so any string may arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nanoclaw_host::channels::telegram::{callback_answer, callback_data};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((q, i)) = callback_answer(s) {
        assert!(s.starts_with("q|") && s.contains(q));
        assert_eq!(callback_answer(&callback_data(q, i)), Some((q, i)));
    }
    // Whatever the question id, its buttons read back as sent.
    for i in [0, 1, 9, 10, s.len()] {
        assert_eq!(callback_answer(&callback_data(s, i)), Some((s, i)));
    }
});
