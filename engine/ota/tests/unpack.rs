//! Unpacking hand-made bundles that verify (they are signed by a trusted
//! key) but must not be installed: each is refused with an error naming
//! the entry, and leaves nothing behind.

mod support;

use std::fs;
use std::path::Path;

use archy_ota::OtaError;
use archy_ota::unpack::{self, Limits};
use archy_ota::verify;
use support::{NODE, Raw, dir, file, keys, link, manifest, node_only};

/// Crafts, checks the signature passes, unpacks; returns the result and
/// asserts that on error nothing is left next to the bundle.
fn unpack_crafted(entries: &[Raw], limits: &Limits) -> Result<tempfile::TempDir, OtaError> {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let (bundle, sig) = support::craft(work.path(), &keys.signing, entries);
    verify::verify(&bundle, &sig, &keys.trusted).expect("the crafted bundle is signed");
    let dest = work.path().join("release");
    match unpack::unpack(&bundle, &dest, limits) {
        Ok(_) => Ok(work),
        Err(e) => {
            assert!(!dest.exists(), "dest must not exist after {e:?}");
            assert_eq!(
                support::listing(work.path()),
                ["crafted.tar.gz"],
                "after {e:?}"
            );
            Err(e)
        }
    }
}

fn refused(entries: &[Raw]) -> OtaError {
    unpack_crafted(entries, &Limits::default()).expect_err("must be refused")
}

fn with(extra: Raw) -> Vec<Raw> {
    let mut entries = node_only();
    entries.push(extra);
    entries
}

