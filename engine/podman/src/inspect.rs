//! What `podman inspect` says of one container, read from the JSON podman
//! 5.4 sends (`GET /libpod/containers/NAME/json`) by hand: podman-api's
//! inspect model expects a number for `Config.StopSignal`, where podman 5
//! sends a string (`"SIGINT"`), and fails on every container.
//!
//! Only what adopting a running container compares with its declaration is
//! kept: image, command, user, environment keys, published ports, mounts,
//! networks, labels, and when it started (to show it was not restarted).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A container, as podman inspects it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerDetails {
    /// The full container id (64 hex digits).
    pub id: String,
    pub name: String,
    pub running: bool,
    /// When it last started, as podman says it (RFC 3339).
    pub started_at: String,
    /// The id of its image (64 hex digits).
    pub image_id: String,
    /// The image name it was created with.
    pub image_name: String,
    /// `Config.Entrypoint` (the image's unless it was given).
    pub entrypoint: Vec<String>,
    /// `Config.Cmd`: the arguments after the entrypoint.
    pub cmd: Vec<String>,
    /// `Config.User`, empty when none was given.
    pub user: String,
    /// The names of its environment variables (never their values: a
    /// secret may be one).
    pub env_keys: BTreeSet<String>,
    /// The names its image sets itself (filled in by the caller that asks
    /// for the image too).
    pub image_env_keys: BTreeSet<String>,
    /// Published ports: `[HOST_IP:]HOST_PORT:CONTAINER_PORT/PROTO`.
    pub ports: BTreeSet<String>,
    pub mounts: Vec<MountInfo>,
    /// The networks it is on, each with its address there (empty when it
    /// has none); `host` or `none` for those modes.
    pub networks: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MountInfo {
    /// Where it is mounted in the container.
    pub target: String,
    /// A bind mount's host path, or a volume's name.
    pub source: String,
    pub volume: bool,
    pub read_only: bool,
}

/// The environment variables podman sets in every container itself.
pub const PODMAN_ENV: [&str; 5] = ["PATH", "container", "HOME", "HOSTNAME", "TERM"];

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// A list of strings, or one string (older podman sent `Entrypoint` as
/// one), or nothing.
fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(text).collect(),
        Value::String(s) if !s.is_empty() => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// The names in a list of `KEY=value`.
pub(crate) fn env_keys(v: &Value) -> BTreeSet<String> {
    words_exact(v)
        .into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
        .collect()
}

fn words_exact(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|items| items.iter().map(text).collect())
        .unwrap_or_default()
}

fn ports(bindings: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(map) = bindings.as_object() else {
        return out;
    };
    for (inside, hosts) in map {
        let (port, proto) = inside.split_once('/').unwrap_or((inside, "tcp"));
        for host in hosts.as_array().into_iter().flatten() {
            let ip = text(&host["HostIp"]);
            let host_port = text(&host["HostPort"]);
            let ip = match ip.as_str() {
                "" | "0.0.0.0" => String::new(),
                ip if ip.contains(':') => format!("[{ip}]:"),
                ip => format!("{ip}:"),
            };
            out.insert(format!("{ip}{host_port}:{port}/{proto}"));
        }
    }
    out
}

fn mounts(v: &Value) -> Vec<MountInfo> {
    let mut out: Vec<MountInfo> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let volume = m["Type"].as_str() == Some("volume");
            MountInfo {
                target: text(&m["Destination"]),
                source: if volume {
                    text(&m["Name"])
                } else {
                    text(&m["Source"])
                },
                volume,
                read_only: m["RW"].as_bool() == Some(false),
            }
        })
        .collect();
    out.sort();
    out
}

fn networks(v: &Value) -> BTreeMap<String, String> {
    let mode = text(&v["HostConfig"]["NetworkMode"]);
    if mode == "host" || mode == "none" {
        return [(mode, String::new())].into();
    }
    v["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, n)| (name.clone(), text(&n["IPAddress"])))
        .collect()
}

/// podman's inspect JSON of a container as [`ContainerDetails`].
pub(crate) fn container(v: &Value) -> ContainerDetails {
    let labels = v["Config"]["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, val)| (k.clone(), text(val)))
        .collect();
    ContainerDetails {
        id: text(&v["Id"]),
        name: text(&v["Name"]).trim_start_matches('/').to_owned(),
        running: v["State"]["Running"].as_bool().unwrap_or(false),
        started_at: text(&v["State"]["StartedAt"]),
        image_id: text(&v["Image"]),
        image_name: text(&v["ImageName"]),
        entrypoint: words(&v["Config"]["Entrypoint"]),
        cmd: words_exact(&v["Config"]["Cmd"]),
        user: text(&v["Config"]["User"]),
        env_keys: env_keys(&v["Config"]["Env"]),
        image_env_keys: BTreeSet::new(),
        ports: ports(&v["HostConfig"]["PortBindings"]),
        mounts: mounts(&v["Mounts"]),
        networks: networks(v),
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What podman 5.4.2 answered on a test node for `podman run -d --name
    /// web --network appnet --ip 10.31.31.10 -p 127.0.0.1:18080:8080 -v
    /// web-data:/data -v /etc/hostname:/www/h:ro -e FOO=1 -e BAR=2
    /// --stop-signal SIGINT --user 1000:1000 busybox httpd -f -p 8080 -h
    /// /www`: its `StopSignal` is a string.
    const INSPECT: &str = include_str!("../fixtures/podman-5.4-container-inspect.json");

    #[test]
    fn podman_5_4_inspect_parses() {
        let v: Value = serde_json::from_str(INSPECT).unwrap();
        assert_eq!(v["Config"]["StopSignal"], "SIGINT");
        let c = container(&v);
        assert_eq!(c.name, "web");
        assert_eq!(c.id.len(), 64);
        assert!(c.running);
        assert_eq!(c.started_at, "2026-12-05T02:25:40.349991608Z");
        assert_eq!(c.image_name, "localhost/testbed/busybox:latest");
        assert_eq!(c.image_id.len(), 64);
        assert!(c.entrypoint.is_empty());
        assert_eq!(c.cmd, ["httpd", "-f", "-p", "8080", "-h", "/www"]);
        assert_eq!(c.user, "1000:1000");
        let keys: Vec<&str> = c.env_keys.iter().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["BAR", "FOO", "HOME", "HOSTNAME", "PATH", "container"]
        );
        assert_eq!(
            c.ports.iter().collect::<Vec<_>>(),
            ["127.0.0.1:18080:8080/tcp"]
        );
        assert_eq!(
            c.mounts,
            [
                MountInfo {
                    target: "/data".into(),
                    source: "web-data".into(),
                    volume: true,
                    read_only: false
                },
                MountInfo {
                    target: "/www/h".into(),
                    source: "/etc/hostname".into(),
                    volume: false,
                    read_only: true
                },
            ]
        );
        assert_eq!(
            c.networks,
            BTreeMap::from([("appnet".to_owned(), "10.31.31.10".to_owned())])
        );
        assert!(c.labels.is_empty());
    }

    #[test]
    fn host_networking_and_string_entrypoints_are_read() {
        let v = serde_json::json!({
            "HostConfig": { "NetworkMode": "host" },
            "Config": { "Entrypoint": "/bin/sh -c", "Env": ["A=1=2", "B="] },
        });
        let c = container(&v);
        assert_eq!(c.networks.keys().collect::<Vec<_>>(), ["host"]);
        assert_eq!(c.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(c.env_keys.iter().collect::<Vec<_>>(), ["A", "B"]);
    }
}
