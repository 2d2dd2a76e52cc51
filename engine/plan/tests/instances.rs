//! Template instances and drop-ins: what a switch does with them.

mod common;

use common::{graph, ops, paths, s, skipped};

use archy_graph::{Graph, Kind};
use archy_plan::{ChangeOp, Drift, Observed, Reason, UnitOp, plan};

/// A template with two instances, each reading its own config file through
/// `%i`; `tmpl` is the template's ExecStart, `a`/`b` the configs' texts,
/// `extra` more resources.
fn node(tmpl: &str, a: &str, b: &str, extra: &str) -> Graph {
    graph(&format!(
        r#"[
            file("/etc/w/a.conf", #{{ text: "{a}" }}),
            file("/etc/w/b.conf", #{{ text: "{b}" }}),
            unit("w@.service", #{{
                Service: #{{ ExecStart: "{tmpl} -conf=/etc/w/%i.conf" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            unit_instance("w@.service", "a"),
            unit_instance("w@.service", "b"),
            {extra}
        ]"#
    ))
}

fn base() -> Graph {
    node("/bin/w", "x=1", "y=1", "")
}

#[test]
fn a_first_switch_starts_and_enables_every_instance() {
    let p = plan(None, &base(), &Observed::default());
    assert_eq!(
        ops(&p),
        vec![
            (s("w@a.service"), UnitOp::Start),
            (s("w@b.service"), UnitOp::Start)
        ]
    );
    assert_eq!(skipped(&p), vec![("w@.service", &Reason::Template)]);
    // The template's file, and each instance's (links only).
    assert_eq!(
        paths(&p),
        vec![
            "/etc/systemd/system/w@.service",
            "/etc/systemd/system/w@a.service",
            "/etc/systemd/system/w@b.service",
        ]
    );
}

#[test]
fn instances_option_declares_them_too() {
    let g = graph(
        r#"[
            unit("w@.service", #{ Service: #{ ExecStart: "/bin/w %i" }, Install: #{ WantedBy: "multi-user.target" }, instances: ["one", "two"] }),
        ]"#,
    );
    let p = plan(None, &g, &Observed::default());
    assert_eq!(
        ops(&p),
        vec![
            (s("w@one.service"), UnitOp::Start),
            (s("w@two.service"), UnitOp::Start)
        ]
    );
}

#[test]
fn a_changed_config_restarts_only_its_instance() {
    let p = plan(
        Some(&base()),
        &node("/bin/w", "x=2", "y=1", ""),
        &Observed::default(),
    );
    assert_eq!(ops(&p), vec![(s("w@a.service"), UnitOp::Restart)]);
    assert_eq!(
        p.units[0].reason,
        Reason::Reads {
            what: "/etc/w/a.conf".into()
        }
    );
    assert!(p.unit_files_changed.is_empty(), "{p:#?}");
}

#[test]
fn a_new_binary_of_the_template_restarts_every_instance_naming_the_binary() {
    let with = |hash: &str| {
        node(
            "/usr/local/bin/w",
            "x=1",
            "y=1",
            &format!(
                r#"artifact("/usr/local/bin/w", #{{ source: "bin/w", blake3: "{}", mode: 0o755 }}),"#,
                hash.repeat(64)
            ),
        )
    };
    let p = plan(Some(&with("1")), &with("2"), &Observed::default());
    assert_eq!(
        ops(&p),
        vec![
            (s("w@a.service"), UnitOp::Restart),
            (s("w@b.service"), UnitOp::Restart)
        ]
    );
    for unit in p.units.iter().filter(|u| u.op == UnitOp::Restart) {
        assert_eq!(
            unit.reason,
            Reason::Reads {
                what: "/usr/local/bin/w".into()
            },
            "{unit:?}"
        );
    }
}

#[test]
fn a_changed_template_restarts_every_instance() {
    let p = plan(
        Some(&base()),
        &node("/bin/w2", "x=1", "y=1", ""),
        &Observed::default(),
    );
    assert_eq!(
        ops(&p),
        vec![
            (s("w@a.service"), UnitOp::Restart),
            (s("w@b.service"), UnitOp::Restart)
        ]
    );
    assert_eq!(
        p.units[0].reason,
        Reason::UnitChanged {
            sections: vec![s("Service")]
        }
    );
}

#[test]
fn a_removed_instance_is_stopped_and_unlinked() {
    let without_b = graph(
        r#"[
            file("/etc/w/a.conf", #{ text: "x=1" }),
            file("/etc/w/b.conf", #{ text: "y=1" }),
            unit("w@.service", #{
                Service: #{ ExecStart: "/bin/w -conf=/etc/w/%i.conf" },
                Install: #{ WantedBy: "multi-user.target" },
            }),
            unit_instance("w@.service", "a"),
        ]"#,
    );
    let p = plan(Some(&base()), &without_b, &Observed::default());
    assert_eq!(ops(&p), vec![(s("w@b.service"), UnitOp::Stop)]);
    assert_eq!(paths(&p), vec!["/etc/systemd/system/w@b.service"]);
}

#[test]
fn an_instance_with_its_own_reads_restarts_alone() {
    let with = |v: &str| {
        node(
            "/bin/w",
            "x=1",
            "y=1",
            &format!(
                r#"file("/etc/extra", #{{ text: "{v}" }}),
                unit_instance("w@.service", "c", #{{ reads: ["/etc/extra"] }}),"#
            ),
        )
    };
    let p = plan(Some(&with("1")), &with("2"), &Observed::default());
    assert_eq!(ops(&p), vec![(s("w@c.service"), UnitOp::Restart)]);
}

#[test]
fn a_stopped_instance_is_started_by_reconcile_and_its_links_rewritten() {
    let g = base();
    let drift = vec![
        Drift::Inactive {
            unit: common::u("w@a.service"),
            state: "inactive (dead)".into(),
        },
        Drift::Disabled {
            unit: common::u("w@b.service"),
        },
    ];
    let p = plan(
        Some(&g),
        &g,
        &Observed {
            drift,
            ..Observed::default()
        },
    );
    assert_eq!(ops(&p), vec![(s("w@a.service"), UnitOp::Start)]);
    assert_eq!(paths(&p), vec!["/etc/systemd/system/w@b.service"]);
}

/// A drop-in for a unit archy does not own.
fn dropin(env: &str, extra: &str) -> Graph {
    graph(&format!(
        r#"[
            dropin("systemd-networkd.service", "archy-br0", #{{
                Unit: #{{ Description: "with br0" }},
                Service: #{{ Environment: "{env}" }},
            }}),
            {extra}
        ]"#
    ))
}

