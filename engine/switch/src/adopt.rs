//! Adopting running containers archy did not make (see `archy_plan::adopt`
//! for the whole of it): what podman says of one compared with what its
//! Quadlet file would make, and the drop-in that holds its unit until the
//! hand-over.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use archy_graph::resource::{ContainerSpec, MountSource, NetworkMode, Protocol};
use archy_plan::{Aspect, Difference};
use archy_podman::{ContainerDetails, PODMAN_ENV};

fn diff(aspect: Aspect, declared: impl Into<String>, running: impl Into<String>) -> Difference {
    Difference {
        aspect,
        declared: declared.into(),
        running: running.into(),
    }
}

/// The published ports as podman reports them: `[IP:]HOST:PORT/PROTO`.
fn declared_ports(spec: &ContainerSpec) -> BTreeSet<String> {
    spec.ports
        .iter()
        .map(|p| {
            let proto = match p.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
            let ip = match p.host_ip.as_deref() {
                None | Some("0.0.0.0") => String::new(),
                Some(ip) if ip.contains(':') => format!("[{ip}]:"),
                Some(ip) => format!("{ip}:"),
            };
            format!("{ip}{}:{}/{proto}", p.host_port, p.container_port)
        })
        .collect()
}

/// The network podman puts a container on for `mode`.
fn declared_network(mode: &NetworkMode) -> String {
    match mode {
        NetworkMode::Default => "podman".into(),
        NetworkMode::Host => "host".into(),
        NetworkMode::None => "none".into(),
        NetworkMode::Named(n) => n.to_string(),
    }
}

/// The fixed address `--ip=` (or `--ip ADDR`) among `podman_args`.
fn declared_ip(args: &[String]) -> Option<&str> {
    args.iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--ip=") {
            Some(ip) => Some(ip),
            None if a == "--ip" => args.get(i + 1).map(String::as_str),
            None => None,
        })
}

/// `source:target[:ro]`, as a mount is written.
fn mount_text(source: &str, target: &str, read_only: bool) -> String {
    if read_only {
        format!("{source}:{target}:ro")
    } else {
        format!("{source}:{target}")
    }
}

/// Every way `running` is not what the Quadlet file of `spec` would make:
/// image (`declared_image_id`: the id the declared reference names here,
/// if podman has it), command, user, environment keys (never values),
/// published ports, mounts, network and address. Pure.
pub fn compare(
    spec: &ContainerSpec,
    running: &ContainerDetails,
    declared_image_id: Option<&str>,
) -> Vec<Difference> {
    let mut out = Vec::new();
    if declared_image_id != Some(running.image_id.as_str()) {
        out.push(diff(
            Aspect::Image,
            spec.image.reference(),
            running.image_name.clone(),
        ));
    }
    if let Some(ep) = &spec.entrypoint
        && *ep != running.entrypoint
    {
        out.push(diff(
            Aspect::Command,
            ep.join(" "),
            running.entrypoint.join(" "),
        ));
    }
    if !spec.exec.is_empty() && spec.exec != running.cmd {
        out.push(diff(
            Aspect::Command,
            spec.exec.join(" "),
            running.cmd.join(" "),
        ));
    }
    if let Some(user) = &spec.user
        && *user != running.user
    {
        out.push(diff(Aspect::User, user.clone(), running.user.clone()));
    }
    let declared_env: BTreeSet<&str> = spec
        .env
        .keys()
        .chain(spec.derived_env.keys())
        .chain(spec.secret_env.keys())
        .map(String::as_str)
        .collect();
    for key in &declared_env {
        if !running.env_keys.contains(*key) {
            out.push(diff(Aspect::Env, *key, ""));
        }
    }
    for key in &running.env_keys {
        let given = !declared_env.contains(key.as_str())
            && !running.image_env_keys.contains(key)
            && !PODMAN_ENV.contains(&key.as_str());
        if given {
            out.push(diff(Aspect::Env, "", key.clone()));
        }
    }
    let ports = declared_ports(spec);
    for p in ports.difference(&running.ports) {
        out.push(diff(Aspect::Port, p.clone(), ""));
    }
    for p in running.ports.difference(&ports) {
        out.push(diff(Aspect::Port, "", p.clone()));
    }
    let mut mounts: BTreeMap<&str, &archy_podman::MountInfo> = running
        .mounts
        .iter()
        .map(|m| (m.target.as_str(), m))
        .collect();
    for m in &spec.volumes {
        let source = match &m.source {
            MountSource::Bind(p) => p.to_string(),
            MountSource::Volume(v) => v.to_string(),
        };
        let read_only = m.options.iter().any(|o| o == "ro");
        let declared = mount_text(&source, m.target.as_str(), read_only);
        match mounts.remove(m.target.as_str()) {
            None => out.push(diff(Aspect::Mount, declared, "")),
            Some(r) if r.source != source || r.read_only != read_only => out.push(diff(
                Aspect::Mount,
                declared,
                mount_text(&r.source, &r.target, r.read_only),
            )),
            Some(_) => {}
        }
    }
    for r in mounts.values() {
        out.push(diff(
            Aspect::Mount,
            "",
            mount_text(&r.source, &r.target, r.read_only),
        ));
    }
    let network = declared_network(&spec.network);
    let on: Vec<&String> = running.networks.keys().collect();
    if on != [&network] {
        let names: Vec<&str> = on.iter().map(|s| s.as_str()).collect();
        out.push(diff(Aspect::Network, network.clone(), names.join(",")));
    } else if let Some(ip) = declared_ip(&spec.podman_args) {
        let has = running.networks.get(&network).map_or("", String::as_str);
        if has != ip {
            out.push(diff(
                Aspect::Network,
                format!("{network} {ip}"),
                format!("{network} {has}"),
            ));
        }
    }
    out.sort();
    out
}

/// Where the hold drop-in of `unit` is on the node under `root`.
pub fn hold_file(root: &Path, unit: &str) -> PathBuf {
    root.join(archy_plan::adopt::hold_path(unit))
}

/// Whether the unit of `container` is held (adopted, not handed over).
pub fn is_held(root: &Path, container: &str) -> bool {
    hold_file(root, &format!("{container}.service")).exists()
}

/// Writes the drop-in that holds the unit of the adopted `container`
/// (atomically: a temp file renamed into place).
pub fn hold(root: &Path, container: &str) -> std::io::Result<()> {
    let unit = format!("{container}.service");
    let path = hold_file(root, &unit);
    let dir = path.parent().expect("a drop-in has a folder");
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".{}.archy-new", archy_plan::adopt::HOLD_DROPIN));
    std::fs::write(&temp, archy_plan::adopt::hold_text(&unit, container))?;
    std::fs::rename(&temp, &path)
}

/// Removes the hold of `container`'s unit (and its folder, if that is all
/// it held). Returns whether there was one.
pub fn release(root: &Path, container: &str) -> std::io::Result<bool> {
    let path = hold_file(root, &format!("{container}.service"));
    match std::fs::remove_file(&path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                // Not empty: someone else's drop-ins stay.
                let _ = std::fs::remove_dir(dir);
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
