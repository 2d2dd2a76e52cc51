//! Adopting running containers archy did not make, without restarting
//! them: the plan of the switch that adopts them, of the switches after
//! (nothing to do, or the hand-over when the app restarts anyway), and of
//! `archy adopt --now`.

mod common;

use common::{graph_of, s};

use archy_eval::{Inputs, MemSources};
use archy_graph::Graph;
use archy_plan::display::render;
use archy_plan::{
    AdoptMode, Adoption, Aspect, ChangeOp, Difference, Observed, Plan, Reason, UnitOp, plan,
};

/// bitcoind and lnd as containers; lnd reads a config file and needs
/// bitcoind.
fn node(lnd_conf: &str) -> Graph {
    let src = MemSources::default().with(
        "node.rhai",
        &format!(
            r#"[
            file("/etc/lnd/lnd.conf", #{{ text: "{lnd_conf}" }}),
            container("bitcoin-knots", #{{
                image: "localhost/testbed/busybox:latest",
                volumes: ["/var/lib/archipelago/bitcoin:/data"],
            }}),
            container("lnd", #{{
                image: "localhost/testbed/busybox:latest",
                volumes: ["/etc/lnd/lnd.conf:/etc/lnd/lnd.conf:ro"],
                requires: ["bitcoin-knots"],
            }}),
        ]"#
        ),
    );
    graph_of(src, Inputs::default())
}

fn adoption(differences: Vec<Difference>, held: bool) -> Adoption {
    Adoption { differences, held }
}

/// Both containers run, made outside archy, with `adoptions`.
fn running(adoptions: Vec<(&str, Adoption)>) -> Observed {
    Observed {
        foreign_containers: adoptions.iter().map(|(n, _)| s(n)).collect(),
        adoptions: adoptions.into_iter().map(|(n, a)| (s(n), a)).collect(),
        ..Observed::default()
    }
}

fn unit<'p>(p: &'p Plan, name: &str) -> Option<(UnitOp, &'p Reason)> {
    p.units
        .iter()
        .find(|u| u.unit == name)
        .map(|u| (u.op, &u.reason))
}

fn env_difference() -> Difference {
    Difference {
        aspect: Aspect::Env,
        declared: String::new(),
        running: s("OLD_FLAG"),
    }
}

fn mount_difference() -> Difference {
    Difference {
        aspect: Aspect::Mount,
        declared: s("/var/lib/archipelago/bitcoin:/data"),
        running: s("/srv/bitcoin:/data"),
    }
}

#[test]
fn running_containers_are_adopted_in_place_and_their_units_held() {
    let g = node("a=1");
    let observed = running(vec![
        ("bitcoin-knots", adoption(vec![], false)),
        ("lnd", adoption(vec![env_difference()], false)),
    ]);
    let p = plan(None, &g, &observed);
    let adopted: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.op == ChangeOp::Adopt)
        .map(|c| (c.key.id.as_str(), &c.reason))
        .collect();
    assert_eq!(
        adopted,
        vec![
            (
                "bitcoin-knots",
                &Reason::Adopting {
                    mode: AdoptMode::InPlace,
                    differences: vec![]
                }
            ),
            (
                "lnd",
                &Reason::Adopting {
                    mode: AdoptMode::AtRestart,
                    differences: vec![s("env OLD_FLAG (declared none)")]
                }
            ),
        ]
    );
    // Nothing is started or stopped: the units are written and held.
    assert_eq!(p.touched_units().count(), 0, "{p:#?}");
    for (name, mode) in [
        ("bitcoin-knots.service", AdoptMode::InPlace),
        ("lnd.service", AdoptMode::AtRestart),
    ] {
        assert_eq!(
            unit(&p, name),
            Some((UnitOp::Skip, &Reason::HandOverPending { mode }))
        );
    }
    let files: Vec<String> = p
        .unit_files_changed
        .iter()
        .map(|f| f.path.to_string())
        .collect();
    assert!(
        files.contains(&s("/etc/containers/systemd/lnd.container")),
        "{files:?}"
    );
    insta::assert_snapshot!(render(&p));
}

