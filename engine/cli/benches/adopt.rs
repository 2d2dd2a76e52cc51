//! Downtime figures of adopting a running node (`cargo bench -p archy
//! --bench adopt`; needs root and the test node's base image, see
//! tests/node): four containers started with plain `podman run`, as the
//! old first-boot script did, each serving HTTP on a published port; a
//! prober inside the node asks every port every few milliseconds while
//!
//! 1. `archy switch` adopts them in place (0 s expected: nothing restarts),
//! 2. the next switch changes lnd's config and hands lnd over to its unit
//!    (stop the old container, start the unit),
//! 3. `archy adopt --now bitcoin-knots` hands another one over.
//!
//! Downtime per container is the time from the start of the first failed
//! probe to the start of the next answered one, summed; the probe interval
//! bounds its resolution (printed). Stand-ins stop at once on SIGTERM, as real services do, so
//! the hand-over figure is archy's and podman's part, not an app's flush.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::archy_node::ArchyNode;
use support::node::TestNode;

const IMAGE: &str = "localhost/testbed/busybox:latest";
const SERVE: &str = "trap 'exit 0' TERM; httpd -f -p $PORT -h /www & wait";
/// name, host number on the network, port.
const OLD: [(&str, u8, u16); 4] = [
    ("bitcoin-knots", 10, 18332),
    ("lnd", 11, 18080),
    ("electrumx", 12, 50001),
    ("archy-bitcoin-ui", 20, 18090),
];

/// The config file each container reads: lnd its own, the others one
/// that no switch here changes.
fn conf_of(name: &str) -> &'static str {
    if name == "lnd" {
        "/etc/lnd/lnd.conf"
    } else {
        "/etc/hostname"
    }
}

fn start_old_node(n: &ArchyNode) {
    n.node.exec_ok(&[
        "podman",
        "network",
        "create",
        "--subnet",
        "10.21.21.0/24",
        "bitcoin",
    ]);
    n.node.exec_ok(&[
        "sh",
        "-c",
        "mkdir -p /etc/lnd && echo alias=old > /etc/lnd/lnd.conf",
    ]);
    for (name, host, port) in OLD {
        let data = format!("/var/lib/archipelago/{name}");
        n.node.exec_ok(&[
            "sh",
            "-c",
            &format!("mkdir -p {data} && echo {name} > {data}/index.html"),
        ]);
        n.node.exec_ok(&[
            "podman",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "bitcoin",
            &format!("--ip=10.21.21.{host}"),
            "-p",
            &format!("127.0.0.1:{port}:{port}"),
            "-v",
            &format!("{data}:/www"),
            "-v",
            &format!("{}:/etc/app.conf:ro", conf_of(name)),
            "-e",
            &format!("PORT={port}"),
            IMAGE,
            "sh",
            "-c",
            SERVE,
        ]);
    }
}

fn description(lnd_conf: &str) -> String {
    let mut out = format!(
        "[\n    network(\"bitcoin\", #{{ subnet: \"10.21.21.0/24\" }}),\n    \
         file(\"/etc/lnd/lnd.conf\", #{{ text: \"{lnd_conf}\\n\" }}),\n"
    );
    for (name, host, port) in OLD {
        let requires = if name == "bitcoin-knots" {
            ""
        } else {
            "requires: [\"bitcoin-knots\"],"
        };
        out.push_str(&format!(
            "    container(\"{name}\", #{{ image: \"{IMAGE}\", network: \"bitcoin\", \
             podman_args: [\"--ip=10.21.21.{host}\"], ports: [\"127.0.0.1:{port}:{port}\"], \
             volumes: [\"/var/lib/archipelago/{name}:/www\", \"{conf}:/etc/app.conf:ro\"], \
             env: #{{ PORT: \"{port}\" }}, exec: [\"sh\", \"-c\", \"{serve}\"], {requires} }}),\n    \
             health_http(\"http://127.0.0.1:{port}/\", #{{ within: \"30s\" }}),\n",
            serve = SERVE,
            conf = conf_of(name),
        ));
    }
    out.push(']');
    out
}