fn assert_unsafe(err: &OtaError, name: &str, says: &str) {
    match err {
        OtaError::UnsafeEntry { entry, reason } => {
            assert_eq!(entry, name);
            assert!(reason.contains(says), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(name), "{err}");
}

#[test]
fn a_minimal_crafted_bundle_unpacks() {
    let work = unpack_crafted(&node_only(), &Limits::default()).expect("unpack");
    let dest = work.path().join("release");
    assert_eq!(fs::read(dest.join("node.rhai")).expect("node"), NODE);
    assert_eq!(support::listing(&dest), ["node.rhai"]);
}

#[test]
fn path_traversal_is_refused() {
    let err = refused(&with(file("../evil", 0o644, b"x")));
    assert_unsafe(&err, "../evil", "\"..\"");
}

#[test]
fn a_non_utf8_name_is_refused() {
    let mut entry = file("x", 0o644, b"x");
    entry.name = b"stdlib/\xff.rhai".to_vec();
    let err = refused(&with(entry));
    assert!(
        matches!(err, OtaError::UnsafeEntry { ref reason, .. } if reason.contains("UTF-8")),
        "{err:?}"
    );
}

#[test]
fn a_directory_with_content_is_refused() {
    let mut stdlib = dir("stdlib", 0o755);
    stdlib.data = vec![0; 4096];
    let err = refused(&with(stdlib));
    assert_unsafe(&err, "stdlib", "carries content");
}

#[test]
fn an_absolute_path_is_refused() {
    let err = refused(&with(file("/etc/x", 0o644, b"x")));
    assert_unsafe(&err, "/etc/x", "absolute");
}

#[test]
fn a_symlink_to_an_absolute_path_is_refused() {
    let mut entries = with(dir("stdlib", 0o755));
    entries.push(link(
        "stdlib/passwd",
        tar::EntryType::Symlink,
        "/etc/passwd",
    ));
    let err = refused(&entries);
    assert_unsafe(
        &err,
        "stdlib/passwd",
        "symbolic link to \"/etc/passwd\", which points outside",
    );
}

#[test]
fn a_symlink_out_of_the_tree_is_refused() {
    let mut entries = with(dir("stdlib", 0o755));
    entries.push(link("stdlib/up", tar::EntryType::Symlink, "../../x"));
    let err = refused(&entries);
    assert_unsafe(
        &err,
        "stdlib/up",
        "symbolic link to \"../../x\", which points outside",
    );
}

#[test]
fn a_hardlink_is_refused() {
    let mut entries = with(dir("stdlib", 0o755));
    entries.push(link("stdlib/h", tar::EntryType::Link, "node.rhai"));
    let err = refused(&entries);
    assert_unsafe(&err, "stdlib/h", "hard link to \"node.rhai\"");
}

#[test]
fn a_character_device_is_refused() {
    let mut entries = with(dir("stdlib", 0o755));
    let mut device = file("stdlib/null", 0o666, b"");
    device.kind = tar::EntryType::Char;
    entries.push(device);
    let err = refused(&entries);
    assert_unsafe(&err, "stdlib/null", "character device");
}

#[test]
fn a_fifo_is_refused() {
    let mut entries = with(dir("stdlib", 0o755));
    let mut fifo = file("stdlib/pipe", 0o644, b"");
    fifo.kind = tar::EntryType::Fifo;
    entries.push(fifo);
    let err = refused(&entries);
    assert_unsafe(&err, "stdlib/pipe", "named pipe");
}

#[test]
fn a_0700_directory_is_refused() {
    let err = refused(&with(dir("stdlib", 0o700)));
    assert_unsafe(&err, "stdlib", "mode 700");
}

#[test]
fn a_setuid_file_is_refused() {
    let entries = vec![
        manifest(&[("node.rhai", NODE, 0o755)]),
        file("node.rhai", 0o4755, NODE),
    ];
    let err = refused(&entries);
    assert_unsafe(&err, "node.rhai", "mode 4755");
}

#[test]
fn content_that_differs_from_the_manifest_is_refused() {
    let entries = vec![
        manifest(&[("node.rhai", b"good", 0o644)]),
        file("node.rhai", 0o644, b"evil"),
    ];
    let err = refused(&entries);
    match &err {
        OtaError::ContentMismatch { entry, reason } => {
            assert_eq!(entry, "node.rhai");
            assert!(reason.contains("blake3"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_size_that_differs_from_the_manifest_is_refused() {
    let entries = vec![
        manifest(&[("node.rhai", b"good", 0o644)]),
        file("node.rhai", 0o644, b"longer"),
    ];
    let err = refused(&entries);
    assert!(
        matches!(err, OtaError::ContentMismatch { ref reason, .. } if reason.contains("bytes")),
        "{err:?}"
    );
}

#[test]
fn a_file_not_in_the_manifest_is_refused() {
    let mut entries = with(dir("stdlib", 0o755));
    entries.push(file("stdlib/extra.rhai", 0o644, b"x"));
    let err = refused(&entries);
    assert!(
        matches!(err, OtaError::NotInManifest { ref entry } if entry == "stdlib/extra.rhai"),
        "{err:?}"
    );
}

#[test]
fn a_manifest_file_missing_from_the_bundle_is_refused() {
    let entries = vec![
        manifest(&[("node.rhai", NODE, 0o644), ("stdlib/a.rhai", b"a", 0o644)]),
        file("node.rhai", 0o644, NODE),
    ];
    let err = refused(&entries);
    match &err {
        OtaError::MissingFiles { missing } => {
            assert_eq!(*missing, vec!["stdlib/a.rhai".to_string()])
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_manifest_that_is_not_first_is_refused() {
    let entries = vec![
        file("node.rhai", 0o644, NODE),
        manifest(&[("node.rhai", NODE, 0o644)]),
    ];
    let err = refused(&entries);
    assert!(
        matches!(err, OtaError::Manifest { ref reason } if reason.contains("\"node.rhai\"")),
        "{err:?}"
    );
}

#[test]
fn a_manifest_of_another_format_is_refused() {
    let mut entries = node_only();
    let json = String::from_utf8(entries[0].data.clone()).expect("utf8");
    // Format 3, with a field this archy does not know: the format is what
    // the refusal names, so the operator knows to update archy.
    entries[0].data = json
        .replace("\"format\":1", "\"format\":3,\"later\":true")
        .into_bytes();
    let err = refused(&entries);
    assert!(
        matches!(err, OtaError::Manifest { ref reason } if reason.contains("format 3") && reason.contains("update archy first")),
        "{err:?}"
    );
}

#[test]
fn a_file_over_max_file_is_refused() {
    let big = vec![b'x'; 100];
    let entries = vec![
        manifest(&[("node.rhai", &big, 0o644)]),
        file("node.rhai", 0o644, &big),
    ];
    let limits = Limits {
        max_file: 50,
        ..Limits::default()
    };
    let err = unpack_crafted(&entries, &limits).expect_err("too big");
    assert!(
        matches!(err, OtaError::TooLarge { limit: 50, ref what, .. } if what.contains("node.rhai")),
        "{err:?}"
    );
}

#[test]
fn a_total_over_max_total_is_refused() {
    let part = vec![b'x'; 60];
    let entries = vec![
        manifest(&[("node.rhai", &part, 0o644), ("stdlib/a.rhai", &part, 0o644)]),
        file("node.rhai", 0o644, &part),
        dir("stdlib", 0o755),
        file("stdlib/a.rhai", 0o644, &part),
    ];
    let limits = Limits {
        max_total: 100,
        ..Limits::default()
    };
    let err = unpack_crafted(&entries, &limits).expect_err("too big");
    assert!(
        matches!(err, OtaError::TooLarge { limit: 100, .. }),
        "{err:?}"
    );
}

#[test]
fn a_header_claiming_a_huge_file_is_refused_before_reading() {
    // Refused from the header, before a byte of it is written or read.
    let mut bomb = file("node.rhai", 0o644, b"");
    bomb.size = Some(1 << 40);
    let entries = vec![manifest(&[("node.rhai", NODE, 0o644)]), bomb];
    let err = refused(&entries);
    assert!(matches!(err, OtaError::TooLarge { .. }), "{err:?}");
}

#[test]
fn too_many_entries_are_refused() {
    let mut entries = node_only();
    entries.push(dir("stdlib", 0o755));
    entries.push(dir("stdlib/a", 0o755));
    entries.push(dir("stdlib/b", 0o755));
    let limits = Limits {
        max_entries: 4,
        ..Limits::default()
    };
    let err = unpack_crafted(&entries, &limits).expect_err("too many");
    assert!(
        matches!(err, OtaError::TooLarge { limit: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn a_duplicate_entry_is_refused() {
    let mut entries = node_only();
    entries.push(file("node.rhai", 0o644, NODE));
    let err = refused(&entries);
    assert_unsafe(&err, "node.rhai", "appears twice");
}

#[test]
fn a_file_before_its_directory_is_refused() {
    let entries = vec![
        manifest(&[("node.rhai", NODE, 0o644), ("stdlib/a.rhai", b"a", 0o644)]),
        file("node.rhai", 0o644, NODE),
        file("stdlib/a.rhai", 0o644, b"a"),
    ];
    let err = refused(&entries);
    assert_unsafe(&err, "stdlib/a.rhai", "before its directory");
}

#[test]
fn a_directory_outside_the_node_tree_is_refused() {
    let err = refused(&with(dir("etc", 0o755)));
    assert_unsafe(&err, "etc", "outside");
}

#[test]
fn a_pax_header_is_refused() {
    let mut pax = file("PaxHeaders/node.rhai", 0o644, b"20 path=/etc/evil\n");
    pax.kind = tar::EntryType::XHeader;
    let err = refused(&with(pax));
    assert_unsafe(&err, "PaxHeaders/node.rhai", "pax");
}

#[test]
fn an_existing_dest_is_refused() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let (bundle, _) = support::craft(work.path(), &keys.signing, &node_only());
    let dest = work.path().join("release");
    fs::create_dir(&dest).expect("dest");
    let err = unpack::unpack(&bundle, &dest, &Limits::default()).expect_err("exists");
    assert!(
        matches!(err, OtaError::DestExists { ref path } if path == &dest),
        "{err:?}"
    );
    assert!(support::listing(&dest).is_empty());
    assert!(!Path::new(&work.path().join("release/node.rhai")).exists());
}
