//! Packing a node source folder, and the whole path a release takes:
//! keygen, pack, verify, unpack.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use archy_ota::OtaError;
use archy_ota::pack::{self, PackReport, PackRequest};
use archy_ota::publish::PackObject;
use archy_ota::unpack::{self, Limits};
use archy_ota::verify;
use support::{Keys, keys, mode_of, source_tree};

fn pack_to(src: &Path, keys: &Keys, out: &Path) -> Result<PackReport, OtaError> {
    let (version, min_archy) = support::release("1.2.0");
    pack::build(&PackRequest {
        src,
        key: &keys.signing,
        version,
        channel: "stable".to_string(),
        min_archy,
        out,
        objects: &[],
    })
}

#[test]
fn a_packed_tree_verifies_and_unpacks_with_normalized_modes() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let out = work.path().join("out/archy-1.2.0.tar.gz");
    fs::create_dir(out.parent().expect("parent")).expect("out dir");

    let report = pack_to(&src, &keys, &out).expect("pack");
    assert_eq!(report.bundle, out);
    assert_eq!(
        report.signature,
        work.path().join("out/archy-1.2.0.tar.gz.minisig")
    );
    assert_eq!(report.files, 5);
    assert_eq!(report.bytes, fs::metadata(&out).expect("bundle").len());
    assert_eq!(mode_of(&out), 0o644);
    assert_eq!(
        support::listing(&work.path().join("out")),
        ["archy-1.2.0.tar.gz", "archy-1.2.0.tar.gz.minisig"]
    );

    let signature = fs::read_to_string(&report.signature).expect("sig");
    let verified = verify::verify(&out, &signature, &keys.trusted).expect("verify");
    assert_eq!(verified.key_id, keys.signing.key_id());
    assert_eq!(verified.release.version.to_string(), "1.2.0");
    assert_eq!(verified.release.channel, "stable");
    assert_eq!(verified.release.size, report.bytes);
    assert_eq!(verified.release.blake3, report.blake3);

    let dest = work.path().join("release");
    let manifest = unpack::unpack(&out, &dest, &Limits::default()).expect("unpack");
    assert_eq!(manifest.format, 1);
    assert_eq!(manifest.version.to_string(), "1.2.0");
    assert_eq!(manifest.min_archy.to_string(), "0.1.0");
    assert_eq!(manifest.channel, "stable");
    let listed: Vec<&str> = manifest.files.keys().map(String::as_str).collect();
    assert_eq!(
        listed,
        [
            "apps/x/Containerfile",
            support::LONG_PATH,
            "apps/x/entry.sh",
            "node.rhai",
            "stdlib/a.rhai"
        ]
    );
    let node = &manifest.files["node.rhai"];
    let node_bytes = fs::read(src.join("node.rhai")).expect("node");
    assert_eq!(node.size, node_bytes.len() as u64);
    assert_eq!(node.blake3, blake3::hash(&node_bytes).to_hex().to_string());
    assert_eq!(manifest.files["apps/x/entry.sh"].mode, 0o755);
    assert_eq!(manifest.files["apps/x/Containerfile"].mode, 0o644);

    for path in manifest.files.keys() {
        assert_eq!(
            fs::read(dest.join(path)).expect("unpacked file"),
            fs::read(src.join(path)).expect("source file"),
            "{path}"
        );
    }
    assert_eq!(mode_of(&dest), 0o755);
    for dir in ["stdlib", "apps", "apps/x", "apps/x/context"] {
        assert_eq!(mode_of(&dest.join(dir)), 0o755, "{dir}");
    }
    assert_eq!(mode_of(&dest.join("apps/x/entry.sh")), 0o755);
    for file in [
        "node.rhai",
        "stdlib/a.rhai",
        "apps/x/Containerfile",
        support::LONG_PATH,
    ] {
        assert_eq!(mode_of(&dest.join(file)), 0o644, "{file}");
    }
    assert!(!dest.join("manifest.json").exists());
    // Only the release and the bundle: no temp folder left beside them.
    assert_eq!(support::listing(work.path()), ["out", "release", "src"]);
}

