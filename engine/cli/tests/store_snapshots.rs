//! What `archy build`, `archy generations`, `archy gc` and `archy store
//! verify` print, as insta snapshots with paths, times, hashes and sizes
//! redacted.

mod common;

use std::fmt::Write as _;

use archy_store::Outcome;
use common::{Workspace, node_text, snapshot_settings};

/// A transcript: each command and what it printed, redacted.
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    fn record(&mut self, ws: &Workspace, command: &str, run: common::Run) {
        let _ = writeln!(self.0, "$ archy {command}");
        self.0.push_str(&ws.redact(&run.stdout));
        for line in ws.redact(&run.stderr).lines() {
            let _ = writeln!(self.0, "stderr: {line}");
        }
        if run.code != 0 {
            let _ = writeln!(self.0, "exit code {}", run.code);
        }
        self.0.push('\n');
    }
}

#[test]
fn build_says_what_it_wrote_and_nothing_the_second_time() {
    let _settings = snapshot_settings().bind_to_scope();
    let ws = Workspace::new();
    let mut transcript = Transcript::default();

    transcript.record(&ws, "build", ws.build(&node_text("hello")));
    transcript.record(
        &ws,
        "build   (the same node again)",
        ws.build(&node_text("hello")),
    );
    transcript.record(
        &ws,
        "build   (the greeting changed)",
        ws.build(&node_text("bye")),
    );
    // A deleted object is written back; the generation stays the same.
    let store = ws.store();
    let record = store.generation(2).unwrap();
    std::fs::remove_file(store.object_path(&record.objects[0])).unwrap();
    transcript.record(
        &ws,
        "build   (one object deleted)",
        ws.build(&node_text("bye")),
    );

    insta::assert_snapshot!("build", transcript.0);
}

#[test]
fn build_of_a_wrong_node_reports_it_and_records_nothing() {
    let _settings = snapshot_settings().bind_to_scope();
    let ws = Workspace::new();
    let mut transcript = Transcript::default();

    transcript.record(
        &ws,
        "build",
        ws.build("[file(\"relative/path\", #{ text: \"x\" })]"),
    );

    insta::assert_snapshot!("build_wrong_node", transcript.0);
    assert!(ws.store().generations().unwrap().is_empty());
}

#[test]
fn generations_lists_outcomes_links_and_broken_records() {
    let _settings = snapshot_settings().bind_to_scope();
    let ws = Workspace::new();
    let mut transcript = Transcript::default();
    transcript.record(&ws, "generations   (none yet)", ws.archy(&["generations"]));

    for greeting in ["one", "two", "three", "four"] {
        ws.build(&node_text(greeting)).ok();
    }
    let store = ws.store();
    store.set_outcome(1, Outcome::Good, None).unwrap();
    store
        .set_outcome(
            2,
            Outcome::Failed,
            Some("health check tcp:8080 did not pass within 30s".to_owned()),
        )
        .unwrap();
    store.set_outcome(3, Outcome::RolledBack, None).unwrap();
    store.set_last_good(1).unwrap();
    store.set_current(1).unwrap();
    std::fs::write(store.generation_path(4), "{ this is not a record").unwrap();

    transcript.record(&ws, "generations", ws.archy(&["generations"]));
    transcript.record(
        &ws,
        "generations --json",
        ws.archy(&["generations", "--json"]),
    );
    insta::assert_snapshot!("generations", transcript.0);
}

#[test]
fn gc_keeps_the_newest_the_current_and_the_last_good() {
    let _settings = snapshot_settings().bind_to_scope();
    let ws = Workspace::new();
    let mut transcript = Transcript::default();
    for greeting in ["one", "two", "three", "four", "five"] {
        ws.build(&node_text(greeting)).ok();
    }
    let store = ws.store();
    store.set_current(1).unwrap();
    store.set_last_good(2).unwrap();

    transcript.record(&ws, "gc --keep 2", ws.archy(&["gc", "--keep", "2"]));
    transcript.record(
        &ws,
        "gc --keep 2   (again)",
        ws.archy(&["gc", "--keep", "2"]),
    );
    transcript.record(&ws, "generations", ws.archy(&["generations"]));
    transcript.record(&ws, "store verify", ws.archy(&["store", "verify"]));
    insta::assert_snapshot!("gc", transcript.0);

    let numbers: Vec<u64> = store
        .generations()
        .unwrap()
        .iter()
        .map(archy_store::GenerationEntry::number)
        .collect();
    assert_eq!(numbers, [1, 2, 4, 5]);
    for number in numbers {
        archy_build::load(&store, number).unwrap();
    }
}