const DROPIN: &str = "/etc/systemd/system/systemd-networkd.service.d/archy-br0.conf";

#[test]
fn a_new_dropin_is_written_and_restarts_its_unit() {
    let empty = graph("[]");
    let p = plan(Some(&empty), &dropin("A=1", ""), &Observed::default());
    assert_eq!(paths(&p), vec![DROPIN]);
    assert_eq!(
        ops(&p),
        vec![(s("systemd-networkd.service"), UnitOp::Restart)]
    );
    let shown = archy_plan::display::render(&p);
    assert!(
        shown.contains("unit changed: drop-in archy-br0 [Unit] [Service]"),
        "{shown}"
    );
}

#[test]
fn a_changed_dropin_restarts_its_unit_and_a_cosmetic_one_does_not() {
    let p = plan(
        Some(&dropin("A=1", "")),
        &dropin("A=2", ""),
        &Observed::default(),
    );
    assert_eq!(
        ops(&p),
        vec![(s("systemd-networkd.service"), UnitOp::Restart)]
    );
    assert_eq!(
        p.units[0].reason,
        Reason::Dropin {
            name: s("archy-br0"),
            sections: vec![s("Service")]
        }
    );
    let cosmetic = graph(
        r#"[ dropin("systemd-networkd.service", "archy-br0", #{
                Unit: #{ Description: "other words" },
                Service: #{ Environment: "A=1" },
            }) ]"#,
    );
    let p = plan(Some(&dropin("A=1", "")), &cosmetic, &Observed::default());
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(paths(&p), vec![DROPIN]);
}

#[test]
fn a_removed_dropin_is_deleted_and_its_unit_restarted_not_stopped() {
    let p = plan(Some(&dropin("A=1", "")), &graph("[]"), &Observed::default());
    assert_eq!(paths(&p), vec![DROPIN]);
    assert_eq!(
        ops(&p),
        vec![(s("systemd-networkd.service"), UnitOp::Restart)]
    );
    assert_eq!(
        p.units[0].reason,
        Reason::DropinRemoved {
            name: s("archy-br0")
        }
    );
    assert!(p.unit_files_changed[0].is_dropin());
}

#[test]
fn a_dropin_says_reload_when_asked_and_keep_leaves_it() {
    let with = |v: &str, on_change: &str| {
        graph(&format!(
            r#"[ dropin("x.service", "a", #{{ Service: #{{ Environment: "{v}" }}, on_change: "{on_change}" }}) ]"#
        ))
    };
    let p = plan(
        Some(&with("A=1", "reload")),
        &with("A=2", "reload"),
        &Observed::default(),
    );
    assert_eq!(ops(&p), vec![(s("x.service"), UnitOp::Reload)]);
    let p = plan(
        Some(&with("A=1", "keep")),
        &with("A=2", "keep"),
        &Observed::default(),
    );
    assert!(ops(&p).is_empty());
    assert_eq!(skipped(&p), vec![("x.service", &Reason::KeptRunning)]);
}

