//! The store's failures as the operator meets them: each gives a clear
//! message and an exit code, and leaves the store valid and the previous
//! generations usable. Tests that need a tmpfs (a read-only or a full disk)
//! need root, and are skipped without it.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

mod common;

use std::thread::sleep;
use std::time::Duration;

use archy_store::StateLock;
use common::{Workspace, listing, node_text};

/// Asserts the store is clean: every object intact, no leftovers, every
/// listed generation loadable.
fn assert_store_valid(ws: &Workspace) {
    let run = ws.archy(&["store", "verify"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("all intact"), "{}", run.stdout);
    let store = ws.store();
    let leftovers: Vec<String> = listing(store.objects_dir())
        .into_iter()
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

/// The generation numbers `archy generations --json` lists.
fn generation_numbers(ws: &Workspace) -> Vec<u64> {
    let json: serde_json::Value =
        serde_json::from_str(&ws.archy(&["generations", "--json"]).ok()).unwrap();
    json["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|generation| generation["number"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_held_lock_names_its_holder_and_exits_1() {
    let ws = Workspace::new();
    let _held = StateLock::acquire(
        &archy_store::StateDir::new(&ws.state),
        "archy switch",
        false,
    )
    .unwrap();
    let holder = format!("pid {}: archy switch", std::process::id());

    let build = ws.build(&node_text("hello"));
    assert_eq!(build.code, 1, "{}", build.stderr);
    assert!(build.stderr.contains(&holder), "{}", build.stderr);
    assert!(build.stderr.contains("--wait"), "{}", build.stderr);

    let gc = ws.archy(&["gc"]);
    assert_eq!(gc.code, 1, "{}", gc.stderr);
    assert!(gc.stderr.contains(&holder), "{}", gc.stderr);

    // Reading needs no lock.
    ws.archy(&["generations"]).ok();
    ws.archy(&["store", "verify"]).ok();
    assert!(ws.store().generations().unwrap().is_empty());
}

#[test]
fn with_wait_a_build_waits_for_the_lock_and_then_runs() {
    let ws = Workspace::new();
    ws.node(&node_text("hello"));
    let held = StateLock::acquire(
        &archy_store::StateDir::new(&ws.state),
        "archy switch",
        false,
    )
    .unwrap();
    let mut args = vec!["--wait", "build"];
    args.extend(common::FACTS);
    let mut waiting = ws
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    sleep(Duration::from_millis(500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the build must wait while the lock is held"
    );
    drop(held);
    let run: common::Run = waiting.wait_with_output().unwrap().into();

    assert!(run.ok().contains("generation 1 (new)"));
}

#[test]
fn a_read_only_state_dir_is_reported_and_the_generations_stay_readable() {
    let Some(ws) = Workspace::on_tmpfs("size=4m") else {
        return;
    };
    ws.build(&node_text("hello")).ok();
    ws.tmpfs().remount("ro");

    let run = ws.build(&node_text("bye"));

    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot write to {}",
            ws.state.join("lock").display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the file system is mounted read-only; remount it read-write"),
        "{}",
        run.stderr
    );
    assert_eq!(generation_numbers(&ws), [1]);
    assert_store_valid(&ws);
    let gc = ws.archy(&["gc"]);
    assert_eq!(gc.code, 3, "{}", gc.stderr);
}

#[test]
fn a_state_dir_that_cannot_be_created_is_reported() {
    let Some(mut ws) = Workspace::on_tmpfs("ro,size=64k") else {
        return;
    };
    // The state dir does not exist, and its parent is read-only.
    ws.state = ws.state.join("inner");

    let run = ws.build(&node_text("hello"));

    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot write to {}", ws.state.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("read-only"), "{}", run.stderr);
}

/// Eight files of 128 KiB each: more than a 512 KiB disk holds, so the
/// build fails after writing some of them.
const LARGE_NODE: &str = r#"
let chunk = "0123456789abcdef";
for i in 0..13 { chunk += chunk; }
let files = [];
for i in 0..8 { files.push(file("/data/f" + i, #{ text: `${i}` + chunk })); }
files
"#;

#[test]
fn a_build_that_does_not_fit_is_refused_up_front_saying_what_it_needs() {
    let Some(ws) = Workspace::on_tmpfs("size=512k") else {
        return;
    };
    ws.build(&node_text("hello")).ok();
    let objects_before = listing(ws.store().objects_dir());

    let run = ws.build(LARGE_NODE);

    // Refused before the first write: exit 1, like any input that cannot
    // be built, with the figures and what to do.
    assert_eq!(run.code, 1, "{}", run.stderr);
    for wanted in [
        "not enough space for this build".to_owned(),
        format!(
            "this build needs about 1.1 MiB for 17 new objects in {}",
            ws.state.join("store").display()
        ),
        "KiB is free".to_owned(),
        "run `archy gc`".to_owned(),
        "nothing was written".to_owned(),
    ] {
        assert!(run.stderr.contains(&wanted), "{wanted:?} in {}", run.stderr);
    }
    assert_eq!(listing(ws.store().objects_dir()), objects_before);
    assert_eq!(generation_numbers(&ws), [1]);
    assert_store_valid(&ws);
}

/// The inodes in use on the file system holding `path`.
fn inodes_used(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=iused"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn a_disk_filling_up_mid_build_names_the_need_records_nothing_and_leaves_the_store_valid() {
    // Space enough for the build, but a file system that runs out of
    // inodes after a few objects: the up-front check passes and the disk
    // fills up halfway, as when another writer takes the space.
    let Some(ws) = Workspace::on_tmpfs("size=4m") else {
        return;
    };
    ws.build(&node_text("hello")).ok();
    let objects_before = listing(ws.store().objects_dir());
    let used = inodes_used(&ws.state);
    ws.tmpfs().remount(&format!("nr_inodes={}", used + 4));

    let run = ws.build(LARGE_NODE);

    assert_eq!(run.code, 3, "{}", run.stderr);
    for wanted in [
        format!(
            "the disk holding {} is full",
            ws.state.join("store").display()
        ),
        "nothing was left half-written".to_owned(),
        "this build needs about 1.1 MiB for 17 new objects".to_owned(),
        "`archy gc` removes old generations".to_owned(),
    ] {
        assert!(run.stderr.contains(&wanted), "{wanted:?} in {}", run.stderr);
    }
    // A build's objects are named together once all their bytes are down
    // (one flush for the batch): a disk that fills up halfway leaves no
    // new object, and no temp file either.
    assert_eq!(listing(ws.store().objects_dir()), objects_before);
    assert_eq!(generation_numbers(&ws), [1]);
    assert_store_valid(&ws);
    archy_build::load(&ws.store(), 1).unwrap();

    // GC finds nothing the failed build left; the store works as before.
    let gc = ws.archy(&["gc"]).ok();
    assert!(gc.contains("no objects to delete"), "{gc}");
    ws.tmpfs().remount("nr_inodes=10000");
    assert!(
        ws.build(&node_text("bye"))
            .ok()
            .contains("generation 2 (new)")
    );
    assert_store_valid(&ws);
}

#[test]
fn a_corrupt_object_is_listed_by_verify_and_exits_3() {
    let ws = Workspace::new();
    ws.build(&node_text("hello")).ok();
    ws.build(&node_text("bye")).ok();
    let store = ws.store();
    let record = store.generation(2).unwrap();
    let object = record
        .objects
        .iter()
        .find(|id| id.name().as_str() == "greeting.conf")
        .unwrap();
    let path = store.object_path(object);
    common::overwrite(&path, b"greeting=tampered\n");

    let run = ws.archy(&["store", "verify"]);

    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("corrupt: {}", path.display())),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("generation 2 cannot be loaded"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("1 corrupt object"), "{}", run.stderr);
    // Generation 1 does not use the object, and is untouched.
    archy_build::load(&store, 1).unwrap();

    // The fix the message gives: delete it, build again.
    std::fs::remove_file(&path).unwrap();
    let rebuilt = ws.build(&node_text("bye")).ok();
    assert!(rebuilt.contains("wrote back 1 object"), "{rebuilt}");
    assert_store_valid(&ws);
}

#[test]
fn a_broken_generation_record_is_listed_as_broken_and_builds_go_on() {
    let ws = Workspace::new();
    ws.build(&node_text("one")).ok();
    ws.build(&node_text("two")).ok();
    let store = ws.store();
    std::fs::write(store.generation_path(1), b"\0\0garbage").unwrap();

    let run = ws.archy(&["generations"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("  1  broken: "), "{}", run.stdout);
    assert!(run.stdout.contains("  2  "), "{}", run.stdout);
    assert!(
        run.stderr.contains("generation record") && run.stderr.contains("is broken"),
        "{}",
        run.stderr
    );

    let built = ws.build(&node_text("three")).ok();
    assert!(built.contains("generation 3 (new)"), "{built}");
    // Building the inputs of the broken generation again makes a new one:
    // what the broken record said is unknown.
    let again = ws.build(&node_text("one")).ok();
    assert!(again.contains("generation 4 (new)"), "{again}");
    archy_build::load(&store, 2).unwrap();

    let verify = ws.archy(&["store", "verify"]);
    assert_eq!(verify.code, 3);
    assert!(
        verify.stdout.contains("broken record: generation 1"),
        "{}",
        verify.stdout
    );
}