#[test]
fn packing_twice_gives_identical_bytes() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let first = work.path().join("a.tar.gz");
    let second = work.path().join("b.tar.gz");
    let a = pack_to(&src, &keys, &first).expect("pack a");
    // A touched file (new mtime) must not change the bytes either.
    let content = fs::read(src.join("node.rhai")).expect("read");
    fs::write(src.join("node.rhai"), content).expect("rewrite");
    let b = pack_to(&src, &keys, &second).expect("pack b");
    assert_eq!(fs::read(&first).expect("a"), fs::read(&second).expect("b"));
    assert_eq!(a.blake3, b.blake3);
}

#[test]
fn a_tree_without_node_rhai_is_refused() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir_all(src.join("stdlib")).expect("src");
    let out = work.path().join("out.tar.gz");
    let err = pack_to(&src, &keys, &out).expect_err("no node.rhai");
    match &err {
        OtaError::InvalidSource { path, .. } => assert!(path.ends_with("node.rhai")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("node.rhai"), "{err}");
    assert!(!out.exists());
}

fn refused_source(prepare: impl FnOnce(&Path)) -> (OtaError, tempfile::TempDir) {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    prepare(&src);
    let out_dir = work.path().join("out");
    fs::create_dir(&out_dir).expect("out");
    let err = pack_to(&src, &keys, &out_dir.join("r.tar.gz")).expect_err("must refuse");
    // Nothing left: no bundle, no signature, no temp file.
    assert!(
        support::listing(&out_dir).is_empty(),
        "{:?}",
        support::listing(&out_dir)
    );
    (err, work)
}