#[test]
fn a_held_adoption_with_nothing_changed_is_nothing_to_do() {
    let g = node("a=1");
    let observed = running(vec![
        ("bitcoin-knots", adoption(vec![], true)),
        ("lnd", adoption(vec![env_difference()], true)),
    ]);
    let p = plan(Some(&g), &g, &observed);
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn a_switch_that_restarts_an_adopted_app_hands_it_over_and_only_it() {
    let a = node("a=1");
    let b = node("a=2");
    let observed = running(vec![
        ("bitcoin-knots", adoption(vec![], true)),
        ("lnd", adoption(vec![env_difference()], true)),
    ]);
    let p = plan(Some(&a), &b, &observed);
    let touched: Vec<_> = p
        .touched_units()
        .map(|u| (u.unit.as_str(), u.op, &u.reason))
        .collect();
    assert_eq!(
        touched,
        vec![(
            "lnd.service",
            UnitOp::Start,
            &Reason::HandOver {
                because: Box::new(Reason::Reads {
                    what: s("/etc/lnd/lnd.conf")
                })
            }
        )]
    );
    insta::assert_snapshot!(render(&p));
}

#[test]
fn a_container_that_differs_unsafely_is_never_handed_over() {
    let a = node("a=1");
    let b = node("a=2");
    let observed = running(vec![
        ("bitcoin-knots", adoption(vec![], true)),
        ("lnd", adoption(vec![mount_difference()], true)),
    ]);
    let p = plan(Some(&a), &b, &observed);
    assert_eq!(p.touched_units().count(), 0, "{p:#?}");
    assert_eq!(
        unit(&p, "lnd.service"),
        Some((
            UnitOp::Skip,
            &Reason::HandOverPending {
                mode: AdoptMode::Differs
            }
        ))
    );
    // Not even when asked.
    let mut asked = observed.clone();
    asked.hand_over = [s("lnd")].into();
    let p = plan(Some(&b), &b, &asked);
    assert_eq!(p.touched_units().count(), 0, "{p:#?}");
    // Its first plan says what differs.
    let p = plan(
        None,
        &a,
        &running(vec![("lnd", adoption(vec![mount_difference()], false))]),
    );
    let text = render(&p);
    assert!(
        text.contains(
            "differs: mount /srv/bitcoin:/data (declared /var/lib/archipelago/bitcoin:/data)"
        ),
        "{text}"
    );
}

#[test]
fn adopt_now_hands_over_the_container_asked_for() {
    let g = node("a=1");
    let mut observed = running(vec![
        ("bitcoin-knots", adoption(vec![], true)),
        ("lnd", adoption(vec![], true)),
    ]);
    observed.hand_over = [s("bitcoin-knots")].into();
    let p = plan(Some(&g), &g, &observed);
    let touched: Vec<_> = p
        .touched_units()
        .map(|u| (u.unit.as_str(), u.op, &u.reason))
        .collect();
    assert_eq!(
        touched,
        vec![(
            "bitcoin-knots.service",
            UnitOp::Start,
            &Reason::HandOverAsked
        )]
    );
}

#[test]
fn a_foreign_container_that_does_not_run_is_still_replaced() {
    let g = node("a=1");
    let observed = Observed {
        foreign_containers: [s("lnd")].into(),
        ..Observed::default()
    };
    let p = plan(None, &g, &observed);
    assert_eq!(
        unit(&p, "lnd.service"),
        Some((UnitOp::Start, &Reason::ForeignContainer))
    );
}

/// Two secrets: one whose users derive from it, one that matters beyond
/// the node.
fn secrets() -> Graph {
    let src = MemSources::default().with(
        "node.rhai",
        r#"[
            secret("rpc", #{ regenerate: true }),
            secret("wallet", #{}),
        ]"#,
    );
    graph_of(src, Inputs::default())
}

fn importing(unusable: Option<&str>) -> Observed {
    let import = |name: &str| archy_plan::Import {
        from: format!("/old/{name}"),
        unusable: unusable.map(str::to_owned),
    };
    Observed {
        missing_secrets: [s("rpc"), s("wallet")].into(),
        imports: [(s("rpc"), import("rpc")), (s("wallet"), import("wallet"))].into(),
        ..Observed::default()
    }
}

#[test]
fn secrets_are_imported_from_the_old_files() {
    let p = plan(None, &secrets(), &importing(None));
    let got: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.key.id.as_str(), &c.op, &c.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "rpc",
                &ChangeOp::Generate,
                &Reason::Imported {
                    from: s("/old/rpc")
                }
            ),
            (
                "wallet",
                &ChangeOp::Generate,
                &Reason::Imported {
                    from: s("/old/wallet")
                }
            ),
        ]
    );
}