#[test]
fn a_dropin_whose_file_is_not_archys_is_refused_unless_adopted() {
    let mut observed = Observed::default();
    observed.unowned.insert(DROPIN.to_string());
    let p = plan(Some(&graph("[]")), &dropin("A=1", ""), &observed);
    let refused: Vec<_> = p.refusals().collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].key.kind, Kind::Dropin);
    assert_eq!(refused[0].key.id, DROPIN);
    observed.adopt = true;
    let p = plan(Some(&graph("[]")), &dropin("A=1", ""), &observed);
    assert_eq!(p.refusals().count(), 0);
    assert_eq!(
        p.changes
            .iter()
            .filter(|c| c.op == ChangeOp::Refuse)
            .count(),
        0
    );
}

#[test]
fn a_dropin_and_its_own_unit_changing_together_restart_it_once() {
    let owned = |exec: &str, env: &str| {
        graph(&format!(
            r#"[
                unit("app.service", #{{ Service: #{{ ExecStart: "{exec}" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
                dropin("app.service", "extra", #{{ Service: #{{ Environment: "{env}" }} }}),
            ]"#
        ))
    };
    let p = plan(
        Some(&owned("/bin/a", "A=1")),
        &owned("/bin/b", "A=2"),
        &Observed::default(),
    );
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Restart)]);
    // Only the drop-in: still one restart, the unit's file untouched.
    let p = plan(
        Some(&owned("/bin/a", "A=1")),
        &owned("/bin/a", "A=2"),
        &Observed::default(),
    );
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Restart)]);
    assert_eq!(
        paths(&p),
        vec!["/etc/systemd/system/app.service.d/extra.conf"]
    );
    // A new unit with its drop-in is started, not restarted.
    let p = plan(None, &owned("/bin/a", "A=1"), &Observed::default());
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Start)]);
    // The unit removed with its drop-in: stopped, once.
    let p = plan(
        Some(&owned("/bin/a", "A=1")),
        &graph("[]"),
        &Observed::default(),
    );
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Stop)]);
    assert_eq!(p.unit_files_changed.len(), 2);
    assert_eq!(
        p.unit_files_changed
            .iter()
            .filter(|f| !f.is_dropin())
            .count(),
        1
    );
}

#[test]
fn a_dropin_on_a_template_restarts_its_instances() {
    let with = |env: &str| {
        node(
            "/bin/w",
            "x=1",
            "y=1",
            &format!(
                r#"dropin("w@.service", "env", #{{ Service: #{{ Environment: "{env}" }} }}),"#
            ),
        )
    };
    let p = plan(Some(&with("A=1")), &with("A=2"), &Observed::default());
    assert_eq!(
        ops(&p),
        vec![
            (s("w@a.service"), UnitOp::Restart),
            (s("w@b.service"), UnitOp::Restart)
        ]
    );
}

#[test]
fn an_edited_dropin_is_rewritten_and_its_unit_restarted_by_reconcile() {
    let g = dropin("A=1", "");
    let drift = vec![Drift::UnitFile {
        unit: common::u("systemd-networkd.service"),
        path: DROPIN.into(),
        what: "edited: it differs from the generation".into(),
    }];
    let p = plan(
        Some(&g),
        &g,
        &Observed {
            drift,
            ..Observed::default()
        },
    );
    assert_eq!(paths(&p), vec![DROPIN]);
    assert_eq!(
        ops(&p),
        vec![(s("systemd-networkd.service"), UnitOp::Restart)]
    );
}

#[test]
fn an_edited_dropin_of_an_owned_unit_is_rewritten_not_the_unit_file() {
    let g = graph(
        r#"[
            unit("app.service", #{ Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "multi-user.target" } }),
            dropin("app.service", "extra", #{ Service: #{ Environment: "A=1" } }),
        ]"#,
    );
    let drift = vec![Drift::UnitFile {
        unit: common::u("app.service"),
        path: "/etc/systemd/system/app.service.d/extra.conf".into(),
        what: "missing".into(),
    }];
    let p = plan(
        Some(&g),
        &g,
        &Observed {
            drift,
            ..Observed::default()
        },
    );
    assert_eq!(
        paths(&p),
        vec!["/etc/systemd/system/app.service.d/extra.conf"]
    );
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Restart)]);
}

#[test]
fn a_dropin_for_a_unit_that_is_down_leaves_it_down() {
    let mut observed = Observed::default();
    observed
        .inactive_units
        .insert(common::u("systemd-networkd.service"));
    let p = plan(Some(&dropin("A=1", "")), &dropin("A=2", ""), &observed);
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(
        skipped(&p),
        vec![("systemd-networkd.service", &Reason::NotRunning)]
    );
    assert_eq!(paths(&p), vec![DROPIN]);
}
