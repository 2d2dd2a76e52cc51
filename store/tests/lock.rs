//! The state lock.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use archy_store::{LockHolder, StateDir, StateLock, StoreError};

/// Set (to a state dir) only in the child process of
/// `a_crashed_holder_never_blocks_the_next_archy`.
const CHILD_STATE_DIR: &str = "ARCHY_STORE_TEST_LOCK_CHILD";
/// What the child prints once it holds the lock.
const CHILD_LOCKED: &str = "child holds the lock";

fn holder_in_file(state: &Path) -> LockHolder {
    let text = std::fs::read_to_string(state.join("lock")).expect("read the lock file");
    serde_json::from_str(&text).expect("the lock file holds JSON")
}

#[test]
fn the_holder_writes_its_pid_and_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock =
        StateLock::acquire(&StateDir::new(dir.path()), "archy switch", false).expect("acquire");
    assert_eq!(lock.path(), dir.path().join("lock"));
    assert_eq!(
        holder_in_file(dir.path()),
        LockHolder {
            pid: std::process::id(),
            command: "archy switch".to_owned()
        }
    );
}

#[test]
fn a_held_lock_is_refused_naming_the_holder_and_released_on_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let held =
        StateLock::acquire(&StateDir::new(dir.path()), "archy switch", false).expect("acquire");

    // A second open of the file is a separate open file description, so
    // flock conflicts within one process just as between two.
    let err = StateLock::acquire(&StateDir::new(dir.path()), "archy gc", false)
        .expect_err("must be refused");
    match &err {
        StoreError::LockHeld {
            holder: Some(holder),
            ..
        } => {
            assert_eq!(holder.pid, std::process::id());
            assert_eq!(holder.command, "archy switch");
        }
        other => panic!("expected LockHeld with a holder, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("pid {}: archy switch", std::process::id())),
        "{message}"
    );
    assert!(message.contains("--wait"), "{message}");
    // The refused attempt must not have clobbered the holder's info.
    assert_eq!(holder_in_file(dir.path()).command, "archy switch");

    drop(held);
    let again =
        StateLock::acquire(&StateDir::new(dir.path()), "archy gc", false).expect("free after drop");
    assert_eq!(holder_in_file(dir.path()).command, "archy gc");
    drop(again);
}

#[test]
fn waiting_acquires_once_the_holder_releases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let held =
        StateLock::acquire(&StateDir::new(dir.path()), "archy switch", false).expect("acquire");
    let (sender, receiver) = mpsc::channel();
    let waiter = {
        let state = dir.path().to_owned();
        thread::spawn(move || {
            let lock = StateLock::acquire(&StateDir::new(&state), "archy build", true)
                .expect("wait and acquire");
            sender.send(Instant::now()).expect("send");
            lock
        })
    };
    assert!(
        receiver.recv_timeout(Duration::from_millis(300)).is_err(),
        "the waiter must block while the lock is held"
    );
    let released = Instant::now();
    drop(held);
    let acquired = receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiter acquires after the release");
    assert!(acquired >= released);
    let _lock = waiter.join().expect("waiter thread");
    assert_eq!(holder_in_file(dir.path()).command, "archy build");
}

#[test]
fn a_crashed_holder_never_blocks_the_next_archy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "lock_holder_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_STATE_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("child stdout");
    let locked = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.ends_with(CHILD_LOCKED));
    assert!(locked, "the child should report that it holds the lock");

    let err = StateLock::acquire(&StateDir::new(dir.path()), "archy gc", false)
        .expect_err("held by the child");
    match err {
        StoreError::LockHeld {
            holder: Some(holder),
            ..
        } => {
            assert_eq!(holder.pid, child.id());
            assert_eq!(holder.command, "archy child");
        }
        other => panic!("expected LockHeld naming the child, got {other:?}"),
    }

    // SIGKILL: no destructor runs, only the kernel can release the lock.
    child.kill().expect("kill the child");
    child.wait().expect("reap the child");
    StateLock::acquire(&StateDir::new(dir.path()), "archy gc", false)
        .expect("the dead holder's lock is gone");
}

/// Not a test: the child process of
/// `a_crashed_holder_never_blocks_the_next_archy`, which runs this binary
/// again with `--ignored --exact lock_holder_child`. Does nothing otherwise.
#[test]
#[ignore = "run as a child process by a_crashed_holder_never_blocks_the_next_archy"]
fn lock_holder_child() {
    let Some(state) = std::env::var_os(CHILD_STATE_DIR) else {
        return;
    };
    let _lock = StateLock::acquire(&StateDir::new(Path::new(&state)), "archy child", false)
        .expect("child acquires");
    // libtest may have printed "test lock_holder_child ... " on this line.
    println!("{CHILD_LOCKED}");
    std::io::stdout().flush().expect("flush");
    thread::sleep(Duration::from_secs(60));
}

#[test]
fn the_lock_creates_a_missing_state_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("var/lib/archy");
    let _lock = StateLock::acquire(&StateDir::new(&state), "archy build", false).expect("acquire");
    assert!(state.join("lock").is_file());
}

#[test]
fn the_record_is_cleared_on_release() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock =
        StateLock::acquire(&StateDir::new(dir.path()), "archy switch", false).expect("acquire");
    drop(lock);
    let text = std::fs::read_to_string(dir.path().join("lock")).expect("read");
    assert_eq!(text, "", "a released lock names no holder");
}

/// A process that is not archy holds the lock, and the file still names
/// the last archy (killed, so it could not clear it): the message names
/// the real holder, not the archy.
#[test]
fn a_stale_record_is_not_taken_for_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lock");
    std::fs::write(
        &path,
        format!(
            "{}\n",
            serde_json::json!({"pid": std::process::id(), "command": "archy switch"})
        ),
    )
    .expect("write a stale record");
    let Ok(mut child) = Command::new("flock")
        .arg("--exclusive")
        .arg(&path)
        .args(["sleep", "30"])
        .spawn()
    else {
        eprintln!("no flock(1) here: skipped");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match StateLock::acquire(&StateDir::new(dir.path()), "archy gc", false) {
            Err(err) => break err,
            Ok(lock) => {
                drop(lock);
                assert!(Instant::now() < deadline, "flock(1) never took the lock");
                thread::sleep(Duration::from_millis(20));
                // Ours for a moment cleared the record: write it again.
                std::fs::write(
                    &path,
                    format!(
                        "{}\n",
                        serde_json::json!({"pid": std::process::id(), "command": "archy switch"})
                    ),
                )
                .expect("write a stale record");
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    match &err {
        StoreError::LockHeld {
            holder, other_pid, ..
        } => {
            assert_eq!(holder, &None, "{err}");
            assert_eq!(*other_pid, Some(child.id()), "{err}");
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("held by another process"), "{message}");
    assert!(!message.contains("archy switch"), "{message}");
    assert!(
        message.contains(&format!("pid {}", child.id())),
        "{message}"
    );
}
