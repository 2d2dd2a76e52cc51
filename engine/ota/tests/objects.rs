//! A release's software into a store: only the objects the store lacks are
//! fetched, from beside the bundle (a folder or the bundle's URL folders),
//! each checked against its listed blake3 before the store names it.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use archy_ota::OtaError;
use archy_ota::download::FetchOptions;
use archy_ota::manifest::{FORMAT_OBJECTS, FileEntry, Manifest, ObjectEntry};
use archy_ota::objects::{self, ObjectSource};
use archy_store::{StateDir, Store};
use semver::Version;
use support::server::{Mode, Server, payload};

fn opts() -> FetchOptions {
    FetchOptions {
        progress: false,
        max_bytes: u64::MAX,
        timeout: Duration::from_secs(5),
    }
}

fn store(dir: &Path) -> Store {
    Store::open(&StateDir::new(dir.join("state"))).expect("store")
}

/// A manifest listing `objects` (name, content).
fn manifest(objects: &[(&str, &[u8])]) -> Manifest {
    let mut listed: Vec<ObjectEntry> = objects
        .iter()
        .map(|(name, data)| ObjectEntry {
            blake3: blake3::hash(data).to_hex().to_string(),
            name: name.to_string(),
            size: data.len() as u64,
        })
        .collect();
    listed.sort();
    let mut files = BTreeMap::new();
    files.insert(
        "node.rhai".to_string(),
        FileEntry {
            blake3: "00".repeat(32),
            size: 1,
            mode: 0o644,
        },
    );
    Manifest {
        format: FORMAT_OBJECTS,
        version: Version::new(1, 0, 0),
        min_archy: Version::new(0, 1, 0),
        channel: "stable".to_string(),
        files,
        objects: listed,
    }
}

/// The files a mirror serves for `objects`: `objects/<blake3>`.
fn served(objects: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    objects
        .iter()
        .map(|(_, data)| {
            (
                format!("objects/{}", blake3::hash(data).to_hex()),
                data.to_vec(),
            )
        })
        .collect()
}

fn start(files: &[(String, Vec<u8>)], mode: Mode) -> Server {
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    Server::start(&refs, mode)
}

fn base(server: &Server) -> String {
    server.url("").trim_end_matches('/').to_string()
}

#[test]
fn a_second_release_fetches_only_the_object_that_changed() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = store(work.path());
    let (a, b, c1, c2) = (
        payload(40_000),
        payload(50_000),
        payload(60_000),
        payload(60_001),
    );
    let v1: [(&str, &[u8]); 3] = [("a+x", &a), ("b", &b), ("c+x", &c1)];
    let v2: [(&str, &[u8]); 3] = [("a+x", &a), ("b", &b), ("c+x", &c2)];
    let mut files = served(&v1);
    files.extend(served(&v2));
    let server = start(&files, Mode::Ok);
    let source = ObjectSource::Urls(vec![base(&server)]);
    let downloads = work.path().join("downloads");

    let needed = objects::needed(&store, &manifest(&v1)).expect("needed");
    assert_eq!(
        (needed.listed, needed.missing.len(), needed.files),
        (3, 3, 3)
    );
    assert_eq!(needed.bytes, 150_000);
    let fetched = objects::fetch(&store, &needed, &source, &downloads, &opts()).expect("fetch");
    assert_eq!((fetched.objects, fetched.bytes), (3, 150_000));
    assert_eq!(server.hits().len(), 3);

    let needed = objects::needed(&store, &manifest(&v2)).expect("needed");
    assert_eq!((needed.listed, needed.missing.len()), (3, 1));
    assert_eq!(needed.missing[0].name, "c+x");
    assert_eq!(needed.bytes, 60_001);
    let fetched = objects::fetch(&store, &needed, &source, &downloads, &opts()).expect("fetch");
    assert_eq!((fetched.objects, fetched.bytes), (1, 60_001));
    let hits = server.hits();
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert_eq!(
        hits[3].path,
        format!("/objects/{}", blake3::hash(&c2).to_hex())
    );
    // Nothing is left to fetch, and the program is stored runnable.
    assert!(
        objects::needed(&store, &manifest(&v2))
            .expect("needed")
            .missing
            .is_empty()
    );
    let id = archy_store::ObjectId::new(
        blake3::hash(&c2).into(),
        archy_store::ObjectName::try_from("c+x").expect("name"),
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(store.object_path(&id))
        .expect("object")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o555);
    assert!(
        std::fs::read_dir(&downloads)
            .expect("downloads")
            .next()
            .is_none()
    );
}

