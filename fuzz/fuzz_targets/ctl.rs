//! `nanoclaw ctl` arguments, one per line (a shell would split them so).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nanoclaw_host::control::args::{parse, Parsed};
use nanoclaw_host::control::{crud, resources, Request, Verb};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<String> = if s.is_empty() {
        Vec::new()
    } else {
        s.split('\n').map(String::from).collect()
    };
    match parse(&args) {
        Ok(Parsed::Help(text)) => assert!(!text.is_empty()),
        Ok(Parsed::Run(cmd)) => {
            let req = &cmd.req;
            let res = resources::find(&req.resource).expect("a known resource");
            assert_eq!(res.name, req.resource, "the canonical name is sent");
            let verb = Verb::parse(&req.verb).expect("a known verb");
            assert!(res.verbs.contains(&verb));
            for k in req.fields.keys().chain(req.filters.keys()) {
                assert_eq!(crud::column(res, k).expect("a known column").name, k);
            }
            assert!(verb == Verb::List || req.filters.is_empty());
            assert!(verb != Verb::List || req.fields.is_empty());
            // The line sent to the host reads back as the same request.
            let line = serde_json::to_string(req).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(&serde_json::from_str::<Request>(&line).unwrap(), req);
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            assert!(!e.message.contains('\n'), "{:?}", e.message);
        }
    }
});
