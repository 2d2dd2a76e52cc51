//! An app's lifecycle on a real node: `state: "stopped"` stops and
//! disables its units and keeps its data, running again starts them,
//! dropping the app keeps its data, and only `archy switch --clobber APP`
//! removes it. Needs root; see `support/node.rs`.

mod support;

use support::archy_node::ArchyNode;
use support::node::TestNode;

const NODE: &str = "/etc/archy/node.rhai";
const UNIT: &str = "counter.service";
const DATA: &str = "var/lib/counter";
/// What `systemctl enable` would make from the unit's `[Install]`.
const WANTS_LINK: &str = "etc/systemd/system/multi-user.target.wants/counter.service";

/// A node of one bystander service and, unless `state` is `None`, the app
/// `counter` (a service that appends to its data directory, a health
/// check) in that state, declared with the stdlib's app helpers.
fn description(state: Option<&str>) -> String {
    let app = match state {
        Some(state) => format!(
            r#"app::resources(#{{
        id: "counter",
        state: "{state}",
        data: ["/var/lib/counter"],
        resources: [
            dir("/var/lib/counter", #{{ mode: 0o750 }}),
            systemd::service("counter", #{{ exec: "/bin/sh -c 'date >> /var/lib/counter/starts; exec sleep infinity'" }}),
            health_unit("counter.service"),
        ],
    }}),"#
        ),
        None => String::new(),
    };
    format!(
        r#"import "stdlib/app" as app;
import "stdlib/systemd" as systemd;
[
    systemd::service("bystander", #{{ exec: "/bin/sleep infinity" }}),
    health_unit("bystander.service"),
    {app}
]"#
    )
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn archy_ok(n: &ArchyNode, args: &[&str]) -> String {
    let out = n.archy(args);
    let t = text(&out);
    assert!(out.status.success(), "archy {args:?} failed:\n{t}");
    t
}

/// What `systemctl VERB UNIT` prints (is-active, is-enabled), whatever
/// its exit code.
fn systemctl(n: &ArchyNode, verb: &str, unit: &str) -> String {
    String::from_utf8_lossy(&n.node.exec(&["systemctl", verb, unit]).stdout)
        .trim()
        .to_string()
}

fn current_generation(n: &ArchyNode) -> String {
    archy_ok(n, &["generations"])
        .lines()
        .find(|l| l.contains("current"))
        .unwrap_or_else(|| panic!("no current generation"))
        .to_string()
}

/// The service runs and is enabled, its `[Install]` link in place.
fn assert_running(n: &ArchyNode) {
    assert_eq!(systemctl(n, "is-active", UNIT), "active");
    assert_eq!(systemctl(n, "is-enabled", UNIT), "enabled");
    assert_eq!(n.prop(UNIT, "UnitFileState"), "enabled");
    assert!(n.node.root_path().join(WANTS_LINK).is_symlink());
}

#[test]
fn an_app_is_stopped_run_again_dropped_and_only_then_clobbered() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("lifecycle");
    let data = n.node.root_path().join(DATA);

    // Generation 1: the app runs.
    n.write(&description(Some("running")));
    archy_ok(&n, &["switch", NODE]);
    assert_running(&n);
    assert_eq!(
        std::fs::read_to_string(data.join("starts"))
            .expect("the service wrote its data")
            .lines()
            .count(),
        1
    );
    std::fs::write(data.join("wallet"), "keep me").expect("write data");

    // Stopped: inactive, no [Install] (so nothing enables it: systemd calls
    // such a unit "static"), no link, data kept.
    n.write(&description(Some("stopped")));
    let plan = archy_ok(&n, &["switch", "--dry-run", NODE]);
    assert!(
        plan.contains("stop     counter.service") && plan.contains("app counter is stopped"),
        "{plan}"
    );
    archy_ok(&n, &["switch", NODE]);
    assert_eq!(systemctl(&n, "is-active", UNIT), "inactive");
    assert_eq!(systemctl(&n, "is-enabled", UNIT), "static");
    assert_eq!(n.prop(UNIT, "UnitFileState"), "static");
    assert_eq!(n.prop(UNIT, "WantedBy"), "");
    assert_eq!(
        n.prop(UNIT, "FragmentPath"),
        "/etc/systemd/system/counter.service"
    );
    assert!(!n.node.root_path().join(WANTS_LINK).exists());
    assert_eq!(
        std::fs::read_to_string(data.join("wallet")).expect("data kept"),
        "keep me"
    );
    assert!(n.active("bystander.service"));

    // Status finds nothing wrong, reconcile starts nothing.
    let status = n.archy(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let out = archy_ok(&n, &["reconcile"]);
    assert_eq!(systemctl(&n, "is-active", UNIT), "inactive", "{out}");
    assert_eq!(systemctl(&n, "is-enabled", UNIT), "static");
    assert_eq!(n.prop(UNIT, "NRestarts"), "0");

    // Running again: started and enabled; the data it had is still there.
    n.write(&description(Some("running")));
    archy_ok(&n, &["switch", NODE]);
    assert_running(&n);
    let starts = std::fs::read_to_string(data.join("starts")).expect("data");
    assert_eq!(starts.lines().count(), 2, "{starts}");
    assert_eq!(
        std::fs::read_to_string(data.join("wallet")).expect("data kept"),
        "keep me"
    );

    // Dropped from the description: its units go, its data stays.
    n.write(&description(None));
    archy_ok(&n, &["switch", NODE]);
    assert_eq!(systemctl(&n, "is-active", UNIT), "inactive");
    assert_eq!(n.prop(UNIT, "LoadState"), "not-found");
    assert!(
        !n.node
            .root_path()
            .join("etc/systemd/system/counter.service")
            .exists()
    );
    assert!(!n.node.root_path().join(WANTS_LINK).exists());
    assert!(
        data.join("wallet").is_file(),
        "a dropped app's data is kept"
    );
    let status = n.archy(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));

    // --clobber without --yes, and no terminal (stdin is not one here):
    // refused, exit 1, nothing changed.
    let before = current_generation(&n);
    let out = n.archy(&["switch", "--clobber", "counter", NODE]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("--clobber counter: removing an app's data needs a yes, and there is no terminal to ask on (pass --yes); nothing was changed"),
        "{t}"
    );
    assert!(t.contains("clobber  /var/lib/counter"), "the plan: {t}");
    assert!(data.join("wallet").is_file());
    assert_eq!(current_generation(&n), before);

    // With --yes: the plan (printed once) lists the directory, and it is
    // gone.
    let out = archy_ok(&n, &["switch", "--clobber", "counter", "--yes", NODE]);
    assert_eq!(
        out.matches("clobber  /var/lib/counter (app counter's data)")
            .count(),
        1,
        "{out}"
    );
    assert!(!data.exists(), "the data is still there:\n{out}");
    assert!(n.node.root_path().join("var/lib").is_dir());
    assert!(n.active("bystander.service"));
    let status = n.archy(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
}