#[test]
fn wrong_bytes_from_one_mirror_are_dropped_and_the_next_mirror_serves() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = store(work.path());
    let good = payload(30_000);
    let listed: [(&str, &[u8]); 1] = [("app+x", &good)];
    let name = format!("objects/{}", blake3::hash(&good).to_hex());
    let liar = start(&[(name.clone(), payload(29_999))], Mode::Ok);
    let honest = start(&[(name, good.clone())], Mode::Ok);
    let source = ObjectSource::Urls(vec![base(&liar), base(&honest)]);
    let needed = objects::needed(&store, &manifest(&listed)).expect("needed");
    objects::fetch(&store, &needed, &source, &work.path().join("dl"), &opts()).expect("fetch");
    assert_eq!(liar.hits().len(), 1);
    assert_eq!(honest.hits().len(), 1);
    let id = &needed.missing[0];
    let stored = objects::needed(&store, &manifest(&listed)).expect("needed");
    assert!(stored.missing.is_empty(), "{id:?} is in the store");
}

#[test]
fn an_object_no_mirror_has_right_fails_naming_it_and_stores_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = store(work.path());
    let good = payload(10_000);
    let listed: [(&str, &[u8]); 1] = [("validator+x", &good)];
    let hash = blake3::hash(&good).to_hex().to_string();
    let liar = start(&[(format!("objects/{hash}"), payload(10_001))], Mode::Ok);
    let empty = start(&[], Mode::Ok);
    let source = ObjectSource::Urls(vec![base(&liar), base(&empty)]);
    let needed = objects::needed(&store, &manifest(&listed)).expect("needed");
    let err = objects::fetch(&store, &needed, &source, &work.path().join("dl"), &opts())
        .expect_err("refused");
    assert!(matches!(err, OtaError::Object { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("validator+x") && text.contains(&hash),
        "{text}"
    );
    assert!(text.contains("404"), "the empty mirror's answer: {text}");
    // The liar's bytes answered 200, then failed the check (they are
    // one byte longer than listed: refused while streaming).
    assert!(text.contains(&base(&liar)), "{text}");
    assert_eq!(
        objects::needed(&store, &manifest(&listed))
            .expect("needed")
            .missing
            .len(),
        1
    );
}

#[test]
fn a_bundle_file_takes_its_objects_from_the_folder_beside_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = store(work.path());
    let (a, b) = (payload(1_000), payload(2_000));
    let listed: [(&str, &[u8]); 2] = [("a", &a), ("b+x", &b)];
    let folder = work.path().join("pub");
    std::fs::create_dir_all(folder.join("objects")).expect("mkdir");
    std::fs::write(
        folder
            .join("objects")
            .join(blake3::hash(&a).to_hex().as_str()),
        &a,
    )
    .expect("a");
    let source = ObjectSource::of_bundle(folder.join("r.tar.gz").to_str().expect("utf-8"), &[]);
    let needed = objects::needed(&store, &manifest(&listed)).expect("needed");
    // b is not beside the bundle: refused, naming it.
    let err = objects::fetch(&store, &needed, &source, &work.path().join("dl"), &opts())
        .expect_err("b is missing")
        .to_string();
    assert!(err.contains("b+x"), "{err}");
    std::fs::write(
        folder
            .join("objects")
            .join(blake3::hash(&b).to_hex().as_str()),
        &b,
    )
    .expect("b");
    let needed = objects::needed(&store, &manifest(&listed)).expect("needed");
    assert_eq!(needed.missing.len(), 1, "a was stored by the first try");
    objects::fetch(&store, &needed, &source, &work.path().join("dl"), &opts()).expect("fetch");
    assert!(
        objects::needed(&store, &manifest(&listed))
            .expect("needed")
            .missing
            .is_empty()
    );
}
