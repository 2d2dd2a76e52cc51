//! `Switcher::reconcile` against a fake systemd and a node root in a temp
//! folder: a clean node is left alone (no journal, no daemon-reload, no
//! job), drift is repaired with the fewest jobs, a repair whose health
//! gate still fails ends in `Unrepaired` (nothing to roll back to), and a
//! lost secret that must not be made anew is reported, not replaced.

#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use archy_eval::{Limits, MemSources, evaluate};
use archy_graph::Graph;
use archy_plan::{Drift, Reason, UnitOp};
use archy_podman::Podman;
use archy_realize::Realizer;
use archy_store::{StateDir, Store};
use archy_switch::containers::{PodmanAccess, Unreachable};
use archy_switch::switch::{Outcome, Reconciled, SwitchError, Switcher};
use archy_systemd::fake::{Call, FakeServiceManager, inactive};
use archy_systemd::{JobKind, ServiceManager, UnitName};
use tempfile::TempDir;

/// These nodes have no containers: podman is never asked.
#[derive(Debug)]
struct NoPodman;

impl PodmanAccess for NoPodman {
    fn podman(&self) -> Result<&dyn Podman, Unreachable> {
        let missing = archy_podman::Error::SocketMissing {
            socket: "/nowhere/podman.sock".into(),
        };
        Err(Unreachable::Connect(std::sync::Arc::new(missing)))
    }
}

fn un(name: &str) -> UnitName {
    UnitName::try_from(name).unwrap()
}

struct Node {
    _dir: TempDir,
    root: PathBuf,
    state: PathBuf,
    store: Store,
    realizer: Realizer,
    systemd: FakeServiceManager,
}

fn graph(node: &str) -> Graph {
    let src = MemSources::default().with("node.rhai", node);
    match evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default()) {
        Ok(ev) => ev.graph,
        Err(f) => panic!("{:#?}", f.problems),
    }
}

/// `ready` is a file whose presence the health gate checks.
fn description(ready: &str) -> String {
    format!(
        r#"[
            file("/etc/app/app.conf", #{{ text: "port=1\n" }}),
            secret("wallet", #{{ length: 24 }}),
            file("/etc/app/wallet", #{{ text: "{{{{secret.wallet}}}}" }}),
            unit("app.service", #{{
                Service: #{{ ExecStart: "/usr/bin/app /etc/app/app.conf" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            unit("wallet.service", #{{
                Service: #{{ ExecStart: "/usr/bin/wallet /etc/app/wallet" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            health_cmd(["/usr/bin/test", "-e", "{ready}"], #{{ within: "1s" }}),
        ]"#
    )
}

impl Node {
    /// A root switched to generation 1 of [`description`].
    fn switched() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        let state = root.join("var/lib/archy");
        let store = Store::open(&StateDir::new(&state)).unwrap();
        let realizer = Realizer::new(&root, &StateDir::new(&state));
        let systemd = FakeServiceManager::new();
        for unit in ["app.service", "wallet.service"] {
            systemd.set_unit(unit, inactive());
        }
        let n = Node {
            _dir: dir,
            root,
            state,
            store,
            realizer,
            systemd,
        };
        fs::write(n.ready(), "").unwrap();
        let g = graph(&description(&n.ready().display().to_string()));
        let number = archy_build::build(&n.store, &g, "test").unwrap().number();
        let outcome = n.switcher().switch(number).unwrap();
        assert!(matches!(outcome, Outcome::Switched { .. }), "{outcome:?}");
        n.systemd.take_calls();
        n
    }

    fn ready(&self) -> PathBuf {
        self.root.join("ready")
    }

    fn switcher(&self) -> Switcher<'_> {
        Switcher {
            store: &self.store,
            realizer: &self.realizer,
            systemd: &self.systemd,
            podman: &NoPodman,
            adopt: false,
            command: "archy reconcile".into(),
            job_timeout: Duration::from_secs(5),
            clobber: Default::default(),
        }
    }

    fn journal(&self) -> bool {
        self.state.join("switch.json").exists()
    }

    /// The jobs and reloads asked of systemd since the last call.
    fn actions(&self) -> Vec<Call> {
        self.systemd
            .take_calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Job { .. } | Call::DaemonReload | Call::Kill { .. }))
            .collect()
    }
}

