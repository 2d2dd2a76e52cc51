//! `archy rollback --keep-app APP`: the earlier generation with APP as the
//! current one has it, and what a switch to that composition does.

mod common;

use std::collections::BTreeSet;

use common::{graph, ops, s};

use archy_graph::keep::keeping;
use archy_graph::{Graph, Kind};
use archy_plan::{Observed, UnitOp, plan};

/// `wallet` (its config file, data contract, unit) at `version`, and
/// `web` reading its own config `web`.
fn node(version: u32, web: &str, shared: &str) -> Graph {
    graph(&format!(
        r#"[
            file("/etc/shared.conf", #{{ text: "{shared}" }}),
            file("/etc/wallet.conf", #{{ text: "format {version}" }}),
            dir("/var/lib/wallet", #{{}}),
            unit("wallet.service", #{{
                Service: #{{ ExecStart: "/bin/wallet-{version} /etc/wallet.conf /etc/shared.conf" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            app_lifecycle("wallet", #{{ units: ["wallet.service"], data: ["/var/lib/wallet"] }}),
            data("wallet", #{{ path: "/var/lib/wallet", version: {version}, kind: "forward-only" }}),
            file("/etc/web.conf", #{{ text: "{web}" }}),
            unit("web.service", #{{
                Service: #{{ ExecStart: "/bin/web /etc/web.conf /etc/shared.conf" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            app_lifecycle("web", #{{ units: ["web.service"] }}),
        ]"#
    ))
}

fn keep(apps: &[&str]) -> BTreeSet<String> {
    apps.iter().map(|a| s(a)).collect()
}

#[test]
fn the_kept_app_stays_as_it_is_and_the_rest_goes_back() {
    let target = node(1, "web v1", "shared");
    let current = node(2, "web v2", "shared");
    let composed = keeping(&target, &current, &keep(&["wallet"])).expect("holds together");
    let text = |g: &Graph, path: &str| {
        let n = g
            .get(&archy_graph::ResourceKey {
                kind: Kind::File,
                id: path.into(),
            })
            .expect("declared");
        n.hash
    };
    assert_eq!(
        text(&composed, "/etc/wallet.conf"),
        text(&current, "/etc/wallet.conf")
    );
    assert_eq!(
        text(&composed, "/etc/web.conf"),
        text(&target, "/etc/web.conf")
    );
    assert_eq!(
        archy_graph::data::contract(&composed, "wallet").map(|c| c.version),
        Some(2)
    );
    // From the current generation, only web changes: wallet keeps running
    // on its data, which stays at version 2.
    let on_disk = Observed {
        data: [(s("wallet"), 2)].into(),
        ..Observed::default()
    };
    let p = plan(Some(&current), &composed, &on_disk);
    assert_eq!(ops(&p), [(s("web.service"), UnitOp::Restart)]);
    assert!(p.data.is_empty());
}

#[test]
fn a_resource_shared_with_the_rest_that_differs_is_refused() {
    let target = node(1, "web v1", "shared then");
    let current = node(2, "web v2", "shared now");
    let problems = keeping(&target, &current, &keep(&["wallet"])).expect_err("refused");
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|p| p.contains("file /etc/shared.conf")),
        "{text:?}"
    );
}

#[test]
fn an_app_the_current_generation_does_not_have_is_refused() {
    let g = node(1, "web", "shared");
    let problems = keeping(&g, &g, &keep(&["nope"])).expect_err("refused");
    assert!(
        problems[0].to_string().contains("no app nope"),
        "{problems:?}"
    );
}
