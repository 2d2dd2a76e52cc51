//! `container(name, #{ image [+ digest] | build, entrypoint, exec, network,
//! ports, volumes, tmpfs, env, derived_env, secret_env, user, memory, cpus,
//! on_change, requires, data_uid, data_gid, podman_args, stop_timeout, health })`:
//! a container that systemd runs (through Quadlet).

use std::collections::{BTreeMap, BTreeSet};

use archy_graph::names::{AbsPath, PodmanName, SecretName};
use archy_graph::quantity::{Bytes, MilliCpus};
use archy_graph::resource::{
    ContainerSpec, ImageSource, Mount, MountSource, NetworkMode, PortMap, Protocol, Tmpfs,
};
use archy_graph::{Resource, Span};
use rhai::Dynamic;

use super::opts::{Opts, Scalar, display};
use super::{Res, State};
use crate::template;

const OPTIONS: &[&str] = &[
    "image",
    "digest",
    "build",
    "entrypoint",
    "exec",
    "network",
    "ports",
    "volumes",
    "tmpfs",
    "env",
    "derived_env",
    "secret_env",
    "user",
    "memory",
    "cpus",
    "on_change",
    "requires",
    "data_uid",
    "data_gid",
    "podman_args",
    "stop_timeout",
    "health",
];

pub fn container(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("container {}", display(&name));
    let mut o = Opts::new(what, options, OPTIONS, &at);
    let name = o.first_arg::<PodmanName>(&name);
    let image = image(state, &mut o);
    let entrypoint = o.strings("entrypoint");
    if entrypoint.as_ref().is_some_and(Vec::is_empty) {
        o.fail_key(
            "entrypoint",
            "is empty",
            Some("leave it out to keep the image's entrypoint".into()),
        );
    }
    let exec = o.strings("exec").unwrap_or_default();
    let network = network(&mut o);
    let ports = ports(&mut o);
    let volumes = volumes(&mut o);
    let tmpfs = tmpfs(&mut o);
    let (env, derived_env, secret_env) = environment(state, &mut o);
    let user = o.string("user");
    let memory = memory(&mut o);
    let cpus = cpus(&mut o);
    let on_change = o.on_change();
    let requires = requires(&mut o);
    let data_uid = o
        .int("data_uid", 0, i64::from(u32::MAX - 1))
        .map(|n| n as u32);
    let data_gid = o
        .int("data_gid", 0, i64::from(u32::MAX - 1))
        .map(|n| n as u32);
    if data_gid.is_some() && data_uid.is_none() {
        o.fail_key(
            "data_gid",
            "is set without `data_uid`",
            Some("set `data_uid` too (the gid defaults to it)".into()),
        );
    }
    let podman_args = o.strings("podman_args").unwrap_or_default();
    if podman_args.iter().any(String::is_empty) {
        o.fail_key("podman_args", "has an empty argument", None);
    }
    let stop_timeout = o.duration("stop_timeout").ok().flatten();
    let health = o.bool("health").unwrap_or(true);
    let spec = (|| {
        Some(Resource::Container(Box::new(ContainerSpec {
            name: name?,
            image: image?,
            entrypoint,
            exec,
            network,
            ports,
            volumes,
            tmpfs,
            env,
            derived_env,
            secret_env,
            user,
            memory,
            cpus,
            on_change,
            requires,
            data_uid,
            data_gid,
            podman_args,
            stop_timeout,
            health,
        })))
    })();
    state.finish(at, o.problems, spec)
}

/// `image` (a reference) xor `build` (a folder of the node's sources).
fn image(state: &State, o: &mut Opts) -> Option<ImageSource> {
    let (has_image, has_build) = (o.has("image"), o.has("build"));
    if has_image == has_build {
        let why = if has_image {
            "has both `image` and `build`"
        } else {
            "needs `image` or `build`"
        };
        o.fail(why, Some("give `image: \"name:tag\"` to pull, or `build: \"apps/<app>\"` to build from a folder with a Containerfile".into()));
        o.take("image");
        o.take("build");
        o.take("digest");
        return None;
    }
    if has_image {
        let r = o.string("image")?;
        let digest = o.string("digest");
        return pinned_reference(&r, digest.as_deref(), o).map(ImageSource::Reference);
    }
    if o.take("digest").is_some() {
        o.fail_key(
            "digest",
            "pins a pulled image, but this container is built",
            Some("a built image is named by the hash of its folder already: remove `digest`, or pull with `image: \"name:tag\"`".into()),
        );
    }
    let context = o.string("build")?;
    let logical = match crate::resolver::logical_path(&context) {
        Ok(p) => p,
        Err((msg, hint)) => {
            o.fail_key("build", &msg, Some(hint));
            return None;
        }
    };
    match state.sources.read_tree(&logical) {
        Ok(files) => Some(ImageSource::Build {
            context: logical,
            tree: state.context(files),
        }),
        Err(e) => {
            o.fail(&format!("option `build`: {}", e.message), e.hint);
            None
        }
    }
}

