//! Template instances and drop-ins on a real node: a template with two
//! instances, each reading its own config file through `%i`, and a drop-in
//! for a unit archy does not own (one made by hand in the node). Needs
//! root; see `support/node.rs`.

mod support;

use std::process::Output;

use support::archy_node::ArchyNode;
use support::node::TestNode;

const NODE: &str = "/etc/archy/node.rhai";
const HANDMADE: &str = "/etc/systemd/system/handmade.service";
const DROPIN: &str = "/etc/systemd/system/handmade.service.d/archy-env.conf";

/// The node: configs `alpha` and `beta`, the template (with `extra` in its
/// [Service]), the instances `instances`, and, when `greeting` is some,
/// a drop-in for the hand-made unit setting it.
fn description(
    alpha: &str,
    beta: &str,
    extra: &str,
    instances: &[&str],
    greeting: Option<&str>,
) -> String {
    let instances: String = instances
        .iter()
        .map(|i| format!("    unit_instance(\"inst@.service\", \"{i}\"),\n"))
        .collect();
    let dropin = greeting
        .map(|g| {
            format!(
                "    dropin(\"handmade.service\", \"archy-env\", #{{ Service: #{{ Environment: \"GREETING={g}\" }} }}),\n"
            )
        })
        .unwrap_or_default();
    format!(
        r#"[
    file("/etc/inst/alpha.conf", #{{ text: "{alpha}\n" }}),
    file("/etc/inst/beta.conf", #{{ text: "{beta}\n" }}),
    unit("inst@.service", #{{
        Service: #{{
            ExecStart: "/bin/sh -c 'cp /etc/inst/%i.conf /run/inst-%i.seen; exec sleep infinity'",
            {extra}
        }},
        Install: #{{ WantedBy: "multi-user.target" }},
    }}),
{instances}{dropin}]"#
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

trait InstanceNode {
    fn switch_ok(&self) -> String;
    fn pid(&self, unit: &str) -> String;
    fn read(&self, path: &str) -> Option<String>;
    fn exists(&self, path: &str) -> bool;
}

impl InstanceNode for ArchyNode {
    fn switch_ok(&self) -> String {
        let out = self.archy(&["switch", NODE]);
        let t = text(&out);
        assert!(out.status.success(), "switch failed:\n{t}");
        t
    }

    fn pid(&self, unit: &str) -> String {
        self.prop(unit, "MainPID")
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.node.root_path().join(path.trim_start_matches('/'))).ok()
    }

    fn exists(&self, path: &str) -> bool {
        std::fs::symlink_metadata(self.node.root_path().join(path.trim_start_matches('/'))).is_ok()
    }
}