/// A node with GC settings as `archy::units(#{ gc: .. })` writes them.
fn node_with_gc_settings(greeting: &str, keep: usize, min_free_bytes: u64) -> String {
    let node = common::node_text(greeting);
    let list = node
        .trim_end()
        .strip_suffix(']')
        .expect("node_text is a list");
    format!(
        "{list}    file(\"/etc/archy/gc.json\", #{{ text: `{{\"keep\": {keep}, \"min_free_bytes\": {min_free_bytes}}}` }}),\n]\n"
    )
}

#[test]
fn gc_follows_the_current_generations_settings_and_says_what_it_freed() {
    let ws = Workspace::new();
    // keep 5, and more free space than any test machine has: the count
    // takes 1, the free-space trigger 2 and 3, down to the three links.
    let petabyte = 1u64 << 50;
    for greeting in ["one", "two", "three", "four", "five", "six"] {
        ws.build(&node_with_gc_settings(greeting, 5, petabyte)).ok();
    }
    let store = ws.store();
    store.set_last_good(4).unwrap();
    store.set_previous(5).unwrap();
    store.set_current(6).unwrap();

    let run = ws.archy(&["gc"]);

    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    for wanted in [
        "kept 3 generations: 4 (last good), 5, 6 (current)",
        "deleted 3 generations: 1, 2, 3 (2, 3 for free space: less than 1.0 PiB was free)",
        // Four objects of each generation are its own.
        "deleted 12 objects, freed ",
        "free space: ",
    ] {
        assert!(out.contains(wanted), "{wanted:?} in {out}");
    }
    assert!(
        run.stderr.contains(
            "less than the 1.0 PiB the node's gc settings want, with every generation but \
             current, previous and last-good deleted"
        ),
        "{}",
        run.stderr
    );
    let numbers: Vec<u64> = store
        .generations()
        .unwrap()
        .iter()
        .map(archy_store::GenerationEntry::number)
        .collect();
    assert_eq!(numbers, [4, 5, 6]);
    for number in numbers {
        archy_build::load(&store, number).unwrap();
    }
}

#[test]
fn gc_keep_replaces_the_count_of_the_settings() {
    let ws = Workspace::new();
    for greeting in ["one", "two", "three", "four"] {
        ws.build(&node_with_gc_settings(greeting, 1, 0)).ok();
    }
    ws.store().set_current(4).unwrap();

    let out = ws.archy(&["gc", "--keep", "3"]).ok();

    assert!(
        out.contains("kept 3 generations: 2, 3, 4 (current)"),
        "{out}"
    );
    assert!(out.contains("deleted 1 generation: 1\n"), "{out}");
}

#[test]
fn gc_with_a_broken_record_deletes_records_but_no_object() {
    let _settings = snapshot_settings().bind_to_scope();
    let ws = Workspace::new();
    let mut transcript = Transcript::default();
    for greeting in ["one", "two", "three"] {
        ws.build(&node_text(greeting)).ok();
    }
    let store = ws.store();
    std::fs::write(store.generation_path(3), "").unwrap();
    let objects_before = common::listing(store.objects_dir());

    transcript.record(&ws, "gc --keep 1", ws.archy(&["gc", "--keep", "1"]));
    insta::assert_snapshot!("gc_broken_record", transcript.0);

    assert_eq!(common::listing(store.objects_dir()), objects_before);
}

#[test]
fn store_verify_lists_every_problem_and_exits_3() {
    let _settings = snapshot_settings().bind_to_scope();
    let ws = Workspace::new();
    let mut transcript = Transcript::default();
    ws.build(&node_text("one")).ok();
    ws.build(&node_text("two")).ok();
    transcript.record(&ws, "store verify", ws.archy(&["store", "verify"]));

    let store = ws.store();
    let record = store.generation(2).unwrap();
    let corrupt = store.object_path(&record.graph);
    common::overwrite(&corrupt, b"overwritten");
    std::fs::write(store.generation_path(1), b"[]").unwrap();
    transcript.record(&ws, "store verify", ws.archy(&["store", "verify"]));
    insta::assert_snapshot!("store_verify", transcript.0);
}
