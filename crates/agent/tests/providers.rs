//! The provider table (`nanoclaw_protocol::providers`) against the runner: every row can be
//! constructed, a name outside it is refused with the table's list, and the variables the
//! runner reads for a provider's API are the ones the credential proxy hands out.

mod support;

use std::sync::Arc;

use nanoclaw_agent::providers::by_name;
use nanoclaw_agent::store::Store;
use nanoclaw_agent::tools::{Set, Toolbox};
use nanoclaw_protocol::providers::{self, PROVIDERS};
use support::Ws;

#[test]
fn every_row_of_the_table_is_constructible_by_the_runner() {
    let ws = Ws::new();
    for p in PROVIDERS {
        let mut cfg = ws.cfg(p.name);
        // What the host gives every runner: the proxy's URLs and a placeholder key.
        cfg.anthropic_api_key = Some("ncp-placeholder".into());
        cfg.openai_api_key = Some("ncp-placeholder".into());
        let store = Store::open(ws.path()).unwrap().shared();
        let tools = Arc::new(Toolbox::new(&cfg, store, Set::All));
        if let Err(e) = by_name(p.name, &cfg, tools) {
            panic!("provider {} of the table: {e:#}", p.name);
        }
    }
    let cfg = ws.cfg("gpt");
    let store = Store::open(ws.path()).unwrap().shared();
    let tools = Arc::new(Toolbox::new(&cfg, store, Set::All));
    let e = by_name("gpt", &cfg, tools)
        .err()
        .expect("gpt is not a provider");
    assert_eq!(e.to_string(), providers::unknown("gpt"));
    assert!(e
        .to_string()
        .contains("available: anthropic, openai, claude, mock"));
}

#[test]
fn the_runner_reads_what_the_proxy_sets() {
    // Config reads each upstream's variables by the table's names (config.rs); the defaults
    // are the real APIs, for a runner started without the host.
    let ws = Ws::new();
    let cfg = ws.cfg("mock");
    for u in providers::UPSTREAMS {
        if std::env::var_os(u.base_url_var).is_none() {
            let base = match u.route {
                "anthropic" => &cfg.anthropic_base_url,
                "openai" => &cfg.openai_base_url,
                other => panic!("the runner has no base URL for upstream {other}"),
            };
            assert_eq!(base, u.default_base_url);
        }
    }
}
