//! Files derived from secrets with a user name: bitcoind's `rpcauth=` line
//! and an HTTP Basic credential, filled in at activation, the same at every
//! activation while the secret stays, and never holding the password as it
//! is.

#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

mod common;

use std::fs;

use archy_realize::derive;
use common::{Node, graph};

const NODE: &str = r#"[
    secret("bitcoin-rpc-password", #{}),
    file("/etc/bitcoin/bitcoin.conf", #{ text: "server=1\nrpcauth={{secret.bitcoin-rpc-password | rpcauth node}}\n" }),
    file("/etc/nginx/auth.conf", #{ text: "proxy_set_header Authorization \"Basic {{secret.bitcoin-rpc-password | basic node}}\";\n" }),
]"#;

#[test]
fn rpcauth_and_basic_are_filled_from_the_secret_and_stay_the_same() {
    let n = Node::new();
    let g = graph(NODE);
    n.switch(None, &g).unwrap();
    let password = fs::read(n.realizer.secret_path("bitcoin-rpc-password")).unwrap();

    let conf = n.read("/etc/bitcoin/bitcoin.conf");
    let line = derive::rpcauth("node", &password);
    assert_eq!(conf, format!("server=1\nrpcauth={line}\n"));
    let auth = n.read("/etc/nginx/auth.conf");
    assert_eq!(
        auth,
        format!(
            "proxy_set_header Authorization \"Basic {}\";\n",
            derive::basic("node", &password)
        )
    );
    assert!(
        !conf.contains(std::str::from_utf8(&password).unwrap()),
        "the password itself is not in the rpcauth line"
    );
    assert_eq!(n.meta("/etc/bitcoin/bitcoin.conf").0, 0o600);

    // Written again (the first switch replayed): the same line, so
    // bitcoind sees no change.
    let p = archy_plan::plan(None, &g, &n.realizer.observe(&g, false).unwrap());
    n.realizer.apply_changes(&g, &p).unwrap();
    assert_eq!(n.read("/etc/bitcoin/bitcoin.conf"), conf);
    assert_eq!(n.read("/etc/nginx/auth.conf"), auth);
}
