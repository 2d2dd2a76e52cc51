//! Instances of templates and drop-ins on a temp root: an instance gets
//! only its links, a drop-in only its file; removing a drop-in leaves its
//! unit's file and links alone, and a drop-in file archy did not write is
//! refused unless adopted (and given back when it leaves).

mod common;

use std::fs;

use archy_plan::ChangeOp;
use common::{Node, graph};

const DROPIN: &str = "/etc/systemd/system/app.service.d/extra.conf";

fn node(instances: &str, dropin: bool) -> archy_graph::Graph {
    let dropin = if dropin {
        r#"dropin("app.service", "extra", #{ Service: #{ Environment: "A=1" } }),"#
    } else {
        ""
    };
    graph(&format!(
        r#"[
            unit("app.service", #{{ Service: #{{ ExecStart: "/bin/app" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
            unit("w@.service", #{{ Service: #{{ ExecStart: "/bin/w %i" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
            {instances}
            {dropin}
        ]"#
    ))
}

#[test]
fn instances_are_linked_and_unlinked_and_have_no_file() {
    let n = Node::new();
    let g1 = node(
        r#"unit_instance("w@.service", "a"), unit_instance("w@.service", "b"),"#,
        false,
    );
    n.switch(None, &g1).unwrap();
    for i in ["a", "b"] {
        let link = format!("/etc/systemd/system/multi-user.target.wants/w@{i}.service");
        assert_eq!(
            fs::read_link(n.at(&link)).unwrap().to_string_lossy(),
            "../w@.service"
        );
        assert!(!n.exists(&format!("/etc/systemd/system/w@{i}.service")));
    }
    // The disk is as the generation says.
    assert!(n.realizer.drift(&g1).unwrap().is_empty());

    let g2 = node(r#"unit_instance("w@.service", "a"),"#, false);
    n.switch(Some(&g1), &g2).unwrap();
    assert!(n.exists("/etc/systemd/system/multi-user.target.wants/w@a.service"));
    assert!(!n.exists("/etc/systemd/system/multi-user.target.wants/w@b.service"));
    assert!(n.exists("/etc/systemd/system/multi-user.target.wants/app.service"));

    // A link removed by hand is drift.
    fs::remove_file(n.at("/etc/systemd/system/multi-user.target.wants/w@a.service")).unwrap();
    let drift = n.realizer.drift(&g2).unwrap();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0].to_string(), "unit w@a.service: disabled");
}

#[test]
fn a_dropin_is_written_and_removed_without_touching_its_unit() {
    let n = Node::new();
    let g1 = node("", true);
    n.switch(None, &g1).unwrap();
    let text = n.read(DROPIN);
    assert!(text.starts_with("# Written by archy."), "{text}");
    assert!(text.ends_with("[Service]\nEnvironment=A=1\n"), "{text}");
    assert!(n.realizer.drift(&g1).unwrap().is_empty());
    let unit = n.read("/etc/systemd/system/app.service");

    // Edited by hand: drift of the drop-in, not of the unit.
    fs::write(n.at(DROPIN), "[Service]\n").unwrap();
    let drift = n.realizer.drift(&g1).unwrap();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert!(drift[0].to_string().contains(DROPIN), "{drift:?}");

    let g2 = node("", false);
    n.switch(Some(&g1), &g2).unwrap();
    assert!(!n.exists(DROPIN));
    // archy made the folder for it: gone with it.
    assert!(!n.exists("/etc/systemd/system/app.service.d"));
    assert_eq!(n.read("/etc/systemd/system/app.service"), unit);
    assert!(n.exists("/etc/systemd/system/multi-user.target.wants/app.service"));
}

#[test]
fn a_dropin_archy_did_not_write_is_refused_unless_adopted() {
    let n = Node::new();
    fs::create_dir_all(n.at("/etc/systemd/system/app.service.d")).unwrap();
    fs::write(n.at(DROPIN), "[Service]\nEnvironment=MINE=1\n").unwrap();
    let g = node("", true);
    let p = n.plan(None, &g, false);
    assert_eq!(
        p.changes
            .iter()
            .filter(|c| c.op == ChangeOp::Refuse)
            .map(|c| c.key.id.as_str())
            .collect::<Vec<_>>(),
        vec![DROPIN]
    );
    assert!(n.switch(None, &g).is_err());
    assert_eq!(n.read(DROPIN), "[Service]\nEnvironment=MINE=1\n");
    n.switch_with(None, &g, true).unwrap();
    assert!(n.read(DROPIN).contains("Environment=A=1"));
    // When it leaves the description, the adopted file comes back.
    n.switch(Some(&g), &node("", false)).unwrap();
    assert_eq!(n.read(DROPIN), "[Service]\nEnvironment=MINE=1\n");
}

/// A template's `DefaultInstance=a` and a declared instance `a` want one
/// link: the instance owns it while it is declared, and when it leaves,
/// the template's own enablement keeps the link.
#[test]
fn a_default_instance_link_survives_its_declared_instance() {
    let n = Node::new();
    let node = |instances: &str| {
        graph(&format!(
            r#"[
                unit("w@.service", #{{ Service: #{{ ExecStart: "/bin/w %i" }}, Install: #{{ WantedBy: "multi-user.target", DefaultInstance: "a" }} }}),
                {instances}
            ]"#
        ))
    };
    let link = "/etc/systemd/system/multi-user.target.wants/w@a.service";
    let g1 = node(r#"unit_instance("w@.service", "a"),"#);
    n.switch(None, &g1).unwrap();
    assert_eq!(
        fs::read_link(n.at(link)).unwrap().to_string_lossy(),
        "../w@.service"
    );
    assert!(n.realizer.drift(&g1).unwrap().is_empty());

    let g2 = node("");
    n.switch(Some(&g1), &g2).unwrap();
    assert_eq!(
        fs::read_link(n.at(link)).unwrap().to_string_lossy(),
        "../w@.service"
    );
    let drift = n.realizer.drift(&g2).unwrap();
    assert!(drift.is_empty(), "{drift:?}");
}