/// An image reference taken apart: `repository[:tag][@digest]`.
#[derive(Debug, PartialEq, Eq)]
struct Reference<'a> {
    repository: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Splits `r` the way podman reads it: the digest follows `@`; the tag is
/// after a `:` in the last path part only (`localhost:5000/app` has a
/// registry port, not a tag).
fn split_reference(r: &str) -> Reference<'_> {
    let (name, digest) = match r.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (r, None),
    };
    let last_part = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_part..].rfind(':') {
        Some(i) => Reference {
            repository: &name[..last_part + i],
            tag: Some(&name[last_part + i + 1..]),
            digest,
        },
        None => Reference {
            repository: name,
            tag: None,
            digest,
        },
    }
}

/// Why `d` is not a digest as podman writes one: `sha256:` and 64
/// lowercase hex digits (the OCI form; podman refuses upper case).
fn digest_problem(d: &str) -> Option<&'static str> {
    let Some(hex) = d.strip_prefix("sha256:") else {
        return Some("does not start with `sha256:`");
    };
    if hex.len() != 64 {
        return Some("does not have 64 hex digits after `sha256:`");
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Some("has characters other than lowercase hex digits after `sha256:`");
    }
    None
}

const DIGEST_HINT: &str = "write \"sha256:\" and the 64 lowercase hex digits of the image's digest, as `podman image inspect --format '{{.Digest}}' NAME` prints it";

/// The reference the graph keeps for `image` (and `digest`, if given).
/// With a digest, the digest is what the hash covers: the tag is only a
/// label for people, so it is dropped and `name@sha256:...` kept (podman
/// and Quadlet take that form), and two descriptions that differ only in
/// the tag next to one digest hash the same.
fn pinned_reference(r: &str, digest: Option<&str>, o: &mut Opts) -> Option<String> {
    if !check_reference(r, o) {
        return None;
    }
    if let Some(d) = digest
        && let Some(why) = digest_problem(d)
    {
        o.fail_key("digest", &format!("{d:?} {why}"), Some(DIGEST_HINT.into()));
        return None;
    }
    let parts = split_reference(r);
    let digest = match (parts.digest, digest) {
        (Some(inline), Some(given)) if inline != given => {
            o.fail_key(
                "digest",
                &format!("is {given:?}, but `image` {r:?} pins another digest"),
                Some("give the digest once, in `digest` or after `@` in `image`, or make the two the same".into()),
            );
            return None;
        }
        (inline, given) => inline.or(given),
    };
    Some(match digest {
        Some(d) => format!("{}@{d}", parts.repository),
        None => r.to_string(),
    })
}

/// `name[:tag][@sha256:<64 hex>]`, no spaces; a digest, when given, must be
/// well formed since it is what the hash covers.
fn check_reference(r: &str, o: &mut Opts) -> bool {
    let bad = |o: &mut Opts, why: &str| {
        o.fail_key("image", &format!("{r:?} {why}"), Some("write a reference like \"docker.io/library/nginx:1.27\" or \"name@sha256:<64 hex digits>\"".into()));
        false
    };
    if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad(o, "is not an image reference");
    }
    let parts = split_reference(r);
    if parts.repository.is_empty() {
        return bad(o, "has no image name");
    }
    if parts.tag == Some("") {
        return bad(o, "has an empty tag after `:`");
    }
    if parts.digest.is_some_and(|d| digest_problem(d).is_some()) {
        return bad(o, "has a malformed digest");
    }
    true
}

fn network(o: &mut Opts) -> NetworkMode {
    match o.string("network").as_deref() {
        None => NetworkMode::Default,
        Some("host") => NetworkMode::Host,
        Some("none") => NetworkMode::None,
        Some(n) => o
            .checked("network", PodmanName::try_from(n))
            .map(NetworkMode::Named)
            .unwrap_or(NetworkMode::Default),
    }
}

/// `requires: ["backend"]`: names of other containers of the node.
fn requires(o: &mut Opts) -> Vec<PodmanName> {
    let mut out: Vec<PodmanName> = Vec::new();
    for n in o.strings("requires").unwrap_or_default() {
        if let Some(name) = o.checked("requires", PodmanName::try_from(n.as_str())) {
            if out.contains(&name) {
                o.fail_key("requires", &format!("names {name} twice"), None);
            } else {
                out.push(name);
            }
        }
    }
    out
}

