//! Data across switches: which versions migrate, which go back and how,
//! what is refused and what is held, and the unit jobs around them.

mod common;

use common::{graph, ops, s};

use archy_graph::Graph;
use archy_plan::data::{DataMode, DataOp, SnapshotSeen};
use archy_plan::{Observed, Plan, Reason, UnitOp, display, plan};

/// App `wallet` (a service) whose data `wallet` is `kind` at `version`,
/// and `other.service` beside it.
fn node(kind: &str, version: u32, exec: &str) -> Graph {
    let rebuild = if kind == "rebuildable" {
        r#", rebuild: "the wallet is scanned again (minutes)""#
    } else {
        ""
    };
    let opened = if kind == "forward-only" {
        r#", opened: "channel.db""#
    } else {
        ""
    };
    graph(&format!(
        r#"[
            unit("other.service", #{{
                Service: #{{ ExecStart: "/bin/other" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            dir("/var/lib/wallet", #{{}}),
            unit("wallet.service", #{{
                Service: #{{ ExecStart: "{exec}" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            app_lifecycle("wallet", #{{ units: ["wallet.service"], data: ["/var/lib/wallet"] }}),
            data("wallet", #{{ path: "/var/lib/wallet", version: {version}, kind: "{kind}"{rebuild}{opened} }}),
        ]"#
    ))
}

fn observed(on_disk: Option<u32>, snapshots: Vec<SnapshotSeen>, mode: DataMode) -> Observed {
    let mut o = Observed {
        data_mode: mode,
        ..Observed::default()
    };
    if let Some(v) = on_disk {
        o.data.insert(s("wallet"), v);
    }
    if !snapshots.is_empty() {
        o.snapshots.insert(s("wallet"), snapshots);
    }
    o
}

fn snap(generation: u64, version: u32, opened: Option<bool>) -> SnapshotSeen {
    SnapshotSeen {
        generation,
        version,
        opened,
    }
}

fn op(p: &Plan) -> &DataOp {
    &p.data.first().expect("a data step").op
}

#[test]
fn a_raised_version_migrates_after_a_snapshot_with_the_app_stopped_first() {
    for (kind, snapshot) in [
        ("forward-only", true),
        ("snapshot", true),
        ("rebuildable", false),
    ] {
        let p = plan(
            Some(&node(kind, 1, "/bin/w1")),
            &node(kind, 2, "/bin/w2"),
            &observed(Some(1), vec![], DataMode::Switch),
        );
        assert_eq!(op(&p), &DataOp::Migrate { snapshot }, "{kind}");
        // The app's unit is stopped before the data step and started
        // after it (not restarted while the snapshot is taken).
        let jobs = ops(&p);
        if snapshot {
            assert_eq!(
                jobs,
                [
                    (s("wallet.service"), UnitOp::Stop),
                    (s("wallet.service"), UnitOp::Start)
                ],
                "{kind}"
            );
        } else {
            assert_eq!(jobs, [(s("wallet.service"), UnitOp::Restart)], "{kind}");
        }
    }
    let p = plan(
        Some(&node("forward-only", 1, "/bin/w1")),
        &node("forward-only", 2, "/bin/w2"),
        &observed(Some(1), vec![], DataMode::Switch),
    );
    let text = display::render(&p);
    assert!(
        text.contains("migrate  wallet data 1 -> 2 (forward-only), snapshot first"),
        "{text}"
    );
}

#[test]
fn an_unchanged_version_does_nothing_and_a_first_one_is_only_recorded() {
    let g = node("forward-only", 3, "/bin/w");
    let same = plan(Some(&g), &g, &observed(Some(3), vec![], DataMode::Switch));
    assert!(same.data.is_empty());
    assert!(same.is_empty());
    let first = plan(None, &g, &observed(None, vec![], DataMode::Switch));
    assert_eq!(op(&first), &DataOp::Record);
    // A record alone is nothing to switch for.
    let only_record = plan(Some(&g), &g, &observed(None, vec![], DataMode::Switch));
    assert!(only_record.is_empty());
}

#[test]
fn going_back_over_forward_only_data_is_refused_by_a_switch_and_a_rollback() {
    let p = plan(
        Some(&node("forward-only", 2, "/bin/w2")),
        &node("forward-only", 1, "/bin/w1"),
        &observed(Some(2), vec![snap(5, 1, Some(false))], DataMode::Switch),
    );
    // Even a snapshot of the old version nobody opened is not put back
    // on the operator's command: that is for the rollback of a failure.
    let DataOp::Refuse { why } = op(&p) else {
        panic!("{:?}", p.data)
    };
    assert!(why.contains("--keep-app wallet"), "{why}");
    assert_eq!(archy_plan::data::refusals(&p.data).count(), 1);
}

#[test]
fn a_failed_migration_restores_forward_only_data_only_if_never_opened() {
    let failed = node("forward-only", 2, "/bin/w2");
    let good = node("forward-only", 1, "/bin/w1");
    let undo = |snaps| {
        plan(
            Some(&failed),
            &good,
            &observed(Some(2), snaps, DataMode::UndoFailed),
        )
    };
    // Never opened: the newest snapshot of version 1 is put back.
    let p = undo(vec![snap(4, 1, Some(false)), snap(6, 1, Some(false))]);
    assert_eq!(op(&p), &DataOp::Restore { generation: 6 });
    assert_eq!(
        ops(&p),
        [
            (s("wallet.service"), UnitOp::Stop),
            (s("wallet.service"), UnitOp::Start)
        ]
    );
    // Opened, unknown, or no snapshot: held, the app stopped, never started.
    for snaps in [
        vec![snap(6, 1, Some(true))],
        vec![snap(6, 1, None)],
        vec![snap(6, 3, Some(false))],
        vec![],
    ] {
        let p = undo(snaps.clone());
        assert!(
            matches!(op(&p), DataOp::Hold { .. }),
            "{snaps:?}: {:?}",
            p.data
        );
        assert_eq!(ops(&p), [(s("wallet.service"), UnitOp::Stop)], "{snaps:?}");
        assert!(p.units.iter().any(|a| a.unit.as_str() == "wallet.service"
            && a.op == UnitOp::Skip
            && a.reason == Reason::DataHeld { app: s("wallet") }));
        assert_eq!(archy_plan::data::holds(&p.data).count(), 1);
    }
}

#[test]
fn snapshot_data_goes_back_from_its_snapshot_and_rebuildable_data_is_emptied() {
    let p = plan(
        Some(&node("snapshot", 2, "/bin/w2")),
        &node("snapshot", 1, "/bin/w1"),
        &observed(Some(2), vec![snap(3, 1, None)], DataMode::Switch),
    );
    assert_eq!(op(&p), &DataOp::Restore { generation: 3 });
    // Without a snapshot of that version, a switch is refused.
    let p = plan(
        Some(&node("snapshot", 2, "/bin/w2")),
        &node("snapshot", 1, "/bin/w1"),
        &observed(Some(2), vec![], DataMode::Switch),
    );
    assert!(matches!(op(&p), DataOp::Refuse { .. }), "{:?}", p.data);
    let p = plan(
        Some(&node("rebuildable", 2, "/bin/w2")),
        &node("rebuildable", 1, "/bin/w1"),
        &observed(Some(2), vec![], DataMode::Switch),
    );
    assert_eq!(
        op(&p),
        &DataOp::Rebuild {
            cost: s("the wallet is scanned again (minutes)")
        }
    );
    let text = display::render(&p);
    assert!(
        text.contains("rebuild  wallet data 2 -> 1 (rebuildable): emptied; the wallet is scanned again (minutes)"),
        "{text}"
    );
}

#[test]
fn a_reconcile_holds_newer_data_and_a_switch_to_code_that_reads_it_resumes_the_app() {
    let old = node("forward-only", 1, "/bin/w1");
    // The generation runs; the data is at 2: held, never started.
    let p = plan(
        Some(&old),
        &old,
        &Observed {
            inactive_units: [common::u("wallet.service")].into(),
            ..observed(Some(2), vec![], DataMode::Keep)
        },
    );
    assert!(matches!(op(&p), DataOp::Hold { .. }), "{:?}", p.data);
    assert!(ops(&p).is_empty(), "{:?}", ops(&p));
    // Code that reads 2: the app, down while held, starts.
    let new = node("forward-only", 2, "/bin/w2");
    let p = plan(
        Some(&old),
        &new,
        &Observed {
            inactive_units: [common::u("wallet.service")].into(),
            ..observed(Some(2), vec![], DataMode::Switch)
        },
    );
    assert_eq!(op(&p), &DataOp::Resume);
    assert_eq!(ops(&p), [(s("wallet.service"), UnitOp::Start)]);
}
