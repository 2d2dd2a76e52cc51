//! The ownership record's format: the record today's archy wrote before
//! records named their format (kept as a fixture) still reads, a newer
//! format is refused naming its writer, and a written record names its
//! format and reads back.

mod common;

use std::fs;

use archy_realize::{Error, OwnedKind};
use common::{Node, graph};

const OWNED_V1: &str = include_str!("fixtures/owned-v1.json");

#[test]
fn a_record_without_a_format_reads_as_it_is() {
    let n = Node::new();
    fs::create_dir_all(&n.state).unwrap();
    fs::write(n.state.join("owned.json"), OWNED_V1).unwrap();
    let record = n.realizer.record().unwrap();
    assert_eq!(record.version, 1);
    assert_eq!(record.paths.len(), 9);
    assert_eq!(
        record.paths["/etc/motd"].backup.as_deref(),
        Some("etc%2Fmotd")
    );
    assert_eq!(
        record.paths["/etc/systemd/system/app.service"].kind,
        OwnedKind::UnitFile
    );
    let link = &record.paths["/etc/systemd/system/multi-user.target.wants/app.service"];
    assert_eq!(link.unit.as_deref(), Some("app.service"));
    assert_eq!(record.secrets["app-rpc-password"].version, 2);
    assert!(record.owns("/var/lib/app"));
}

#[test]
fn a_newer_record_is_refused_naming_its_writer() {
    let n = Node::new();
    fs::create_dir_all(&n.state).unwrap();
    fs::write(
        n.state.join("owned.json"),
        r#"{"format": 2, "written_by": "archy 3.0.0", "version": 1, "paths": {}, "owners": []}"#,
    )
    .unwrap();
    let err = n.realizer.record().unwrap_err();
    assert!(matches!(err, Error::NewerRecord(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("has format 2, written by archy 3.0.0"),
        "{message}"
    );
    // Nothing is planned or applied over a record this archy cannot read.
    let g = graph(r#"[ file("/etc/app.conf", #{ text: "x" }) ]"#);
    assert!(matches!(
        n.realizer.observe(&g, false),
        Err(Error::NewerRecord(_))
    ));
    let plan = archy_plan::plan(None, &g, &archy_plan::Observed::default());
    assert!(matches!(
        n.realizer.apply_changes(&g, &plan),
        Err(Error::NewerRecord(_))
    ));
    assert!(!n.exists("/etc/app.conf"));
}

#[test]
fn a_written_record_names_its_format_and_reads_back() {
    let n = Node::new();
    let g = graph(r#"[ file("/etc/app.conf", #{ text: "x" }) ]"#);
    n.switch(None, &g).unwrap();
    let text = fs::read_to_string(n.state.join("owned.json")).unwrap();
    assert!(
        text.starts_with("{\n  \"format\": 1,\n  \"written_by\": \"archy "),
        "{text}"
    );
    // Still carrying `version`, which an older archy requires.
    assert!(text.contains("\"version\": 1"), "{text}");
    assert!(n.realizer.record().unwrap().owns("/etc/app.conf"));
}
