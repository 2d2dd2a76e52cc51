//! A full disk and a read-only disk, on real tmpfs mounts. These need root
//! (or CAP_SYS_ADMIN); where mounting is impossible they say so and pass.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use archy_store::{Inserted, StateDir, StateLock, Store, StoreError};
use common::{build, name, temp_files};
use tempfile::TempDir;

/// A tmpfs mounted on a temp dir, unmounted when dropped (before the temp
/// dir itself is removed).
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options`, or explains why it cannot.
    fn mount(options: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        mount_command(dir.path(), &["-t", "tmpfs", "-o", options, "tmpfs"])?;
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes the mount read-only, keeping its content.
    fn remount_read_only(&self) {
        mount_command(self.path(), &["-o", "remount,ro"]).expect("remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.dir.path()).status();
        if !matches!(unmounted, Ok(status) if status.success()) {
            eprintln!("could not unmount {}", self.dir.path().display());
        }
    }
}

/// Runs `mount <args> <target>`.
fn mount_command(target: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .map_err(|err| format!("cannot run mount: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// The tests of this file run one at a time. Each runs `mount` (a fork),
/// and a child forked while the other test's half-written temp file is
/// open keeps that file, and its pages on the tiny tmpfs, alive until it
/// execs: under load the full-disk test then saw the disk still full after
/// the temp was removed (seen once in CI).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Mounts a tmpfs or, if that is impossible here, prints why the test is
/// skipped.
fn tmpfs_or_skip(test: &str, options: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(options) {
        Ok(mount) => Some(mount),
        Err(reason) => {
            eprintln!("SKIPPED {test}: cannot mount a tmpfs ({reason}); run the tests as root");
            None
        }
    }
}

/// Inserts distinct objects of `size` bytes until one fails; returns that
/// error (and fails the test if the disk never fills).
fn fill(store: &Store, size: usize) -> StoreError {
    for n in 0u32..10_000 {
        let mut content = vec![0xaa; size];
        content[..4].copy_from_slice(&n.to_le_bytes());
        content[4] = size as u8;
        if let Err(err) = store.insert_bytes(&name("filler"), &content) {
            return err;
        }
    }
    panic!("the 256 KiB tmpfs never filled up");
}

#[test]
fn a_full_disk_is_reported_and_leaves_the_store_valid() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mount) = tmpfs_or_skip("a_full_disk_is_reported", "size=256k") else {
        return;
    };
    let store = Store::open(&StateDir::new(mount.path().join("state"))).expect("open");
    let (first, object) = build(&store, "before the disk filled");
    store.set_current(first.number).expect("set current");
    // Its objects are written now, while there is room; its record later.
    let late = common::draft(&store, "recorded when full", vec![object.clone()]);

    // A streamed insert bigger than the whole disk fails mid-copy.
    let source_dir = tempfile::tempdir().expect("tempdir outside the tmpfs");
    let big = source_dir.path().join("image.tar");
    std::fs::write(&big, vec![1u8; 512 * 1024]).expect("write the source");
    let err = store
        .insert_file(&name("image.tar"), &big)
        .expect_err("larger than the disk");
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert!(temp_files(store.objects_dir()).is_empty());

    // Fill it up completely: big objects, then small ones for the last pages.
    for size in [16 * 1024, 64] {
        let err = fill(&store, size);
        assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("is full"), "{message}");
        assert!(
            message.contains(&store.objects_dir().display().to_string()),
            "{message}"
        );
        assert!(
            temp_files(store.objects_dir()).is_empty(),
            "the half-written temp file is removed"
        );
    }

    // Recording a generation needs space too, and fails the same clean way.
    let err = store
        .record_generation(late)
        .expect_err("no room for the record");
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert!(temp_files(store.generations_dir()).is_empty());

    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{report:#?}");
    assert!(report.temp_leftovers.is_empty());
    assert_eq!(
        store.generation(first.number).expect("still readable"),
        first
    );
    assert_eq!(
        store.read(&object).expect("read"),
        b"config before the disk filled"
    );
    assert_eq!(store.current().expect("current"), Some(first.number));

    // GC frees the space and the store works again.
    let report = store.gc(1).expect("gc");
    assert!(report.bytes_freed > 200 * 1024, "{report:?}");
    let (_, inserted) = store
        .insert_bytes(&name("after-gc"), &[3u8; 16 * 1024])
        .expect("insert after gc");
    assert!(matches!(inserted, Inserted::Written(_)));
}

#[test]
fn a_read_only_state_dir_is_reported_and_still_readable() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mount) = tmpfs_or_skip("a_read_only_state_dir", "size=1m") else {
        return;
    };
    let state = mount.path().join("state");
    let store = Store::open(&StateDir::new(&state)).expect("open");
    let (first, object) = build(&store, "one");
    store.set_current(first.number).expect("set current");
    mount.remount_read_only();

    let err = store
        .insert_bytes(&name("new"), b"new")
        .expect_err("read-only");
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&store.objects_dir().display().to_string()),
        "{message}"
    );
    assert!(message.contains("read-only"), "{message}");
    assert!(message.contains("--state-dir"), "{message}");

    assert!(matches!(
        store.set_current(first.number),
        Err(StoreError::NotWritable { .. })
    ));
    assert!(matches!(
        StateLock::acquire(&StateDir::new(&state), "archy switch", false),
        Err(StoreError::NotWritable { .. })
    ));
    assert!(matches!(
        Store::open(&StateDir::new(mount.path().join("elsewhere"))),
        Err(StoreError::NotWritable { .. })
    ));

    // Everything that only reads still works.
    let reopened = Store::open(&StateDir::new(&state)).expect("an existing store opens read-only");
    assert_eq!(
        reopened.generation(first.number).expect("read record"),
        first
    );
    assert_eq!(reopened.read(&object).expect("read object"), b"config one");
    assert_eq!(reopened.current().expect("current"), Some(first.number));
    assert!(reopened.verify().expect("verify").is_clean());
    let (_, inserted) = reopened
        .insert_bytes(&name("app.conf"), b"config one")
        .expect("an existing object needs no write");
    assert_eq!(inserted, Inserted::AlreadyPresent);
}

#[test]
fn a_batch_on_a_full_disk_names_nothing_and_leaves_no_temp_file() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mount) = tmpfs_or_skip("a_batch_on_a_full_disk", "size=256k") else {
        return;
    };
    let store = Store::open(&StateDir::new(mount.path().join("state"))).expect("open");
    let mut batch = store.batch();
    let mut written = Vec::new();
    let err = loop {
        let n = written.len() as u32;
        let mut content = vec![0xbb; 16 * 1024];
        content[..4].copy_from_slice(&n.to_le_bytes());
        match batch.insert_bytes(&name("filler"), &content) {
            Ok((id, _)) => written.push(id),
            Err(err) => break err,
        }
        assert!(n < 1000, "the 256 KiB tmpfs never filled up");
    };
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    // The build gives up: nothing it wrote gets a name.
    drop(batch);
    assert!(!written.is_empty());
    for id in &written {
        assert!(!store.contains(id).expect("contains"), "{id} has a name");
    }
    assert!(temp_files(store.objects_dir()).is_empty());
    assert!(store.verify().expect("verify").is_clean());
}

#[test]
fn a_batch_finished_on_a_read_only_disk_names_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mount) = tmpfs_or_skip("a_batch_finished_on_a_read_only_disk", "size=1m") else {
        return;
    };
    let store = Store::open(&StateDir::new(mount.path().join("state"))).expect("open");
    let mut batch = store.batch();
    let (id, _) = batch
        .insert_bytes(&name("app.conf"), b"config")
        .expect("insert");
    mount.remount_read_only();
    let err = batch.finish().expect_err("read-only");
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err:?}");
    assert!(!store.contains(&id).expect("contains"));
}

/// An ext4 file system in an image file, loop-mounted; unmounted when
/// dropped.
struct Ext4Image {
    image: PathBuf,
    mount: TempDir,
    _dir: TempDir,
}

impl Ext4Image {
    fn mount() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(32 * 1024 * 1024))
            .map_err(|err| err.to_string())?;
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&image)
            .output()
            .map_err(|err| format!("cannot run mkfs.ext4: {err}"))?;
        if !made.status.success() {
            return Err(String::from_utf8_lossy(&made.stderr).trim().to_owned());
        }
        let mount = tempfile::tempdir().map_err(|err| err.to_string())?;
        let image_arg = image.to_str().ok_or("a non-UTF-8 temp path")?;
        mount_command(mount.path(), &["-o", "loop", image_arg])?;
        Ok(Self {
            image,
            mount,
            _dir: dir,
        })
    }
}

impl Drop for Ext4Image {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.mount.path()).status();
        if !matches!(unmounted, Ok(status) if status.success()) {
            eprintln!("could not unmount {}", self.mount.path().display());
        }
    }
}

/// What a power cut would keep is what reached the device. ext4 allocates
/// blocks late, so a file's content reaches the image only when it is
/// flushed: flushing the directory alone would not write it.
#[test]
fn a_finished_batch_has_its_content_on_the_device() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let disk = match Ext4Image::mount() {
        Ok(disk) => disk,
        Err(reason) => {
            eprintln!("SKIPPED a_finished_batch_has_its_content_on_the_device: {reason}");
            return;
        }
    };
    let store = Store::open(&StateDir::new(disk.mount.path().join("state"))).expect("open");
    // Bytes that appear nowhere else on the device.
    let marker: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut batch = store.batch();
    let (id, _) = batch
        .insert_bytes(&name("marker.bin"), &marker)
        .expect("insert");
    batch.finish().expect("finish");
    assert!(store.contains(&id).expect("contains"));

    let device = std::fs::read(&disk.image).expect("read the image");
    assert!(
        device.windows(4096).any(|block| block == &marker[..4096]),
        "the named object's content is not on the device"
    );
}
