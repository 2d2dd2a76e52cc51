//! `PodmanApi` against the real podman (5.4, rootful) of a disposable
//! Debian 13 node, reached from outside: podman-api on this machine talks to
//! the node's `/proc/PID/root/run/podman/podman.sock`, what `podman.socket`
//! listens on. Needs root; see `engine/cli/tests/support/node.rs`.
//!
//! One node for the whole file: the scenarios below use names of their own
//! and run side by side on one shared `PodmanApi` (so its runtime is driven
//! from several threads at once, as a switch may). The node has no
//! registry; images are built `FROM localhost/testbed/busybox:latest`
//! (a busybox with a few applets only: sh, cat, echo, env, sleep, true...).

#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

#[allow(dead_code)] // This file uses only part of the harness.
#[path = "../../cli/tests/support/node.rs"]
mod node;

use std::path::Path;
use std::time::{Duration, Instant};

use archy_podman::{ContainerInfo, Error, Podman, PodmanApi};
use node::TestNode;

const BUSYBOX: &str = "localhost/testbed/busybox:latest";

/// One scenario against the node, on the shared connection.
type Scenario = node::Scenario<PodmanApi>;

#[test]
fn podman_over_the_api_socket_of_a_real_node() {
    if !TestNode::available() {
        return;
    }
    let started = Instant::now();
    let node = TestNode::up("podman-api");
    node.exec_ok(&["systemctl", "start", "podman.socket"]);
    let socket = node.root_path().join("run/podman/podman.sock");
    let podman = PodmanApi::connect(&socket).unwrap();
    eprintln!("node up and connected in {:?}", started.elapsed());
    report_timings(&podman, "fresh node");

    let scenarios: &[Scenario] = &[
        ("images_are_listed_with_ids", images_are_listed_with_ids),
        ("a_build_tags_its_image", a_build_tags_its_image),
        (
            "a_local_image_is_found_by_its_digest",
            a_local_image_is_found_by_its_digest,
        ),
        (
            "a_failing_build_says_how_it_ended",
            a_failing_build_says_how_it_ended,
        ),
        (
            "a_pull_from_nowhere_fails_quickly",
            a_pull_from_nowhere_fails_quickly,
        ),
        (
            "containers_are_listed_in_every_state",
            containers_are_listed_in_every_state,
        ),
        (
            "removing_a_container_keeps_its_volumes",
            removing_a_container_keeps_its_volumes,
        ),
        (
            "secrets_are_created_replaced_and_removed",
            secrets_are_created_replaced_and_removed,
        ),
    ];
    let failed = node::run_scenarios(&podman, &node, scenarios);
    assert!(
        failed.is_empty(),
        "failed scenarios (see above): {failed:?}"
    );
    report_timings(&podman, "after the scenarios");

    // Last, as it takes podman away from every scenario.
    a_stopped_podman_socket_is_a_clear_error(&podman, &node, &socket);
    eprintln!("all scenarios done in {:?}", started.elapsed());
}

/// How long the calls `archy status` makes take (printed, not judged),
/// five times each: the first call of a kind pays for podman's caches.
fn report_timings(podman: &PodmanApi, when: &str) {
    fn times<T>(call: impl Fn() -> T) -> Vec<Duration> {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                call();
                t.elapsed()
            })
            .collect()
    }
    let (images, containers) = (podman.images().unwrap(), podman.containers().unwrap());
    eprintln!(
        "{when}, {} images and {} containers: images() {:?}, containers() {:?}",
        images.len(),
        containers.len(),
        times(|| podman.images().unwrap()),
        times(|| podman.containers().unwrap()),
    );
}

/// `podman inspect --format {{.Id}} NAME` in the node.
fn inspect_id(node: &TestNode, kind: &str, name: &str) -> String {
    node.exec_ok(&["podman", kind, "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_owned()
}

/// A build context on this machine: a temporary folder with `file` holding
/// `text`.
fn context(file: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), text).unwrap();
    dir
}

fn images_are_listed_with_ids(podman: &PodmanApi, node: &TestNode) {
    let images = podman.images().unwrap();
    let busybox = images
        .iter()
        .find(|i| i.names.iter().any(|n| n == BUSYBOX))
        .unwrap_or_else(|| panic!("no {BUSYBOX} in {images:?}"));
    assert_eq!(busybox.id, inspect_id(node, "image", BUSYBOX));
    assert_eq!(busybox.id.len(), 64, "{busybox:?}");
    assert!(busybox.id.chars().all(|c| c.is_ascii_hexdigit()));

    assert!(podman.image_exists(BUSYBOX).unwrap());
    assert!(podman.image_exists("localhost/testbed/busybox").unwrap());
    assert!(podman.image_exists(&busybox.id).unwrap());
    assert!(podman.image_exists(&busybox.id[..12]).unwrap());
    assert!(!podman.image_exists("localhost/testbed/nothing:1").unwrap());
    assert!(
        !podman
            .image_exists("localhost/testbed/busybox:other")
            .unwrap()
    );
    let e = podman.image_exists("busybox?all=1").unwrap_err();
    assert!(matches!(e, Error::Api { .. }), "{e:?}");
}