/// Probes every port, each from a loop of its own, until /tmp/probe.stop
/// exists: one line per probe, `SECONDS.NANOS PORT OK|FAIL`, in
/// /tmp/probe.PORT.log, timed at the probe's start (a probe of a port
/// whose container is gone can hang up to its 1 s limit).
fn prober() -> String {
    let ports: Vec<String> = OLD.iter().map(|(_, _, p)| p.to_string()).collect();
    format!(
        "rm -f /tmp/probe.stop /tmp/probe.*.log\n\
         for p in {ports}; do\n  \
           (while [ ! -e /tmp/probe.stop ]; do\n    \
             t=$(date +%s.%N)\n    \
             if curl -s -o /dev/null --max-time 1 http://127.0.0.1:$p/; then r=OK; else r=FAIL; fi\n    \
             echo \"$t $p $r\" >> /tmp/probe.$p.log\n  \
           done) &\n\
         done\n\
         wait\n",
        ports = ports.join(" ")
    )
}

/// Per port: the summed time from a failed probe to the next answered one,
/// and the mean time between two probes of a port.
fn downtime(log: &str) -> (BTreeMap<u16, Duration>, Duration) {
    let mut by_port: BTreeMap<u16, Vec<(f64, bool)>> = BTreeMap::new();
    for line in log.lines() {
        let mut w = line.split_whitespace();
        let (Some(t), Some(p), Some(r)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let (Ok(t), Ok(p)) = (t.parse::<f64>(), p.parse::<u16>()) else {
            continue;
        };
        by_port.entry(p).or_default().push((t, r == "OK"));
    }
    let mut out = BTreeMap::new();
    let mut intervals = Vec::new();
    for (port, probes) in &by_port {
        let mut down = 0.0;
        let mut since: Option<f64> = None;
        for (t, ok) in probes {
            match (ok, since) {
                (false, None) => since = Some(*t),
                (true, Some(s)) => {
                    down += t - s;
                    since = None;
                }
                _ => {}
            }
        }
        if let (Some(s), Some((last, _))) = (since, probes.last()) {
            down += last - s;
        }
        out.insert(*port, Duration::from_secs_f64(down));
        if probes.len() > 1 {
            let span = probes.last().map_or(0.0, |p| p.0) - probes[0].0;
            intervals.push(span / (probes.len() - 1) as f64);
        }
    }
    let mean = intervals.iter().sum::<f64>() / intervals.len().max(1) as f64;
    (out, Duration::from_secs_f64(mean))
}

/// Runs `step` (an archy command line) with the prober running, and prints
/// each container's downtime.
fn measured(n: &ArchyNode, what: &str, step: &[&str]) {
    let root = n.node.root_path();
    std::fs::write(root.join("root/prober.sh"), prober()).expect("prober");
    let mut probe = std::process::Command::new(support::node::script())
        .args(["exec", n.node.name(), "sh", "/root/prober.sh"])
        .spawn()
        .expect("prober");
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let out = n.archy(step);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(root.join("tmp/probe.stop"), "").expect("stop");
    let _ = probe.wait();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: String = OLD
        .iter()
        .map(|(_, _, p)| {
            std::fs::read_to_string(root.join(format!("tmp/probe.{p}.log"))).expect("probe log")
        })
        .collect();
    let (down, interval) = downtime(&log);
    println!(
        "{what}: archy took {:.2} s; downtime per container (probe interval {:.0} ms):",
        took.as_secs_f64(),
        interval.as_secs_f64() * 1e3
    );
    for (name, _, port) in OLD {
        let d = down.get(&port).copied().unwrap_or_default();
        println!("  {name:<18} {:>7.3} s", d.as_secs_f64());
    }
}

fn main() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("bench-adopt");
    start_old_node(&n);
    n.write(&description("alias=old"));
    measured(
        &n,
        "adoption (archy switch --adopt)",
        &["switch", "--adopt", "/etc/archy/node.rhai"],
    );
    n.write(&description("alias=new"));
    measured(
        &n,
        "hand-over of lnd (a switch that changes lnd.conf)",
        &["switch", "/etc/archy/node.rhai"],
    );
    measured(
        &n,
        "hand-over of bitcoin-knots (archy adopt --now)",
        &["adopt", "--now", "bitcoin-knots"],
    );
}