fn port_number(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|p| *p > 0)
}

/// `[host_ip:]host_port:container_port[/tcp|/udp]`.
fn parse_port(s: &str) -> Result<PortMap, String> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, "tcp")) => (spec, Protocol::Tcp),
        Some((spec, "udp")) => (spec, Protocol::Udp),
        Some(_) => return Err(format!("{s:?} has a protocol other than tcp or udp")),
        None => (s, Protocol::Tcp),
    };
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (container, host, ip) = match parts.as_slice() {
        [c, h] => (c, h, None),
        [c, h, ip] => (c, h, Some(ip.trim_matches(|c| c == '[' || c == ']'))),
        _ => return Err(format!("{s:?} is not host_port:container_port")),
    };
    let (Some(host_port), Some(container_port)) = (port_number(host), port_number(container))
    else {
        return Err(format!("{s:?} has a port outside 1..=65535"));
    };
    if let Some(ip) = ip
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return Err(format!("{s:?} has {ip:?}, which is not an IP address"));
    }
    Ok(PortMap {
        host_ip: ip.map(str::to_string),
        host_port,
        container_port,
        protocol,
    })
}

fn ports(o: &mut Opts) -> Vec<PortMap> {
    let mut out: Vec<PortMap> = Vec::new();
    for s in o.strings("ports").unwrap_or_default() {
        match parse_port(&s) {
            Ok(p) => {
                let clash = out.iter().any(|q| {
                    q.host_port == p.host_port && q.protocol == p.protocol && q.host_ip == p.host_ip
                });
                if clash {
                    o.fail_key(
                        "ports",
                        &format!("publishes host port {} twice", p.host_port),
                        None,
                    );
                }
                out.push(p);
            }
            Err(msg) => o.fail_key(
                "ports",
                &msg,
                Some("write \"8080:80\", \"127.0.0.1:8080:80\" or \"53:53/udp\"".into()),
            ),
        }
    }
    out
}

/// Mount options: plain words and `key=value`, nothing that could end the
/// Quadlet line or smuggle another option in.
fn mount_options(s: Option<&str>) -> Result<Vec<String>, String> {
    let Some(s) = s else { return Ok(Vec::new()) };
    s.split(',')
        .map(|opt| {
            let ok = !opt.is_empty()
                && opt
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "=_-.".contains(c));
            if ok {
                Ok(opt.to_string())
            } else {
                Err(format!("mount option {opt:?} is not valid"))
            }
        })
        .collect()
}

fn volumes(o: &mut Opts) -> Vec<Mount> {
    let mut out = Vec::new();
    let mut targets = BTreeSet::new();
    for s in o.strings("volumes").unwrap_or_default() {
        let mut parts = s.splitn(3, ':');
        let (source, target, opts) = (parts.next().unwrap_or(""), parts.next(), parts.next());
        let hint = Some(
            "write \"/host/path:/container/path[:ro]\" or \"volume-name:/container/path\""
                .to_string(),
        );
        let Some(target) = target else {
            o.fail_key("volumes", &format!("{s:?} has no container path"), hint);
            continue;
        };
        let source = if source.starts_with('/') {
            o.checked("volumes", AbsPath::try_from(source))
                .map(MountSource::Bind)
        } else {
            o.checked("volumes", PodmanName::try_from(source))
                .map(MountSource::Volume)
        };
        let target = o.checked("volumes", AbsPath::try_from(target));
        let options = mount_options(opts)
            .map_err(|m| o.fail_key("volumes", &m, None))
            .ok();
        if let (Some(source), Some(target), Some(options)) = (source, target, options) {
            if !targets.insert(target.clone()) {
                o.fail_key("volumes", &format!("mounts two things at {target}"), None);
            }
            out.push(Mount {
                source,
                target,
                options,
            });
        }
    }
    out
}

fn tmpfs(o: &mut Opts) -> Vec<Tmpfs> {
    let mut out = Vec::new();
    for s in o.strings("tmpfs").unwrap_or_default() {
        let (target, opts) = match s.split_once(':') {
            Some((t, opts)) => (t, Some(opts)),
            None => (s.as_str(), None),
        };
        let target = o.checked("tmpfs", AbsPath::try_from(target));
        let options = mount_options(opts)
            .map_err(|m| o.fail_key("tmpfs", &m, None))
            .ok();
        if let (Some(target), Some(options)) = (target, options) {
            out.push(Tmpfs { target, options });
        }
    }
    out
}

