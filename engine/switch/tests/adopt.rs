//! Adopting running containers: what podman says of one compared with
//! what its Quadlet file would make, and what the switch observes of them,
//! against a fake podman.

use std::collections::BTreeMap;

use archy_eval::{Limits, MemSources, evaluate};
use archy_graph::resource::ContainerSpec;
use archy_graph::{Graph, Resource};
use archy_plan::{AdoptMode, Aspect, Observed};
use archy_podman::fake::{FakePodman, container};
use archy_podman::{ContainerDetails, MountInfo};
use archy_switch::adopt::compare;
use archy_switch::containers::observe;

const BUSYBOX: &str = "localhost/testbed/busybox:latest";

fn graph() -> Graph {
    let src = MemSources::default().with(
        "node.rhai",
        r#"[
            network("bitcoin", #{ subnet: "10.21.21.0/24" }),
            secret("pass", #{ length: 16 }),
            container("bitcoin-knots", #{
                image: "localhost/testbed/busybox:latest",
                network: "bitcoin",
                podman_args: ["--ip=10.21.21.10"],
                ports: ["8333:8333"],
                volumes: ["/var/lib/archipelago/bitcoin:/data", "/etc/bitcoin/bitcoin.conf:/etc/bitcoin/bitcoin.conf:ro"],
                env: #{ NETWORK: "regtest" },
                secret_env: #{ RPC_PASS: "pass" },
                exec: ["bitcoind", "-datadir=/data"],
                user: "2101:2101",
            }),
        ]"#,
    );
    match evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default()) {
        Ok(ev) => ev.graph,
        Err(f) => panic!("{:#?}", f.problems),
    }
}

fn spec(g: &Graph) -> &ContainerSpec {
    g.nodes
        .iter()
        .find_map(|n| match &n.resource {
            Resource::Container(c) => Some(c),
            _ => None,
        })
        .expect("a container")
}

const IMAGE_ID: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// What `podman run` of the old script made: exactly the declaration.
fn matching() -> ContainerDetails {
    ContainerDetails {
        id: "c".repeat(64),
        name: "bitcoin-knots".into(),
        running: true,
        started_at: "2026-12-05T02:00:00Z".into(),
        image_id: IMAGE_ID.into(),
        image_name: BUSYBOX.into(),
        entrypoint: vec![],
        cmd: vec!["bitcoind".into(), "-datadir=/data".into()],
        user: "2101:2101".into(),
        env_keys: [
            "NETWORK",
            "RPC_PASS",
            "PATH",
            "container",
            "HOSTNAME",
            "HOME",
        ]
        .map(String::from)
        .into(),
        image_env_keys: Default::default(),
        ports: ["8333:8333/tcp".to_string()].into(),
        mounts: vec![
            MountInfo {
                target: "/data".into(),
                source: "/var/lib/archipelago/bitcoin".into(),
                volume: false,
                read_only: false,
            },
            MountInfo {
                target: "/etc/bitcoin/bitcoin.conf".into(),
                source: "/etc/bitcoin/bitcoin.conf".into(),
                volume: false,
                read_only: true,
            },
        ],
        networks: [("bitcoin".to_string(), "10.21.21.10".to_string())].into(),
        labels: Default::default(),
    }
}

#[test]
fn a_container_made_as_declared_has_no_differences() {
    let g = graph();
    assert_eq!(compare(spec(&g), &matching(), Some(IMAGE_ID)), vec![]);
}

#[test]
fn every_difference_is_listed_and_the_unsafe_ones_told_apart() {
    let g = graph();
    let mut running = matching();
    running.env_keys.remove("NETWORK");
    running.env_keys.insert("OLD_FLAG".into());
    running.ports = ["127.0.0.1:8333:8333/tcp".to_string()].into();
    running.cmd = vec!["bitcoind".into()];
    let found = compare(spec(&g), &running, Some(IMAGE_ID));
    let listed: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        vec![
            "port 127.0.0.1:8333:8333/tcp (declared none)",
            "port none (declared 8333:8333/tcp)",
            "env OLD_FLAG (declared none)",
            "env none (declared NETWORK)",
            "command bitcoind (declared bitcoind -datadir=/data)",
        ]
    );
    assert!(found.iter().all(|d| !d.aspect.unsafe_to_hand_over()));

    // Another image, another data folder, another address: unsafe.
    let mut running = matching();
    running.mounts[0].source = "/srv/bitcoin".into();
    running.networks = [("bitcoin".to_string(), "10.21.21.99".to_string())].into();
    let found = compare(spec(&g), &running, Some(&"2".repeat(64)));
    let aspects: Vec<Aspect> = found.iter().map(|d| d.aspect).collect();
    assert_eq!(aspects, vec![Aspect::Image, Aspect::Mount, Aspect::Network]);
    assert!(found.iter().all(|d| d.aspect.unsafe_to_hand_over()));
    // An extra mount (an anonymous volume the image declares) is data the
    // unit would not mount.
    let mut running = matching();
    running.mounts.push(MountInfo {
        target: "/extra".into(),
        source: "abc123".into(),
        volume: true,
        read_only: false,
    });
    let found = compare(spec(&g), &running, Some(IMAGE_ID));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].to_string(), "mount abc123:/extra (declared none)");
}

#[test]
fn the_switch_observes_running_foreign_containers_as_adoptions() {
    let g = graph();
    let podman = FakePodman::new();
    let image = podman.add_image(&[BUSYBOX]);
    let mut listed = container("bitcoin-knots", "running");
    listed.image_id = image.id.clone();
    podman.add_container(listed);
    podman.set_details(ContainerDetails {
        image_id: image.id.clone(),
        ..matching()
    });
    let mut observed = Observed::default();
    observe(&podman, &g, &mut observed).expect("observe");
    assert!(observed.foreign_containers.contains("bitcoin-knots"));
    let a = &observed.adoptions["bitcoin-knots"];
    assert_eq!(a.mode(), AdoptMode::InPlace, "{a:?}");
    assert!(!a.held);

    // One that does not run is not adopted in place: nothing is lost by
    // replacing it.
    let podman = FakePodman::new();
    podman.add_image(&[BUSYBOX]);
    podman.add_container(container("bitcoin-knots", "exited"));
    let mut observed = Observed::default();
    observe(&podman, &g, &mut observed).expect("observe");
    assert!(observed.foreign_containers.contains("bitcoin-knots"));
    assert!(observed.adoptions.is_empty());
}

#[test]
fn holding_and_releasing_a_unit_writes_and_removes_its_runtime_dropin() {
    let root = tempfile::tempdir().expect("tmp");
    assert!(!archy_switch::adopt::is_held(root.path(), "lnd"));
    archy_switch::adopt::hold(root.path(), "lnd").expect("hold");
    assert!(archy_switch::adopt::is_held(root.path(), "lnd"));
    let text = std::fs::read_to_string(
        root.path()
            .join("run/systemd/system/lnd.service.d/50-archy-adopted.conf"),
    )
    .expect("the drop-in");
    assert!(
        text.contains(
            "ConditionPathExists=!/run/systemd/system/lnd.service.d/50-archy-adopted.conf"
        ),
        "{text}"
    );
    assert!(archy_switch::adopt::release(root.path(), "lnd").expect("release"));
    assert!(!archy_switch::adopt::is_held(root.path(), "lnd"));
    assert!(
        !root
            .path()
            .join("run/systemd/system/lnd.service.d")
            .exists()
    );
    assert!(!archy_switch::adopt::release(root.path(), "lnd").expect("again"));
}
