//! Checking a bundle's signature: the ways it must fail, and the keys.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use archy_ota::OtaError;
use archy_ota::keys::{self, TrustedKeys};
use archy_ota::pack::{self, PackRequest};
use archy_ota::verify;
use support::{Keys, keys, source_tree};

/// Packs the test tree; returns (workdir, bundle, signature text).
fn packed(keys: &Keys) -> (tempfile::TempDir, PathBuf, String) {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    fs::create_dir(&src).expect("src");
    source_tree(&src);
    let out = work.path().join("r.tar.gz");
    let (version, min_archy) = support::release("2.0.0");
    let report = pack::build(&PackRequest {
        src: &src,
        key: &keys.signing,
        version,
        channel: "beta".to_string(),
        min_archy,
        out: &out,
        objects: &[],
    })
    .expect("pack");
    let sig = fs::read_to_string(report.signature).expect("sig");
    (work, out, sig)
}

fn copy_with(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = fs::read(path).expect("read");
    edit(&mut bytes);
    let copy = path.with_file_name("edited.tar.gz");
    fs::write(&copy, bytes).expect("write");
    copy
}

#[test]
fn a_good_bundle_verifies() {
    let keys = keys();
    let (_work, bundle, sig) = packed(&keys);
    let verified = verify::verify(&bundle, &sig, &keys.trusted).expect("verify");
    assert_eq!(verified.release.channel, "beta");
    assert_eq!(verified.release.version.to_string(), "2.0.0");
}

