//! Data across rollbacks on a real node (`data(...)` contracts): a failed
//! migration of lnd's forward-only data is undone only when lnd never
//! opened it, otherwise lnd is held stopped (exit 3) and nothing of its
//! channel database is put back; `archy rollback` over it is refused and
//! `--keep-app lnd` goes back with everything else; snapshot data is
//! restored, rebuildable data emptied; a kill -9 in the middle of a
//! snapshot or a restore leaves whole data. Needs root; see
//! `support/node.rs`.

mod support;

use support::archy_node::ArchyNode;
use support::node::TestNode;
use support::wait::wait_for;

const NODE: &str = "/etc/archy/node.rhai";
const CHANNEL_DB: &str = "var/lib/lnd/data/graph/regtest/channel.db";
const LND_VERSION: &str = "var/lib/lnd/.standin-data-version";

struct Ran {
    code: Option<i32>,
    out: String,
}

fn run(n: &ArchyNode, args: &[&str]) -> Ran {
    let out = n.archy(args);
    Ran {
        code: out.status.code(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn read(n: &ArchyNode, path: &str) -> String {
    std::fs::read_to_string(n.node.root_path().join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// bitcoind and lnd on regtest, lnd from `image` reading data `version`;
/// `extra` is more of the description (a check that fails, a file).
fn lnd_node(image: &str, version: u32, within: &str, extra: &str) -> String {
    format!(
        r#"
import "apps/bitcoind" as bitcoind;
import "apps/lnd" as lnd;
import "stdlib/app" as app;
let bitcoin = bitcoind::app(#{{ network: "regtest", health_within: "1m" }});
let lightning = lnd::app(bitcoin, #{{ alias: "data-test", rest_tls: false, image: "{image}", data_version: {version}, health_within: "{within}" }});
[ app::resources(bitcoin), app::resources(lightning), [{extra}] ]
"#
    )
}

const LND_V1: &str = "docker.io/lightninglabs/lnd:v0.19.1-beta";
const LND_V2: &str = "docker.io/lightninglabs/lnd:v0.20.0-beta";
const LND_V2_STUCK: &str = "docker.io/lightninglabs/lnd:v0.20.0-stuck";

/// lnd stand-ins of data version 2: one that works, one that never
/// becomes active (REST answers 503, the channel database untouched).
fn build_lnd_v2(n: &ArchyNode) {
    for (tag, env) in [
        (LND_V2, "STANDIN_DATA_VERSION=2"),
        (
            LND_V2_STUCK,
            "STANDIN_DATA_VERSION=2 STANDIN_NEVER_ACTIVE=1",
        ),
    ] {
        let file = format!("FROM {LND_V1}\nENV {env}\n");
        std::fs::write(n.node.root_path().join("root/Containerfile.lnd2"), file)
            .expect("write the Containerfile");
        n.node.exec_ok(&[
            "podman",
            "build",
            "-q",
            "-t",
            tag,
            "-f",
            "/root/Containerfile.lnd2",
            "/root",
        ]);
    }
}

#[test]
fn lnd_forward_only_data_is_restored_only_when_never_opened_and_otherwise_held() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::with_apps("data-lnd");
    build_lnd_v2(&n);

    // Generation 1: lnd v1 runs and opened its channel database.
    n.write(&lnd_node(LND_V1, 1, "20s", ""));
    let g1 = run(&n, &["switch", NODE]);
    assert_eq!(g1.code, Some(0), "{}", g1.out);
    let before = read(&n, CHANNEL_DB);
    assert_eq!(before, "active at data version 1\n");
    let record = read(&n, "var/lib/archy/data/lnd.json");
    assert!(record.contains("\"version\": 1"), "{record}");

    // v2 migrates the data (1 -> 2) and never becomes active: the gate
    // fails, lnd's data is put back from the snapshot and v1 runs on it.
    n.write(&lnd_node(LND_V2_STUCK, 2, "8s", ""));
    let plan = run(&n, &["switch", "--dry-run", NODE]);
    assert!(
        plan.out
            .contains("migrate  lnd data 1 -> 2 (forward-only), snapshot first"),
        "{}",
        plan.out
    );
    let failed = run(&n, &["switch", NODE]);
    assert_eq!(failed.code, Some(2), "{}", failed.out);
    assert_eq!(
        read(&n, LND_VERSION).trim(),
        "1",
        "the migration was undone"
    );
    assert!(n.active("lnd.service"));
    // The snapshot's database, then one more start of v1: nothing of v2.
    assert_eq!(
        read(&n, CHANNEL_DB),
        format!("{before}active at data version 1\n")
    );
    let restored = read(&n, CHANNEL_DB);

    // v2 that became active (its channel database written), then failed a
    // later check: lnd is held stopped with v2's data, exit 3.
    let fails_later = r#"health_cmd(["sh", "-c", "until grep -q 'data version 2' /var/lib/lnd/data/graph/regtest/channel.db; do sleep 0.3; done; exit 1"], #{ within: "6s" })"#;
    n.write(&lnd_node(LND_V2, 2, "1m", fails_later));
    let held = run(&n, &["switch", NODE]);
    assert_eq!(held.code, Some(3), "{}", held.out);
    assert!(
        held.out.contains("the node needs its operator"),
        "{}",
        held.out
    );
    assert!(held.out.contains("--keep-app lnd"), "{}", held.out);
    assert!(!n.active("lnd.service"), "a held lnd must stay stopped");
    assert_eq!(read(&n, LND_VERSION).trim(), "2");
    // Nothing of the channel database was overwritten: v2's line is there.
    let after = read(&n, CHANNEL_DB);
    assert_eq!(after, format!("{restored}active at data version 2\n"));
    let status = run(&n, &["status"]);
    assert_eq!(status.code, Some(3), "{}", status.out);
    assert!(status.out.contains("held stopped"), "{}", status.out);
    // A reconcile does not start it on data it cannot read, and says why.
    let reconcile = run(&n, &["reconcile"]);
    assert_eq!(reconcile.code, Some(3), "{}", reconcile.out);
    assert!(reconcile.out.contains("held stopped"), "{}", reconcile.out);
    assert!(!n.active("lnd.service"), "{}", reconcile.out);
    assert_eq!(read(&n, CHANNEL_DB), after);

    // Code that reads version 2 (and a file of its own) runs.
    const MARKER: &str = "etc/data-test-marker";
    n.write(&lnd_node(
        LND_V2,
        2,
        "1m",
        r#"file("/etc/data-test-marker", #{ text: "4\n" })"#,
    ));
    let good = run(&n, &["switch", NODE]);
    assert_eq!(good.code, Some(0), "{}", good.out);
    assert!(n.active("lnd.service"));
    assert_eq!(run(&n, &["status"]).code, Some(0));
    let lnd_id = n.container_id("lnd");

    // Back to generation 1 would put lnd v1 in front of version 2: refused.
    let refused = run(&n, &["rollback"]);
    assert_eq!(refused.code, Some(1), "{}", refused.out);
    assert!(
        refused.out.contains("lnd ran on it at version 2"),
        "{}",
        refused.out
    );
    assert!(
        refused.out.contains("nothing was changed"),
        "{}",
        refused.out
    );
    assert_eq!(n.container_id("lnd"), lnd_id);
    assert!(n.node.root_path().join(MARKER).exists());

    // --keep-app lnd: the rest goes back (the file goes), lnd stays on
    // v2, untouched.
    let kept = run(&n, &["rollback", "--keep-app", "lnd"]);
    assert_eq!(kept.code, Some(0), "{}", kept.out);
    assert!(!n.node.root_path().join(MARKER).exists(), "{}", kept.out);
    assert_eq!(n.container_id("lnd"), lnd_id, "lnd was restarted");
    let image = n
        .node
        .exec_ok(&["podman", "inspect", "--format", "{{.ImageName}}", "lnd"]);
    assert_eq!(image.trim(), LND_V2);
    assert_eq!(read(&n, LND_VERSION).trim(), "2");
}

/// Two small apps as plain units: `settings` (snapshot data) and `index`
/// (rebuildable), each writing its data format into `app.conf` once.
fn small_node(settings: u32, index: u32, extra: &str) -> String {
    format!(
        r##"
let script = "#!/bin/sh\n# $1: the data format this version writes, $2: its data dir\nf=$2/app.conf\ngrep -qx \"format $1\" \"$f\" 2>/dev/null || echo \"format $1\" >> \"$f\"\nexec sleep infinity\n";
let app = |name, version, kind| [
    dir("/var/lib/" + name, #{{}}),
    unit(name + ".service", #{{
        Service: #{{ ExecStart: "/usr/local/bin/data-app " + version + " /var/lib/" + name }},
        Install: #{{ WantedBy: "multi-user.target" }},
    }}),
    app_lifecycle(name, #{{ units: [name + ".service"], data: ["/var/lib/" + name] }}),
];
[
    file("/usr/local/bin/data-app", #{{ text: script, mode: 0o755 }}),
    app.call("settings", {settings}, "snapshot"),
    data("settings", #{{ path: "/var/lib/settings", version: {settings}, kind: "snapshot" }}),
    app.call("index", {index}, "rebuildable"),
    data("index", #{{ path: "/var/lib/index", version: {index}, kind: "rebuildable", rebuild: "the index is made again (minutes)" }}),
    {extra}
]
"##
    )
}

/// Runs `archy switch` paused at `point`, then kills it there.
fn switch_killed_at(n: &ArchyNode, point: &str) {
    n.switch_paused_after(NODE, point);
    wait_for(&format!("archy to pause at {point}"), 90, || {
        let log = n
            .node
            .exec(&["journalctl", "-u", "archy-under-test", "-o", "cat"]);
        String::from_utf8_lossy(&log.stdout).contains(&format!("pausing after {point}"))
    });
    n.kill_paused_switch();
}

#[test]
fn snapshot_data_is_restored_rebuildable_data_emptied_and_a_kill_leaves_whole_data() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("data-small");
    const SETTINGS: &str = "var/lib/settings/app.conf";
    const INDEX: &str = "var/lib/index/app.conf";

    n.write(&small_node(1, 1, ""));
    assert_eq!(run(&n, &["switch", NODE]).code, Some(0));
    wait_for("settings to write its format", 20, || {
        n.node.root_path().join(SETTINGS).exists()
    });
    // The operator's own setting is part of the data.
    std::fs::write(n.node.root_path().join(SETTINGS), "format 1\ntheme=dark\n")
        .expect("write the settings");
    let settings_v1 = read(&n, SETTINGS);

    // settings v2 migrates, then the switch fails its gate: the settings
    // are restored from the snapshot, byte for byte.
    let fails = r#"health_cmd(["false"], #{ within: "2s" })"#;
    n.write(&small_node(2, 1, fails));
    let plan = run(&n, &["switch", "--dry-run", NODE]);
    assert!(
        plan.out
            .contains("migrate  settings data 1 -> 2 (snapshot), snapshot first"),
        "{}",
        plan.out
    );
    let failed = run(&n, &["switch", NODE]);
    assert_eq!(failed.code, Some(2), "{}", failed.out);
    assert_eq!(read(&n, SETTINGS), settings_v1);
    assert!(n.active("settings.service"));

    // index v2 migrates (no snapshot: it is rebuildable)...
    n.write(&small_node(1, 2, ""));
    let g = run(&n, &["switch", NODE]);
    assert_eq!(g.code, Some(0), "{}", g.out);
    wait_for("index v2 to write its format", 20, || {
        read(&n, INDEX).contains("format 2")
    });
    // ...and going back empties it, saying what that costs.
    let back = run(&n, &["rollback"]);
    assert_eq!(back.code, Some(0), "{}", back.out);
    assert!(
        back.out.contains(
            "rebuild  index data 2 -> 1 (rebuildable): emptied; the index is made again (minutes)"
        ),
        "{}",
        back.out
    );
    wait_for("index v1 to write its format", 20, || {
        n.node.root_path().join(INDEX).exists()
    });
    assert_eq!(read(&n, INDEX), "format 1\n");

    // kill -9 once the snapshot is copied but not yet complete: recovery
    // rolls back, the settings untouched, no complete snapshot left.
    n.write(&small_node(2, 1, ""));
    switch_killed_at(&n, "copied settings");
    let recovered = run(&n, &["recover"]);
    assert_eq!(recovered.code, Some(2), "{}", recovered.out);
    assert_eq!(read(&n, SETTINGS), settings_v1);
    assert!(n.active("settings.service"));
    let complete = n.node.exec(&[
        "sh",
        "-c",
        "ls /var/lib/archy/snapshots/*/settings/meta.json",
    ]);
    let listed = String::from_utf8_lossy(&complete.stdout).to_string();
    // The first failed switch's snapshot only.
    assert_eq!(listed.lines().count(), 1, "{listed}");

    // kill -9 in the middle of a restore (the snapshot copied beside the
    // data, not yet swapped in): recovery restores it whole.
    let fails_again = r#"health_cmd(["false"], #{ within: "3s" })"#;
    n.write(&small_node(2, 1, fails_again));
    switch_killed_at(&n, "rollback copied settings");
    assert!(
        read(&n, SETTINGS).contains("format 2"),
        "the settings are still v2's before the swap"
    );
    let recovered = run(&n, &["recover"]);
    assert_eq!(recovered.code, Some(2), "{}", recovered.out);
    assert_eq!(read(&n, SETTINGS), settings_v1);
    assert!(
        !n.node
            .root_path()
            .join("var/lib/.settings.archy-restore")
            .exists()
    );
    assert!(n.active("settings.service"));
    let record = read(&n, "var/lib/archy/data/settings.json");
    assert!(record.contains("\"version\": 1"), "{record}");
}
