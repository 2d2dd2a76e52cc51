//! Rendering containers, networks and volumes as Quadlet files
//! (`/etc/containers/systemd/*.container`, `.network`, `.volume`), so that
//! systemd owns them: podman's Quadlet generator turns each file into a
//! service at daemon-reload, with restart policy, ordering and logs in the
//! journal. No archy process watches a container.
//!
//! Names are pinned (`ContainerName=`, `NetworkName=`, `VolumeName=`), so a
//! container, network or volume is called what the author called it, not
//! Quadlet's default `systemd-<name>`: the volumes that older scripts made
//! are found again by name.

use archy_graph::resource::{
    ContainerSpec, MountSource, NetworkMode, NetworkSpec, Protocol, UnitSection, VolumeSpec,
};

/// Where Quadlet reads the files for rootful podman.
pub const QUADLET_DIR: &str = "/etc/containers/systemd";

/// The label every container archy runs carries, its value the
/// container's name: a container with a declared name but without this
/// label was made by someone else.
pub const CONTAINER_LABEL: &str = "io.archy.container";

/// The podman secret a secret of the node is copied into, for `secret_env`.
pub fn podman_secret_name(secret: &str) -> String {
    format!("archy-{secret}")
}

/// One word of an `Exec=`-like line, quoted as systemd splits words:
/// Quadlet passes the words on into the service's `ExecStart=`, where `%`
/// starts a specifier and `$` a variable, so both are doubled.
pub fn quote_word(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || "\"'\\;".contains(c));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn quote_words<'a>(words: impl IntoIterator<Item = &'a String>) -> String {
    words
        .into_iter()
        .map(|w| quote_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A JSON array of strings: the only form of `Entrypoint=` that keeps
/// several words apart.
fn json_array(words: &[String]) -> String {
    let items: Vec<String> = words
        .iter()
        .map(|w| {
            let mut s = String::from("\"");
            for c in w.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    c => s.push(c),
                }
            }
            s.push('"');
            s
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn section(name: &str, entries: Vec<(String, String)>) -> UnitSection {
    UnitSection {
        name: name.into(),
        entries,
    }
}

fn kv(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

/// The writable bind-mounted folders of a container: its data, handed to
/// `data_uid`.
pub fn data_dirs(c: &ContainerSpec) -> Vec<&str> {
    c.volumes
        .iter()
        .filter(|m| !m.options.iter().any(|o| o == "ro"))
        .filter_map(|m| match &m.source {
            MountSource::Bind(p) => Some(p.as_str()),
            MountSource::Volume(_) => None,
        })
        .collect()
}

/// A resource Quadlet makes a service of: the sections of its file. A
/// trait, so that the types stay archy-graph's and their Quadlet rendering
/// this crate's.
pub trait QuadletFile {
    /// The file's sections.
    fn quadlet_sections(&self) -> Vec<UnitSection>;
}

impl QuadletFile for ContainerSpec {
    /// The `.container` file's sections.
    fn quadlet_sections(&self) -> Vec<UnitSection> {
        let name = self.name.as_str();
        let mut unit = vec![kv("Description", format!("archy container {name}"))];
        for r in &self.requires {
            unit.push(kv("Requires", format!("{r}.service")));
            unit.push(kv("After", format!("{r}.service")));
        }

        let mut c = vec![
            kv("ContainerName", name),
            kv("Image", self.image.reference()),
            kv("Label", format!("{CONTAINER_LABEL}={name}")),
            // archy has every image in place before a unit starts; a start
            // never reaches for the network.
            kv("Pull", "never"),
        ];
        if let Some(ep) = &self.entrypoint {
            // Quadlet takes this value whole (no word splitting) and quotes
            // it for `ExecStart=` itself; only systemd's `%` and `$` need
            // doubling.
            let json = json_array(ep).replace('%', "%%").replace('$', "$$");
            c.push(kv("Entrypoint", json));
        }
        if !self.exec.is_empty() {
            c.push(kv("Exec", quote_words(&self.exec)));
        }
        match &self.network {
            NetworkMode::Default => {}
            NetworkMode::Host => c.push(kv("Network", "host")),
            NetworkMode::None => c.push(kv("Network", "none")),
            NetworkMode::Named(n) => c.push(kv("Network", format!("{n}.network"))),
        }
        if matches!(self.network, NetworkMode::Default | NetworkMode::Named(_)) {
            // The host as this container's network sees it (the bridge's
            // gateway), never whatever podman guesses from the LAN.
            c.push(kv("AddHost", "host.containers.internal:host-gateway"));
        }
        for p in &self.ports {
            let proto = match p.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
            let ip = match &p.host_ip {
                Some(ip) if ip.contains(':') => format!("[{ip}]:"),
                Some(ip) => format!("{ip}:"),
                None => String::new(),
            };
            c.push(kv(
                "PublishPort",
                format!("{ip}{}:{}/{proto}", p.host_port, p.container_port),
            ));
        }
        for m in &self.volumes {
            let source = match &m.source {
                MountSource::Bind(p) => p.to_string(),
                MountSource::Volume(v) => format!("{v}.volume"),
            };
            let mut spec = format!("{source}:{}", m.target);
            if !m.options.is_empty() {
                spec.push(':');
                spec.push_str(&m.options.join(","));
            }
            c.push(kv("Volume", spec));
        }
        for t in &self.tmpfs {
            let mut spec = t.target.to_string();
            if !t.options.is_empty() {
                spec.push(':');
                spec.push_str(&t.options.join(","));
            }
            c.push(kv("Tmpfs", spec));
        }
        for (k, v) in self.env.iter().chain(&self.derived_env) {
            c.push(kv("Environment", quote_word(&format!("{k}={v}"))));
        }
        for (var, secret) in &self.secret_env {
            let s = podman_secret_name(secret.as_str());
            c.push(kv("Secret", format!("{s},type=env,target={var}")));
        }
        if let Some(u) = &self.user {
            c.push(kv("User", quote_word(u)));
        }
        let mut args: Vec<String> = Vec::new();
        if let Some(m) = self.memory {
            args.push(format!("--memory={}", m.0));
        }
        if let Some(cpus) = self.cpus {
            args.push(format!("--cpus={}.{:03}", cpus.0 / 1000, cpus.0 % 1000));
        }
        args.extend(self.podman_args.iter().cloned());
        if !args.is_empty() {
            c.push(kv("PodmanArgs", quote_words(&args)));
        }

        if let Some(t) = self.stop_timeout {
            c.push(kv("StopTimeout", t.0.div_ceil(1000).to_string()));
        }

        let mut service = vec![kv("Restart", "always")];
        if let Some(t) = self.stop_timeout {
            // systemd waits for podman's stop, plus a margin for podman
            // itself, instead of killing it at its own default (90 s).
            service.push(kv("TimeoutStopSec", (t.0.div_ceil(1000) + 30).to_string()));
        }
        if let Some(uid) = self.data_uid {
            let gid = self.data_gid.unwrap_or(uid);
            for dir in data_dirs(self) {
                service.push(kv(
                    "ExecStartPre",
                    format!("/usr/bin/chown -R {uid}:{gid} {}", quote_word(dir)),
                ));
            }
        }
        vec![
            section("Unit", unit),
            section("Container", c),
            section("Service", service),
            section("Install", vec![kv("WantedBy", "multi-user.target")]),
        ]
    }
}

impl QuadletFile for NetworkSpec {
    /// The `.network` file's sections.
    fn quadlet_sections(&self) -> Vec<UnitSection> {
        let mut n = vec![kv("NetworkName", self.name.as_str())];
        if self.internal {
            n.push(kv("Internal", "true"));
        }
        if let Some(s) = &self.subnet {
            n.push(kv("Subnet", s.as_str()));
        }
        vec![
            section(
                "Unit",
                vec![kv("Description", format!("archy network {}", self.name))],
            ),
            section("Network", n),
        ]
    }
}

impl QuadletFile for VolumeSpec {
    /// The `.volume` file's sections.
    fn quadlet_sections(&self) -> Vec<UnitSection> {
        vec![
            section(
                "Unit",
                vec![kv("Description", format!("archy volume {}", self.name))],
            ),
            section("Volume", vec![kv("VolumeName", self.name.as_str())]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_systemd() {
        assert_eq!(quote_word("httpd"), "httpd");
        assert_eq!(quote_word("a b"), "\"a b\"");
        assert_eq!(quote_word("100%"), "100%%");
        assert_eq!(quote_word("$HOME"), "$$HOME");
        assert_eq!(quote_word("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quote_word(""), "\"\"");
        assert_eq!(quote_word("a\\b"), "\"a\\\\b\"");
    }
}