fn a_build_tags_its_image(podman: &PodmanApi, node: &TestNode) {
    let tag = "localhost/archy-test/built:1";
    assert!(!podman.image_exists(tag).unwrap());
    let dir = context(
        "Containerfile",
        &format!("FROM {BUSYBOX}\nCOPY hello /hello\nRUN echo built >> /hello\n"),
    );
    std::fs::write(dir.path().join("hello"), "from the context\n").unwrap();
    podman.build(dir.path(), tag).unwrap();

    assert!(podman.image_exists(tag).unwrap());
    let id = inspect_id(node, "image", tag);
    let images = podman.images().unwrap();
    let built = images.iter().find(|i| i.id == id).unwrap();
    assert_eq!(built.names, [tag]);
    let out = node.exec_ok(&["podman", "run", "--rm", tag, "cat", "/hello"]);
    assert_eq!(out, "from the context\nbuilt\n");

    // A Dockerfile is used when there is no Containerfile.
    let tag = "localhost/archy-test/docker:1";
    let dir = context(
        "Dockerfile",
        &format!("FROM {BUSYBOX}\nRUN touch /docker\n"),
    );
    podman.build(dir.path(), tag).unwrap();
    node.exec_ok(&["podman", "run", "--rm", tag, "sh", "-c", "test -e /docker"]);
}

/// A description may pin an image as `name@sha256:...`; podman lists it
/// by its `RepoDigests`, not its names, and must find and run it by that
/// reference without pulling (Quadlet's `Pull=never`).
fn a_local_image_is_found_by_its_digest(podman: &PodmanApi, node: &TestNode) {
    let tag = "localhost/archy-test/pinned:1";
    let dir = context(
        "Containerfile",
        &format!("FROM {BUSYBOX}\nRUN echo pinned > /pinned\n"),
    );
    podman.build(dir.path(), tag).unwrap();
    let digest = node
        .exec_ok(&["podman", "image", "inspect", "--format", "{{.Digest}}", tag])
        .trim()
        .to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let pinned = format!("localhost/archy-test/pinned@{digest}");

    let id = inspect_id(node, "image", tag);
    let images = podman.images().unwrap();
    let built = images.iter().find(|i| i.id == id).unwrap();
    assert!(built.digests.contains(&pinned), "{built:?}");
    assert!(built.answers_to(&pinned), "{built:?}");
    assert!(podman.image_exists(&pinned).unwrap());
    let other = format!("localhost/archy-test/pinned@sha256:{}", "0".repeat(64));
    assert!(!podman.image_exists(&other).unwrap());
    assert!(!images.iter().any(|i| i.answers_to(&other)));

    let out = node.exec_ok(&[
        "podman",
        "run",
        "--rm",
        "--pull=never",
        &pinned,
        "cat",
        "/pinned",
    ]);
    assert_eq!(out, "pinned\n");
}

