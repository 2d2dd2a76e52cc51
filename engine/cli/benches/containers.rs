//! Container figures on a real node (`cargo bench -p archy --bench
//! containers`; needs root and the test node's base image, see tests/node):
//!
//! - a no-op switch of a node with 20 containers, wall time, with podman's
//!   API service warm and cold (it exits after 5 s idle and is started
//!   again by its socket);
//! - from `archy switch` to all 20 containers healthy (every published
//!   port answers: the health gate checks each), against a hand-written
//!   script doing the same `podman run`s and waiting for the same ports.
//!
//! Wall times are taken from outside the node, so they include entering it
//! (`nsenter`), the same for archy and for the script.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::archy_node::ArchyNode;
use support::node::TestNode;

const CONTAINERS: usize = 20;
const RUNS: usize = 5;
const IMAGE: &str = "localhost/testbed/busybox:latest";
const FIRST_PORT: u16 = 19000;
/// busybox's httpd as a container's PID 1 ignores SIGTERM, so every stop
/// would wait out podman's 10 s timeout; a shell that traps it stops at
/// once, as a real service does.
const SERVE: &str = "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait";

fn node_text(with_containers: bool) -> String {
    let mut out = String::from("[\n");
    if with_containers {
        for i in 0..CONTAINERS {
            let port = FIRST_PORT + i as u16;
            out.push_str(&format!(
                "    container(\"web{i}\", #{{ image: \"{IMAGE}\", ports: [\"127.0.0.1:{port}:8080\"], \
                 tmpfs: [\"/www\"], exec: [\"sh\", \"-c\", \"{SERVE}\"] }}),\n    \
                 health_tcp({port}, #{{ within: \"60s\" }}),\n"
            ));
        }
    }
    out.push_str("]\n");
    out
}

/// The same containers by hand: `podman run` each, then wait until every
/// port answers.
fn script() -> String {
    let last = FIRST_PORT + CONTAINERS as u16 - 1;
    format!(
        "set -e\n\
         for i in $(seq 0 {n}); do\n  \
           podman run -d --name script$i -p 127.0.0.1:$(({FIRST_PORT}+i)):8080 --tmpfs /www \
             {IMAGE} sh -c \"{SERVE}\" >/dev/null\n\
         done\n\
         for p in $(seq {FIRST_PORT} {last}); do\n  \
           until (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do sleep 0.01; done\n\
         done\n",
        n = CONTAINERS - 1
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn timed(n: &ArchyNode, argv: &[&str]) -> Duration {
    let start = Instant::now();
    let out = n.node.exec(argv);
    let wall = start.elapsed();
    assert!(
        out.status.success(),
        "{argv:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

fn switch(n: &ArchyNode, with_containers: bool) -> Duration {
    n.write(&node_text(with_containers));
    timed(n, &["archy", "switch", "/etc/archy/node.rhai"])
}

fn main() {
    if !TestNode::available() {
        println!("containers benchmark skipped: it needs root and the test node (see tests/node)");
        return;
    }
    let n = ArchyNode::up("bench-ctr");
    n.node.exec_ok(&["systemctl", "start", "podman.socket"]);

    // From nothing to 20 healthy containers, and back to none, alternately.
    let mut up = Vec::new();
    for _ in 0..RUNS {
        up.push(switch(&n, true));
        switch(&n, false);
    }
    switch(&n, true);

    let noop = median((0..RUNS * 2).map(|_| switch(&n, true)).collect());
    let mut cold = Vec::new();
    for _ in 0..3 {
        // podman's API service exits after 5 s idle.
        std::thread::sleep(Duration::from_secs(7));
        cold.push(switch(&n, true));
    }
    switch(&n, false);

    let script = script();
    let mut by_hand = Vec::new();
    for _ in 0..RUNS {
        by_hand.push(timed(&n, &["bash", "-c", &script]));
        n.node
            .exec_ok(&["sh", "-c", "podman rm -f -t 0 $(podman ps -aq) >/dev/null"]);
    }

    let enter = median((0..RUNS).map(|_| timed(&n, &["true"])).collect::<Vec<_>>());
    let (up, by_hand) = (median(up), median(by_hand));
    println!("container benchmarks on a test node ({CONTAINERS} containers, medians)\n");
    println!("{:<62} {:>10}", "figure", "ms");
    println!(
        "{:<62} {:>10.1}",
        "entering the node (nsenter, in every wall)",
        ms(enter)
    );
    println!("{:<62} {:>10.1}", "no-op switch, podman API warm", ms(noop));
    println!(
        "{:<62} {:>10.1}",
        "no-op switch, podman API cold (socket-activated)",
        ms(median(cold))
    );
    println!(
        "{:<62} {:>10.1}",
        "archy switch: nothing -> 20 containers healthy",
        ms(up)
    );
    println!(
        "{:<62} {:>10.1}",
        "script: 20 podman runs -> 20 ports answering",
        ms(by_hand)
    );
    println!(
        "{:<62} {:>10.2}",
        "ratio archy / script",
        up.as_secs_f64() / by_hand.as_secs_f64()
    );
}