#[test]
fn a_missing_import_refuses_only_for_a_secret_that_must_not_be_made_anew() {
    let p = plan(None, &secrets(), &importing(Some("it does not exist")));
    let refused: Vec<_> = p.refusals().map(|c| c.key.id.as_str()).collect();
    assert_eq!(refused, vec!["wallet"]);
    let rpc = p.changes.iter().find(|c| c.key.id == "rpc").expect("rpc");
    assert_eq!(rpc.op, ChangeOp::Generate);
    assert_eq!(
        rpc.reason.to_string(),
        "to be imported from /old/rpc, but it does not exist: a new value is made (everything that uses it derives from it)"
    );
}

#[test]
fn a_declared_container_that_runs_rootless_refuses_the_switch() {
    let g = node("a=1");
    let observed = Observed {
        rootless: [(s("lnd"), 1000)].into(),
        ..Observed::default()
    };
    let p = plan(None, &g, &observed);
    let refused: Vec<_> = p
        .refusals()
        .map(|c| (c.key.id.as_str(), &c.reason))
        .collect();
    assert_eq!(refused, vec![("lnd", &Reason::Rootless { uid: 1000 })]);
    assert!(unit(&p, "lnd.service").is_none(), "{p:#?}");
    let text = render(&p);
    assert!(
        text.contains("runs under rootless podman as uid 1000: not adoptable by a rootful archy"),
        "{text}"
    );
}

#[test]
fn an_adopted_app_that_would_restart_with_what_it_needs_is_handed_over() {
    // bitcoin-knots runs under its unit already, lnd is still adopted:
    // bitcoin-knots's unit changes, and lnd, which needs it, would restart
    // with it; being held, it gets a hand-over of its own.
    let a = node("a=1");
    let src = MemSources::default().with(
        "node.rhai",
        r#"[
            file("/etc/lnd/lnd.conf", #{ text: "a=1" }),
            container("bitcoin-knots", #{
                image: "localhost/testbed/busybox:latest",
                volumes: ["/var/lib/archipelago/bitcoin:/data"],
                exec: ["sleep", "1000"],
            }),
            container("lnd", #{
                image: "localhost/testbed/busybox:latest",
                volumes: ["/etc/lnd/lnd.conf:/etc/lnd/lnd.conf:ro"],
                requires: ["bitcoin-knots"],
            }),
        ]"#,
    );
    let b = graph_of(src, Inputs::default());
    let observed = running(vec![("lnd", adoption(vec![], true))]);
    let p = plan(Some(&a), &b, &observed);
    let knots = unit(&p, "bitcoin-knots.service").expect("bitcoin-knots");
    assert_eq!(knots.0, UnitOp::Restart, "{p:#?}");
    let lnd = p
        .units
        .iter()
        .find(|u| u.unit == "lnd.service")
        .expect("lnd");
    assert_eq!(lnd.op, UnitOp::Start, "{p:#?}");
    assert!(lnd.with.is_none());
    assert!(matches!(lnd.reason, Reason::HandOver { .. }), "{p:#?}");
    // Ordered after what it needs.
    let order: Vec<&str> = p.touched_units().map(|u| u.unit.as_str()).collect();
    assert_eq!(order, vec!["bitcoin-knots.service", "lnd.service"]);
}