fn a_failing_build_says_how_it_ended(podman: &PodmanApi, _: &TestNode) {
    let tag = "localhost/archy-test/broken:1";
    let dir = context(
        "Containerfile",
        &format!("FROM {BUSYBOX}\nRUN echo about-to-fail\nRUN false\n"),
    );
    let e = podman.build(dir.path(), tag).unwrap_err();
    let Error::Build {
        message, output, ..
    } = &e
    else {
        panic!("not a build error: {e:?}");
    };
    assert!(message.contains("RUN false"), "{message}");
    assert!(output.contains("STEP 3/3: RUN false"), "{output}");
    assert!(output.contains("about-to-fail\n"), "{output}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("cannot build {tag} from ")),
        "{text}"
    );
    assert!(text.contains("about-to-fail"), "{text}");
    assert!(!podman.image_exists(tag).unwrap());

    // Only the last lines of a long output.
    let many: String = (0..50).map(|i| format!("echo line-{i}; ")).collect();
    let dir = context(
        "Containerfile",
        &format!("FROM {BUSYBOX}\nRUN {many}false\n"),
    );
    let Error::Build { output, .. } = podman.build(dir.path(), tag).unwrap_err() else {
        panic!("not a build error");
    };
    assert!(output.lines().count() <= 20, "{output}");
    assert!(
        output.contains("line-49\n") && !output.contains("line-20\n"),
        "{output}"
    );

    let e = podman
        .build(Path::new("/nonexistent/context"), tag)
        .unwrap_err();
    assert!(e.to_string().contains("not a folder"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = podman.build(empty.path(), tag).unwrap_err();
    assert!(
        e.to_string().contains("no Containerfile or Dockerfile"),
        "{e}"
    );

    // What podman refuses before building (the request itself): a bad tag.
    let dir = context("Containerfile", &format!("FROM {BUSYBOX}\n"));
    let e = podman.build(dir.path(), "Not A Tag").unwrap_err();
    assert!(
        matches!(&e, Error::Build { output, .. } if output.is_empty()),
        "{e:?}"
    );
}

fn a_pull_from_nowhere_fails_quickly(podman: &PodmanApi, _: &TestNode) {
    let reference = "localhost:1/nothing:1";
    let t = Instant::now();
    let e = podman.pull(reference).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let Error::Pull {
        reference: said,
        message,
    } = &e
    else {
        panic!("not a pull error: {e:?}");
    };
    assert_eq!(said, reference);
    assert!(message.contains("localhost:1"), "{message}");
    assert!(
        e.to_string()
            .starts_with("cannot pull localhost:1/nothing:1: "),
        "{e}"
    );

    let e = podman.pull("Not A Reference").unwrap_err();
    assert!(matches!(e, Error::Pull { .. }), "{e:?}");
}

/// The container `name` among `containers`.
fn find<'a>(containers: &'a [ContainerInfo], name: &str) -> &'a ContainerInfo {
    containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name} in {containers:?}"))
}

fn containers_are_listed_in_every_state(podman: &PodmanApi, node: &TestNode) {
    let run = |args: &[&str]| {
        let mut argv = vec!["podman"];
        argv.extend_from_slice(args);
        node.exec_ok(&argv);
    };
    run(&[
        "run",
        "-d",
        "--name",
        "listed-running",
        "--label",
        "a=b",
        "--label",
        "io.archy.app=test",
        "-p",
        "127.0.0.1:18080:80",
        BUSYBOX,
        "sleep",
        "1000",
    ]);
    run(&["create", "--name", "listed-created", BUSYBOX, "true"]);
    run(&["run", "--name", "listed-exited", BUSYBOX, "true"]);

    let containers = podman.containers().unwrap();
    // Both lists at once are the same two lists. The other scenarios run
    // on this podman at the same time (builds make and remove containers
    // and images), so only what this one made is compared.
    let (together, images) = podman.containers_and_images().unwrap();
    let ours = |c: &[ContainerInfo]| {
        let mut v: Vec<(String, String)> = c
            .iter()
            .filter(|c| c.name.starts_with("listed-"))
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(ours(&together).len(), 3, "{:?}", ours(&together));
    assert_eq!(ours(&together), ours(&containers));
    let busybox_id = inspect_id(node, "image", BUSYBOX);
    assert!(
        images.iter().any(|i| i.id == busybox_id),
        "busybox among {images:?}"
    );
    let running = find(&containers, "listed-running");
    assert_eq!(running.state, "running");
    assert!(running.is_running());
    assert_eq!(running.id, inspect_id(node, "container", "listed-running"));
    assert_eq!(running.image_id, busybox_id);
    assert_eq!(running.image, BUSYBOX);
    let labels: Vec<(&str, &str)> = running
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("a", "b"), ("io.archy.app", "test")]);

    let created = find(&containers, "listed-created");
    assert_eq!(created.state, "created");
    assert!(created.labels.is_empty(), "{created:?}");
    let exited = find(&containers, "listed-exited");
    // "stopped" until podman has cleaned up after it, then "exited".
    assert!(
        matches!(exited.state.as_str(), "exited" | "stopped"),
        "{exited:?}"
    );
    assert_eq!(exited.image_id, busybox_id);
    assert!(!exited.is_running());
}