fn env_name_ok(k: &str) -> bool {
    k.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

type Env = (
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    BTreeMap<String, SecretName>,
);

/// `env`, `derived_env` (templates over host facts) and `secret_env`
/// (secret names): one variable may be set by one of them only.
fn environment(state: &State, o: &mut Opts) -> Env {
    let env = o.string_map("env").unwrap_or_default();
    let mut derived = BTreeMap::new();
    for (k, t) in o.string_map("derived_env").unwrap_or_default() {
        match template::render(&t, &state.host) {
            Ok(v) => {
                derived.insert(k, v);
            }
            Err(e) => o.fail(&format!("derived_env {k}: {}", e.message), Some(e.hint)),
        }
    }
    let mut secret = BTreeMap::new();
    for (k, name) in o.string_map("secret_env").unwrap_or_default() {
        if let Some(n) = o.checked("secret_env", SecretName::try_from(name.as_str())) {
            secret.insert(k, n);
        }
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let all = env
        .keys()
        .map(|k| (k, "env"))
        .chain(derived.keys().map(|k| (k, "derived_env")))
        .chain(secret.keys().map(|k| (k, "secret_env")));
    let mut problems = Vec::new();
    for (k, from) in all {
        if !env_name_ok(k) {
            problems.push((
                format!("{from} has {k:?}, which is not a variable name"),
                Some("use letters, digits and '_', not starting with a digit".to_string()),
            ));
        }
        if let Some(first) = seen.insert(k, from) {
            problems.push((
                format!("sets {k} in both {first} and {from}"),
                Some("set each variable once".to_string()),
            ));
        }
    }
    for (msg, hint) in problems {
        o.fail(&msg, hint);
    }
    (env, derived, secret)
}

fn memory(o: &mut Opts) -> Option<Bytes> {
    match o.scalar("memory")? {
        Scalar::Int(n) => {
            let r = u64::try_from(n).map_err(|_| archy_graph::quantity::QuantityError {
                message: format!("size {n} is negative"),
                hint: "write a size like \"512Mi\"".into(),
            });
            match r {
                Ok(n) => o.checked("memory", Bytes::try_from(n)),
                Err(e) => o.checked::<Bytes, _>("memory", Err(e)),
            }
        }
        Scalar::Text(s) => o.checked("memory", Bytes::try_from(s.as_str())),
        Scalar::Float(f) => {
            o.fail_key(
                "memory",
                &format!("is {f}, a fraction of a byte"),
                Some("write a whole size like \"1536Mi\"".into()),
            );
            None
        }
    }
}

fn cpus(o: &mut Opts) -> Option<MilliCpus> {
    match o.scalar("cpus")? {
        Scalar::Int(n) => o.checked("cpus", MilliCpus::try_from(n.to_string().as_str())),
        // A float's shortest decimal form is exactly what the author wrote.
        Scalar::Float(f) => o.checked("cpus", MilliCpus::try_from(f.to_string().as_str())),
        Scalar::Text(s) => o.checked("cpus", MilliCpus::try_from(s.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_tag_and_digest() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let split = |r: &'static str| {
            let p = split_reference(r);
            (p.repository, p.tag, p.digest)
        };
        assert_eq!(split("nginx"), ("nginx", None, None));
        assert_eq!(split("nginx:1.27"), ("nginx", Some("1.27"), None));
        assert_eq!(
            split("localhost:5000/app"),
            ("localhost:5000/app", None, None)
        );
        assert_eq!(
            split("localhost:5000/app:2"),
            ("localhost:5000/app", Some("2"), None)
        );
        let pinned = format!("docker.io/library/nginx:1.27@{d}");
        let p = split_reference(&pinned);
        assert_eq!(
            (p.repository, p.tag, p.digest),
            ("docker.io/library/nginx", Some("1.27"), Some(d))
        );
    }

    #[test]
    fn digests_must_be_sha256_and_64_lowercase_hex() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(digest_problem(&format!("sha256:{hex}")), None);
        for bad in [
            hex.clone(),
            format!("sha512:{hex}"),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{hex}0"),
        ] {
            assert!(digest_problem(&bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn ports_parse() {
        let p = parse_port("127.0.0.1:8080:80").expect("valid");
        assert_eq!(
            (p.host_ip.as_deref(), p.host_port, p.container_port),
            (Some("127.0.0.1"), 8080, 80)
        );
        assert_eq!(
            parse_port("53:53/udp").expect("valid").protocol,
            Protocol::Udp
        );
        for bad in [
            "80",
            "0:80",
            "70000:80",
            "a:80",
            "1.2.3:80:80",
            "80:80/sctp",
        ] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }
}