#[test]
fn the_signature_of_another_file_is_refused() {
    let keys = keys();
    let (_work, bundle, _) = packed(&keys);
    // Same length, other bytes: only the signature can tell.
    let other = copy_with(&bundle, |b| {
        b.iter_mut().for_each(|x| *x = x.wrapping_add(1))
    });
    let other_sig = support::sign(&other, &keys.signing);
    let err = verify::verify(&bundle, &other_sig, &keys.trusted).expect_err("wrong sig");
    match &err {
        OtaError::BadSignature { key_id, path } => {
            assert_eq!(*key_id, keys.signing.key_id());
            assert_eq!(*path, bundle);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("download both again"), "{err}");
}

#[test]
fn a_bundle_signed_by_an_unknown_key_is_refused() {
    let keys = keys();
    let stranger = support::keys();
    let (_work, bundle, _) = packed(&keys);
    let sig = support::sign(&bundle, &stranger.signing);
    let err = verify::verify(&bundle, &sig, &keys.trusted).expect_err("unknown key");
    match &err {
        OtaError::UnknownKey { key_id, trusted } => {
            assert_eq!(*key_id, stranger.signing.key_id());
            assert_eq!(*trusted, vec![keys.signing.key_id()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&stranger.signing.key_id()), "{message}");
    assert!(message.contains("does not trust"), "{message}");
}

#[test]
fn a_truncated_bundle_says_so() {
    let keys = keys();
    let (_work, bundle, sig) = packed(&keys);
    let full = fs::metadata(&bundle).expect("meta").len();
    let cut = copy_with(&bundle, |b| b.truncate(b.len() - 100));
    let err = verify::verify(&cut, &sig, &keys.trusted).expect_err("truncated");
    match &err {
        OtaError::Truncated { got, expected, .. } => {
            assert_eq!(*got, full - 100);
            assert_eq!(*expected, full);
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("truncated"), "{message}");
    assert!(
        message.contains(&format!("got {} of {full} bytes", full - 100)),
        "{message}"
    );
}

#[test]
fn an_altered_byte_is_refused() {
    let keys = keys();
    let (_work, bundle, sig) = packed(&keys);
    let altered = copy_with(&bundle, |b| {
        let middle = b.len() / 2;
        b[middle] ^= 0x01;
    });
    let err = verify::verify(&altered, &sig, &keys.trusted).expect_err("altered");
    assert!(matches!(err, OtaError::BadSignature { .. }), "{err:?}");
}

#[test]
fn an_altered_trusted_comment_is_refused() {
    let keys = keys();
    let (_work, bundle, sig) = packed(&keys);
    let forged = sig.replace("version=2.0.0", "version=9.0.0");
    assert_ne!(forged, sig);
    let err = verify::verify(&bundle, &forged, &keys.trusted).expect_err("forged");
    assert!(matches!(err, OtaError::BadSignature { .. }), "{err:?}");
}

#[test]
fn garbage_signature_text_is_refused() {
    let keys = keys();
    let (_work, bundle, _) = packed(&keys);
    let err =
        verify::verify(&bundle, "<html>not found</html>", &keys.trusted).expect_err("garbage");
    assert!(
        matches!(err, OtaError::MalformedSignature { .. }),
        "{err:?}"
    );
}

#[test]
fn a_signature_whose_comment_is_not_a_release_is_refused() {
    let keys = keys();
    let (_work, bundle, _) = packed(&keys);
    let sig = verify::sign_file(&bundle, &keys.signing, "timestamp:1700000000").expect("sign");
    let err = verify::verify(&bundle, &sig, &keys.trusted).expect_err("not a release");
    assert!(matches!(err, OtaError::ReleaseInfo { .. }), "{err:?}");
}

#[test]
fn trusted_keys_come_from_every_pub_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = keys::generate("a").expect("a");
    let b = keys::generate("b").expect("b");
    let c = keys::generate("c").expect("c");
    fs::write(dir.path().join("a.pub"), &a.public).expect("a");
    // One file may hold several keys.
    fs::write(
        dir.path().join("bc.pub"),
        format!("{}{}", b.public, c.public),
    )
    .expect("bc");
    fs::write(dir.path().join("notes.txt"), "not a key").expect("txt");
    let trusted = TrustedKeys::load(dir.path()).expect("load");
    assert_eq!(trusted.ids(), vec![a.key_id, b.key_id, c.key_id]);
}

#[test]
fn a_missing_keys_folder_says_where_to_put_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("keys");
    let err = TrustedKeys::load(&missing).expect_err("missing");
    assert!(
        matches!(err, OtaError::NoTrustedKeys { ref dir, .. } if *dir == missing),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("put the release public key"),
        "{err}"
    );
    fs::create_dir(&missing).expect("mkdir");
    let err = TrustedKeys::load(&missing).expect_err("empty");
    assert!(matches!(err, OtaError::NoTrustedKeys { .. }), "{err:?}");
}

#[test]
fn a_corrupt_public_key_names_its_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("bad.pub"),
        "untrusted comment: x\nRWQnot-base64\n",
    )
    .expect("write");
    let err = TrustedKeys::load(dir.path()).expect_err("bad key");
    match &err {
        OtaError::PublicKey { origin, .. } => {
            assert!(
                origin.contains("line 2") && origin.contains("bad.pub"),
                "{origin}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_encrypted_secret_key_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Mark a key as scrypt-encrypted (bytes 2..4 are the KDF algorithm)
    // rather than deriving a real password key, which takes seconds.
    let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("pair");
    let mut bytes = pair.sk.to_bytes();
    bytes[2..4].copy_from_slice(b"Sc");
    let encrypted = minisign::SecretKey::from_bytes(&bytes).expect("key");
    let path = dir.path().join("enc.key");
    fs::write(&path, encrypted.to_box(None).expect("box").to_string()).expect("write");
    let err = keys::SigningKey::load(&path).expect_err("encrypted");
    match &err {
        OtaError::SecretKey { reason, .. } => assert!(reason.contains("password"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_signature_is_standard_minisign_text() {
    let keys = keys();
    let (_work, bundle, sig) = packed(&keys);
    let lines: Vec<&str> = sig.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("untrusted comment: "));
    assert!(lines[2].starts_with(
        "trusted comment: archy-release version=2.0.0 channel=beta min-archy=0.1.0 size="
    ));
    // minisign's own verifier accepts it with the .pub text.
    let public = minisign::PublicKeyBox::from_string(&keys.signing.public_key_text())
        .expect("pub box")
        .into_public_key()
        .expect("pub");
    let sig_box = minisign::SignatureBox::from_string(&sig).expect("sig box");
    minisign::verify(
        &public,
        &sig_box,
        fs::File::open(&bundle).expect("open"),
        true,
        false,
        false,
    )
    .expect("minisign verifies");
}