#[test]
fn instances_and_a_dropin_for_a_unit_archy_does_not_own() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("instances");

    // A unit archy does not own, made by hand and running.
    let handmade = "[Unit]\nDescription=made by hand\n\n[Service]\nExecStart=/bin/sh -c 'echo \"greeting=$GREETING\"; exec sleep infinity'\n";
    std::fs::write(
        n.node.root_path().join(HANDMADE.trim_start_matches('/')),
        handmade,
    )
    .expect("write the hand-made unit");
    n.node.exec_ok(&["systemctl", "daemon-reload"]);
    n.node.exec_ok(&["systemctl", "start", "handmade.service"]);
    let hand_pid = n.pid("handmade.service");

    // Generation 1: both instances run, each with its own config, enabled
    // for boot; the drop-in is written and the hand-made unit restarted.
    n.write(&description(
        "a=1",
        "b=1",
        "",
        &["alpha", "beta"],
        Some("one"),
    ));
    let out = n.switch_ok();
    assert!(out.contains("start    inst@alpha.service"), "{out}");
    assert!(out.contains("start    inst@beta.service"), "{out}");
    assert!(
        out.contains("restart  handmade.service") && out.contains("drop-in archy-env [Service]"),
        "{out}"
    );
    for (i, conf) in [("alpha", "a=1\n"), ("beta", "b=1\n")] {
        let unit = format!("inst@{i}.service");
        assert!(n.active(&unit), "{unit} is not active");
        assert_eq!(
            n.read(&format!("/run/inst-{i}.seen")).as_deref(),
            Some(conf)
        );
        let link = format!("/etc/systemd/system/multi-user.target.wants/{unit}");
        assert!(n.exists(&link), "{link} is missing");
        assert_eq!(n.prop(&unit, "UnitFileState"), "enabled");
    }
    assert!(n.active("handmade.service"));
    assert_ne!(n.pid("handmade.service"), hand_pid);
    assert_eq!(n.prop("handmade.service", "Environment"), "GREETING=one");
    let dropin = n.read(DROPIN).expect("the drop-in is written");
    assert!(dropin.starts_with("# Written by archy."), "{dropin}");
    assert!(
        dropin.contains("[Service]\nEnvironment=GREETING=one\n"),
        "{dropin}"
    );
    assert_eq!(n.read(HANDMADE).as_deref(), Some(handmade));
    let out = n.archy(&["status"]);
    assert!(out.status.success(), "status is not clean:\n{}", text(&out));

    // One config changes: only its instance restarts.
    let (alpha, beta) = (n.pid("inst@alpha.service"), n.pid("inst@beta.service"));
    let hand_pid = n.pid("handmade.service");
    n.write(&description(
        "a=2",
        "b=1",
        "",
        &["alpha", "beta"],
        Some("one"),
    ));
    let out = n.switch_ok();
    assert!(out.contains("restart  inst@alpha.service"), "{out}");
    assert_ne!(n.pid("inst@alpha.service"), alpha);
    assert_eq!(n.pid("inst@beta.service"), beta);
    assert_eq!(n.pid("handmade.service"), hand_pid);
    assert_eq!(n.read("/run/inst-alpha.seen").as_deref(), Some("a=2\n"));

    // The template changes: both instances restart.
    let (alpha, beta) = (n.pid("inst@alpha.service"), n.pid("inst@beta.service"));
    n.write(&description(
        "a=2",
        "b=1",
        "Environment: \"V=2\",",
        &["alpha", "beta"],
        Some("one"),
    ));
    let out = n.switch_ok();
    assert_ne!(n.pid("inst@alpha.service"), alpha, "{out}");
    assert_ne!(n.pid("inst@beta.service"), beta, "{out}");
    assert_eq!(n.prop("inst@beta.service", "Environment"), "V=2");

    // An instance stopped by hand is drift; reconcile starts it.
    n.node.exec_ok(&["systemctl", "stop", "inst@beta.service"]);
    let out = n.archy(&["status"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("inst@beta.service"), "{}", text(&out));
    let out = n.archy(&["reconcile"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(n.active("inst@beta.service"));
    let out = n.archy(&["status"]);
    assert!(out.status.success(), "{}", text(&out));

    // The drop-in changes: its unit restarts with it; its file is not
    // touched.
    let hand_pid = n.pid("handmade.service");
    let alpha = n.pid("inst@alpha.service");
    n.write(&description(
        "a=2",
        "b=1",
        "Environment: \"V=2\",",
        &["alpha", "beta"],
        Some("two"),
    ));
    let out = n.switch_ok();
    assert!(out.contains("restart  handmade.service"), "{out}");
    assert_ne!(n.pid("handmade.service"), hand_pid);
    assert_eq!(n.prop("handmade.service", "Environment"), "GREETING=two");
    assert_eq!(n.pid("inst@alpha.service"), alpha);
    assert_eq!(n.read(HANDMADE).as_deref(), Some(handmade));

    // A unit that is down stays down when its drop-in changes; its next
    // start reads it.
    n.node.exec_ok(&["systemctl", "stop", "handmade.service"]);
    n.write(&description(
        "a=2",
        "b=1",
        "Environment: \"V=2\",",
        &["alpha", "beta"],
        Some("three"),
    ));
    let out = n.switch_ok();
    assert!(!out.contains("restart  handmade.service"), "{out}");
    assert!(!n.active("handmade.service"), "{out}");
    n.node.exec_ok(&["systemctl", "start", "handmade.service"]);
    assert_eq!(n.prop("handmade.service", "Environment"), "GREETING=three");

    // beta and the drop-in leave the description: beta is stopped and no
    // longer enabled; the drop-in and the folder archy made for it are
    // gone, its unit restarted without it, its own file as it was.
    let hand_pid = n.pid("handmade.service");
    n.write(&description(
        "a=2",
        "b=1",
        "Environment: \"V=2\",",
        &["alpha"],
        None,
    ));
    let out = n.switch_ok();
    assert!(out.contains("stop     inst@beta.service"), "{out}");
    assert!(!n.active("inst@beta.service"));
    assert!(n.active("inst@alpha.service"));
    assert!(!n.exists("/etc/systemd/system/multi-user.target.wants/inst@beta.service"));
    assert!(n.exists("/etc/systemd/system/multi-user.target.wants/inst@alpha.service"));
    assert!(!n.exists(DROPIN), "{out}");
    assert!(!n.exists("/etc/systemd/system/handmade.service.d"), "{out}");
    assert!(n.active("handmade.service"));
    assert_ne!(n.pid("handmade.service"), hand_pid);
    assert_eq!(n.prop("handmade.service", "Environment"), "");
    assert_eq!(n.read(HANDMADE).as_deref(), Some(handmade));
    let out = n.archy(&["status"]);
    assert!(out.status.success(), "status is not clean:\n{}", text(&out));
}