fn removing_a_container_keeps_its_volumes(podman: &PodmanApi, node: &TestNode) {
    node.exec_ok(&["podman", "volume", "create", "removal-data"]);
    node.exec_ok(&[
        "podman",
        "run",
        "-d",
        "--name",
        "to-remove",
        "-v",
        "removal-data:/data",
        BUSYBOX,
        "sh",
        "-c",
        "echo kept > /data/file; exec sleep 1000",
    ]);
    assert!(find(&podman.containers().unwrap(), "to-remove").is_running());

    // `sleep` is PID 1 of the container and ignores SIGTERM: the stop lasts
    // the whole timeout given (podman's default is 10 s), then SIGKILL.
    let t = Instant::now();
    podman
        .remove_container("to-remove", Duration::from_secs(1))
        .unwrap();
    let took = t.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(8)).contains(&took),
        "{took:?}"
    );
    let gone = node.exec(&["podman", "container", "exists", "to-remove"]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(
        !podman
            .containers()
            .unwrap()
            .iter()
            .any(|c| c.name == "to-remove")
    );
    node.exec_ok(&["podman", "volume", "exists", "removal-data"]);
    let out = node.exec_ok(&[
        "podman",
        "run",
        "--rm",
        "-v",
        "removal-data:/data",
        BUSYBOX,
        "cat",
        "/data/file",
    ]);
    assert_eq!(out, "kept\n");

    // Already gone, never there: both fine. A stopped one goes at once.
    podman
        .remove_container("to-remove", Duration::from_secs(1))
        .unwrap();
    podman
        .remove_container("never-was", Duration::from_secs(1))
        .unwrap();
    node.exec_ok(&["podman", "create", "--name", "stopped", BUSYBOX, "true"]);
    podman
        .remove_container("stopped", Duration::from_secs(10))
        .unwrap();
    let gone = node.exec(&["podman", "container", "exists", "stopped"]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}

/// What a container sees of the podman secret `name` (mounted as a file,
/// so that every byte counts), or where it failed.
fn secret_seen(node: &TestNode, name: &str) -> Vec<u8> {
    let secret = format!("{name},type=mount,target=/run/s");
    let out = node.exec(&[
        "podman", "run", "--rm", "--secret", &secret, BUSYBOX, "cat", "/run/s",
    ]);
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

fn secrets_are_created_replaced_and_removed(podman: &PodmanApi, node: &TestNode) {
    let name = "archy-test-secret";
    let in_env = format!("{name},type=env,target=T");
    let env_seen = || {
        node.exec_ok(&[
            "podman",
            "run",
            "--rm",
            "--secret",
            &in_env,
            BUSYBOX,
            "sh",
            "-c",
            "echo \"$T\"",
        ])
    };
    assert!(!podman.secret_names().unwrap().contains(name));
    podman.put_secret(name, b"first value").unwrap();
    assert!(podman.secret_names().unwrap().contains(name));
    assert!(env_seen() == "first value\n");

    // A container that uses it does not stop a replacement.
    node.exec_ok(&[
        "podman",
        "create",
        "--name",
        "uses-secret",
        "--secret",
        name,
        BUSYBOX,
        "true",
    ]);
    podman.put_secret(name, b"second value").unwrap();
    assert!(env_seen() == "second value\n");

    // Bytes are stored as they are: not as a JSON string, not UTF-8 only.
    let value: &[u8] = b"\"third\"\x00\xff value\n";
    podman.put_secret(name, value).unwrap();
    assert!(secret_seen(node, name) == value);

    // podman refuses an empty value and one too large; the error does not
    // carry the value.
    let e = podman.put_secret("archy-test-empty", b"").unwrap_err();
    assert!(matches!(e, Error::Api { .. }), "{e:?}");
    let huge = "s3cr3t".repeat(100_000);
    let e = podman
        .put_secret("archy-test-huge", huge.as_bytes())
        .unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("podman failed to create secret archy-test-huge: "));
    assert!(!text.contains("s3cr3t"), "the value is in the error");

    podman.remove_secret(name).unwrap();
    assert!(!podman.secret_names().unwrap().contains(name));
    podman.remove_secret(name).unwrap();
}

fn a_stopped_podman_socket_is_a_clear_error(podman: &PodmanApi, node: &TestNode, socket: &Path) {
    node.exec_ok(&["systemctl", "stop", "podman.socket", "podman.service"]);
    let e = podman.containers().unwrap_err();
    assert!(
        matches!(e, Error::Unreachable { .. } | Error::SocketMissing { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("systemctl start podman.socket"),
        "{e}"
    );
    let e = PodmanApi::connect(socket).unwrap_err();
    assert!(
        e.to_string().contains("systemctl start podman.socket"),
        "{e}"
    );
    // The streaming calls too (podman-api wraps their errors differently).
    let dir = context("Containerfile", &format!("FROM {BUSYBOX}\n"));
    for e in [
        podman.pull(BUSYBOX).unwrap_err(),
        podman
            .build(dir.path(), "localhost/archy-test/x:1")
            .unwrap_err(),
        podman.put_secret("archy-test-down", b"x").unwrap_err(),
    ] {
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    }

    // Started again, the same PodmanApi works again.
    node.exec_ok(&["systemctl", "start", "podman.socket"]);
    assert!(!podman.images().unwrap().is_empty());

    // The last running container, killed at once (no stop timeout), so that
    // the node's shutdown does not wait for it.
    let t = Instant::now();
    podman
        .remove_container("listed-running", Duration::ZERO)
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let running = podman.containers().unwrap();
    assert!(
        !running.iter().any(ContainerInfo::is_running),
        "{running:?}"
    );
}