#[test]
fn a_symlink_is_refused_with_the_fix() {
    let (err, _work) = refused_source(|src| {
        symlink("a.rhai", src.join("stdlib/link.rhai")).expect("symlink");
    });
    match &err {
        OtaError::InvalidSource { path, reason } => {
            assert!(path.ends_with("stdlib/link.rhai"));
            assert!(reason.contains("replace it with a copy"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_symlinked_top_folder_is_refused() {
    let (err, work) = refused_source(|src| {
        fs::remove_dir_all(src.join("stdlib")).expect("rm");
        let elsewhere = src.parent().expect("parent").join("elsewhere");
        fs::create_dir(&elsewhere).expect("elsewhere");
        symlink(&elsewhere, src.join("stdlib")).expect("symlink");
    });
    assert!(
        matches!(err, OtaError::InvalidSource { ref path, .. } if path.ends_with("stdlib")),
        "{err:?}"
    );
    drop(work);
}

#[test]
fn a_fifo_is_refused() {
    let (err, _work) = refused_source(|src| {
        let status = Command::new("mkfifo")
            .arg(src.join("apps/x/pipe"))
            .status()
            .expect("run mkfifo");
        assert!(status.success());
    });
    match &err {
        OtaError::InvalidSource { path, reason } => {
            assert!(path.ends_with("apps/x/pipe"));
            assert!(reason.contains("named pipe"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_name_with_a_backslash_is_refused() {
    let (err, _work) = refused_source(|src| {
        fs::write(src.join("stdlib/bad\\name.rhai"), "x").expect("write");
    });
    match &err {
        OtaError::InvalidSource { path, reason } => {
            assert!(path.ends_with("stdlib/bad\\name.rhai"));
            assert!(
                reason.contains("backslash") && reason.contains("rename it"),
                "{reason}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_name_with_a_control_character_is_refused() {
    let (err, _work) = refused_source(|src| {
        fs::write(src.join("stdlib/bell\u{7}.rhai"), "x").expect("write");
    });
    assert!(
        matches!(err, OtaError::InvalidSource { ref reason, .. } if reason.contains("control character")),
        "{err:?}"
    );
}

#[test]
fn a_non_utf8_name_is_refused() {
    let (err, _work) = refused_source(|src| {
        let name = OsStr::from_bytes(b"stdlib/\xff.rhai");
        fs::write(src.join(name), "x").expect("write");
    });
    assert!(
        matches!(err, OtaError::InvalidSource { ref reason, .. } if reason.contains("UTF-8")),
        "{err:?}"
    );
}

#[test]
fn a_file_over_the_limit_is_refused() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let out = work.path().join("r.tar.gz");
    let (version, min_archy) = support::release("1.0.0");
    let limits = Limits {
        max_file: 10,
        ..Limits::default()
    };
    let err = pack::build_with_limits(
        &PackRequest {
            src: &src,
            key: &keys.signing,
            version,
            channel: "stable".to_string(),
            min_archy,
            out: &out,
            objects: &[],
        },
        &limits,
    )
    .expect_err("too large");
    assert!(
        matches!(err, OtaError::TooLarge { limit: 10, .. }),
        "{err:?}"
    );
    assert!(!out.exists());
}

#[test]
fn an_output_not_ending_in_tar_gz_is_refused() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let out = work.path().join("release.tgz");
    let err = pack_to(&src, &keys, &out).expect_err("bad name");
    assert!(matches!(err, OtaError::InvalidRequest { .. }), "{err:?}");
    assert!(err.to_string().contains(".tar.gz"));
    assert!(support::listing(work.path()) == ["src"]);
}

#[test]
fn a_channel_that_cannot_go_in_the_comment_is_refused() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let out = work.path().join("r.tar.gz");
    let (version, min_archy) = support::release("1.0.0");
    let err = pack::build(&PackRequest {
        src: &src,
        key: &keys.signing,
        version,
        channel: "stable blake3=00".to_string(),
        min_archy,
        out: &out,
        objects: &[],
    })
    .expect_err("bad channel");
    assert!(matches!(err, OtaError::InvalidRequest { .. }), "{err:?}");
    assert!(!out.exists());
}

/// Writes `bytes` as `name` under `dir` and returns it as an object to pack.
fn object(dir: &Path, name: &str, bytes: &[u8]) -> PackObject {
    let path = dir.join(format!("{name}.src"));
    fs::write(&path, bytes).expect("object source");
    PackObject {
        name: name.to_string(),
        path,
    }
}

fn pack_with(
    src: &Path,
    keys: &Keys,
    out: &Path,
    version: &str,
    objects: &[PackObject],
) -> Result<PackReport, OtaError> {
    let (version, _) = support::release(version);
    pack::build(&PackRequest {
        src,
        key: &keys.signing,
        version,
        channel: "stable".to_string(),
        // Older than the first archy that reads objects: raised.
        min_archy: semver::Version::new(0, 0, 1),
        out,
        objects,
    })
}

#[test]
fn software_is_published_beside_the_bundle_once_per_content_and_listed() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let out_dir = work.path().join("out");
    fs::create_dir(&out_dir).expect("out");
    let objects = [
        object(work.path(), "validator+x", b"#!/bin/sh\necho v1\n"),
        object(work.path(), "tree", b"a tree manifest"),
        // The same bytes under a second name: one file, two listings.
        object(work.path(), "validator", b"#!/bin/sh\necho v1\n"),
    ];
    let out = out_dir.join("r1.tar.gz");
    let report = pack_with(&src, &keys, &out, "1.0.0", &objects).expect("pack");
    assert_eq!((report.objects, report.objects_written), (2, 2));
    assert_eq!(report.object_bytes, 18 + 15);
    assert_eq!(report.min_archy, archy_ota::manifest::objects_min_archy());

    let hash = |b: &[u8]| blake3::hash(b).to_hex().to_string();
    let (v1, tree) = (hash(b"#!/bin/sh\necho v1\n"), hash(b"a tree manifest"));
    let mut expected = vec![v1.clone(), tree.clone()];
    expected.sort();
    assert_eq!(support::listing(&out_dir.join("objects")), expected);
    assert_eq!(
        fs::read(out_dir.join("objects").join(&v1)).expect("object"),
        b"#!/bin/sh\necho v1\n"
    );
    assert_eq!(mode_of(&out_dir.join("objects").join(&v1)), 0o644);
    // Nothing else beside the bundle: the temp files went.
    assert_eq!(
        support::listing(&out_dir),
        ["objects", "r1.tar.gz", "r1.tar.gz.minisig"]
    );

    // The manifest lists each name with its hash and size; the signed
    // comment needs an archy that reads them.
    let signature = fs::read_to_string(&report.signature).expect("sig");
    let verified = verify::verify(&out, &signature, &keys.trusted).expect("verify");
    assert_eq!(verified.release.min_archy, report.min_archy);
    let manifest = unpack::read_manifest(&out).expect("manifest");
    assert_eq!(manifest.format, archy_ota::manifest::FORMAT_OBJECTS);
    let listed: Vec<(&str, &str, u64)> = manifest
        .objects
        .iter()
        .map(|o| (o.blake3.as_str(), o.name.as_str(), o.size))
        .collect();
    let mut want = vec![
        (v1.as_str(), "validator", 18),
        (v1.as_str(), "validator+x", 18),
        (tree.as_str(), "tree", 15),
    ];
    want.sort();
    assert_eq!(listed, want);
    let dest = work.path().join("unpacked");
    assert_eq!(
        unpack::unpack(&out, &dest, &Limits::default()).expect("unpack"),
        manifest
    );

    // Release 2 changes one object: only that one is written; release 1's
    // objects stay for nodes still on it.
    let objects2 = [
        object(work.path(), "validator+x", b"#!/bin/sh\necho v2\n"),
        object(work.path(), "tree", b"a tree manifest"),
    ];
    let report2 =
        pack_with(&src, &keys, &out_dir.join("r2.tar.gz"), "2.0.0", &objects2).expect("pack 2");
    assert_eq!((report2.objects, report2.objects_written), (2, 1));
    assert_eq!(support::listing(&out_dir.join("objects")).len(), 3);

    // A damaged copy beside the bundle is written again, not trusted.
    fs::write(out_dir.join("objects").join(&tree), b"damaged").expect("damage");
    let report3 =
        pack_with(&src, &keys, &out_dir.join("r3.tar.gz"), "3.0.0", &objects2).expect("pack 3");
    assert_eq!(report3.objects_written, 1);
    assert_eq!(
        fs::read(out_dir.join("objects").join(&tree)).expect("object"),
        b"a tree manifest"
    );
}

#[test]
fn the_signature_covers_the_listed_objects() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let out = work.path().join("r.tar.gz");
    let objects = [object(work.path(), "hello+x", b"hello")];
    let report = pack_with(&src, &keys, &out, "1.0.0", &objects).expect("pack");
    let signature = fs::read_to_string(&report.signature).expect("sig");

    // The same bundle with another object's hash in its manifest, under
    // the original signature: refused.
    let dest = work.path().join("unpacked");
    let mut manifest = unpack::unpack(&out, &dest, &Limits::default()).expect("unpack");
    manifest.objects[0].blake3 = blake3::hash(b"evil").to_hex().to_string();
    let json = manifest.to_json().expect("json");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "manifest.json", json.as_slice())
        .expect("manifest");
    tar.append_dir_all(".", &dest).expect("tree");
    let forged = tar.into_inner().expect("tar").finish().expect("gz");
    fs::write(&out, forged).expect("forge");
    assert!(verify::verify(&out, &signature, &keys.trusted).is_err());
}

#[test]
fn an_object_name_no_store_holds_is_refused_before_anything_is_written() {
    let keys = keys();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let out_dir = work.path().join("out");
    fs::create_dir(&out_dir).expect("out");
    let objects = [object(work.path(), ".hidden", b"x")];
    let err =
        pack_with(&src, &keys, &out_dir.join("r.tar.gz"), "1.0.0", &objects).expect_err("refused");
    assert!(err.to_string().contains("object name"), "{err}");
    assert!(support::listing(&out_dir).is_empty());
}