fn done(r: Reconciled) -> (Vec<Drift>, Option<archy_plan::Plan>, usize) {
    match r {
        Reconciled::Done {
            generation,
            drift,
            plan,
            lost,
        } => {
            assert_eq!(generation, 1);
            (drift, plan.map(|p| *p), lost.len())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_clean_node_is_left_exactly_as_it_is() {
    let n = Node::switched();
    let record = fs::read(n.state.join("owned.json")).unwrap();
    let (drift, plan, lost) = done(n.switcher().reconcile().unwrap());
    assert_eq!(drift, vec![]);
    assert!(plan.is_none());
    assert_eq!(lost, 0);
    assert_eq!(n.actions(), vec![], "no job, no daemon-reload");
    assert!(!n.journal());
    assert_eq!(fs::read(n.state.join("owned.json")).unwrap(), record);
}

#[test]
fn a_stopped_unit_is_started_and_an_edited_file_rewritten_with_its_reader_restarted() {
    let n = Node::switched();
    n.systemd
        .stop(&un("wallet.service"), Duration::from_secs(1))
        .unwrap();
    fs::write(n.root.join("etc/app/app.conf"), "port=2\n").unwrap();
    n.systemd.take_calls();
    let (drift, plan, _) = done(n.switcher().reconcile().unwrap());
    assert_eq!(drift.len(), 2, "{drift:?}");
    let plan = plan.unwrap();
    let jobs: Vec<_> = plan
        .touched_units()
        .map(|u| (u.unit.as_str(), u.op))
        .collect();
    assert_eq!(
        jobs,
        vec![
            ("app.service", UnitOp::Restart),
            ("wallet.service", UnitOp::Start)
        ]
    );
    assert_eq!(
        fs::read_to_string(n.root.join("etc/app/app.conf")).unwrap(),
        "port=1\n"
    );
    let kinds: Vec<_> = n
        .actions()
        .into_iter()
        .filter_map(|c| match c {
            Call::Job { kind, unit, .. } => Some((kind, unit)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (JobKind::Restart, "app.service".to_string()),
            (JobKind::Start, "wallet.service".to_string())
        ]
    );
    assert!(!n.journal(), "the journal is finished");
    assert!(
        n.systemd
            .unit_state(&un("wallet.service"))
            .unwrap()
            .is_active()
    );
    // Repaired: the next reconcile has nothing to do.
    let (drift, plan, _) = done(n.switcher().reconcile().unwrap());
    assert_eq!(drift, vec![]);
    assert!(plan.is_none());
}

#[test]
fn a_repair_whose_health_gate_fails_is_unrepaired_not_rolled_back() {
    let n = Node::switched();
    n.systemd
        .stop(&un("app.service"), Duration::from_secs(1))
        .unwrap();
    fs::remove_file(n.ready()).unwrap();
    let err = n.switcher().reconcile().unwrap_err();
    let SwitchError::Unrepaired { generation, why } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*generation, 1);
    assert!(
        why.iter().any(|w| w.contains("cmd:/usr/bin/test")),
        "{why:?}"
    );
    assert!(err.to_string().contains("nothing to roll back to"), "{err}");
    assert!(!n.journal());
    assert_eq!(n.store.current().unwrap(), Some(1));
}

#[test]
fn a_lost_wallet_password_is_reported_and_nothing_that_uses_it_restarts() {
    let n = Node::switched();
    fs::remove_file(n.realizer.secret_path("wallet")).unwrap();
    let (drift, plan, lost) = done(n.switcher().reconcile().unwrap());
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(lost, 1);
    assert!(plan.is_none(), "nothing else to repair: {plan:?}");
    assert_eq!(n.actions(), vec![]);
    assert!(!n.realizer.secret_path("wallet").exists());
    assert!(!n.journal());

    // Another repair still happens, and the wallet's reader is left alone.
    n.systemd
        .stop(&un("app.service"), Duration::from_secs(1))
        .unwrap();
    n.systemd.take_calls();
    let (_, plan, lost) = done(n.switcher().reconcile().unwrap());
    assert_eq!(lost, 1);
    let plan = plan.unwrap();
    assert!(
        plan.changes
            .iter()
            .any(|c| c.key.id == "wallet" && c.reason == Reason::SecretLost)
    );
    let jobs: Vec<_> = plan.touched_units().map(|u| u.unit.as_str()).collect();
    assert_eq!(jobs, vec!["app.service"]);

    // A switch refuses, saying what to do, and changes nothing.
    let err = n.switcher().switch(1).unwrap_err();
    assert!(matches!(err, SwitchError::SecretsLost(..)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("secrets/wallet (mode 0600)"), "{text}");
    assert!(text.contains("archy secret rotate wallet"), "{text}");
    assert!(!n.realizer.secret_path("wallet").exists());
}
