//! Host facts: discovered from the machine by the CLI (never by the
//! evaluator), each overridable with `--fact K=V`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use std::collections::BTreeMap;
use std::sync::Arc;

use archy_eval::HostFacts;
use archy_eval::host::DeferredFact;
use archy_graph::Fact;
use archy_graph::quantity::Bytes;

/// A `--fact` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--fact {given}: {why}")]
pub struct BadFact {
    pub given: String,
    pub why: String,
}

/// The facts of this machine: `hostname`, `ip` (of the interface holding the
/// default route), `mdns` (`<hostname>.local`) and `disk_bytes` (the size of
/// the file system holding the state dir).
pub fn discover(state_dir: &Path) -> HostFacts {
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let mut facts = HostFacts::new();
    facts.insert("mdns".into(), Fact::Text(format!("{hostname}.local")));
    facts.insert("hostname".into(), Fact::Text(hostname));
    facts.insert("ip".into(), Fact::Text(primary_ip().to_string()));
    facts.insert("disk_bytes".into(), Fact::Int(disk_bytes(state_dir)));
    facts
}

/// The interface of the default route, from the kernel's routing table.
fn default_route_interface() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(1) == Some(&"00000000")).then(|| cols[0].to_string())
    })
}

/// The IPv4 address of the default route's interface; else the first
/// non-loopback address; else 127.0.0.1 (a node with only `lo`).
fn primary_ip() -> IpAddr {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    };
    let v4: Vec<(String, Ipv4Addr)> = addrs
        .filter_map(|a| {
            let ip = a.address?.as_sockaddr_in()?.ip();
            Some((a.interface_name, ip))
        })
        .filter(|(_, ip)| !ip.is_loopback())
        .collect();
    let preferred = default_route_interface().and_then(|iface| {
        v4.iter()
            .find(|(name, _)| *name == iface)
            .map(|(_, ip)| *ip)
    });
    IpAddr::V4(
        preferred
            .or_else(|| v4.first().map(|(_, ip)| *ip))
            .unwrap_or(Ipv4Addr::LOCALHOST),
    )
}

/// The size of the file system holding `dir` or its nearest existing parent.
fn disk_bytes(dir: &Path) -> i64 {
    dir.ancestors()
        .find_map(|d| rustix::fs::statvfs(d).ok())
        .map(|s| i64::try_from(s.f_blocks.saturating_mul(s.f_frsize)).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Applies `--fact K=V` overrides. `disk_bytes` takes a size (`2T`, `500Gi`).
pub fn apply_overrides(facts: &mut HostFacts, overrides: &[String]) -> Result<(), BadFact> {
    for given in overrides {
        let bad = |why: &str| BadFact {
            given: given.clone(),
            why: why.to_string(),
        };
        let (k, v) = given
            .split_once('=')
            .ok_or_else(|| bad("write it as NAME=VALUE"))?;
        let name_ok = k.starts_with(|c: char| c.is_ascii_lowercase())
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(bad("a fact name is lowercase letters, digits and '_'"));
        }
        let value = match k {
            "disk_bytes" => {
                let b = Bytes::try_from(v).map_err(|e| bad(&e.message))?;
                Fact::Int(i64::try_from(b.0).map_err(|_| bad("too large"))?)
            }
            _ => Fact::Text(v.to_string()),
        };
        facts.insert(k.to_string(), value);
    }
    Ok(())
}

/// The facts learned only when a description reads them: `archy`, the
/// blake3 of the running archy binary (what `archy::units()` installs as
/// `/usr/local/bin/archy` unless the description names another binary).
pub fn deferred() -> BTreeMap<String, DeferredFact> {
    let archy: DeferredFact = Arc::new(|| Fact::Text(running_archy_hash()));
    BTreeMap::from([("archy".to_string(), archy)])
}

/// The running binary's blake3: from its store name when it runs from the
/// store (free), else by reading it once.
pub fn running_archy_hash() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return String::new();
    };
    if let Some(id) = exe
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<archy_store::ObjectId>().ok())
    {
        return id.digest().to_string();
    }
    // blake3 alone (no sha256 beside it): read at the disk's speed.
    archy_store::Digest::of_file(&exe)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides() {
        let mut f = HostFacts::new();
        apply_overrides(&mut f, &["hostname=n1".into(), "disk_bytes=2T".into()]).expect("valid");
        assert_eq!(f["hostname"], Fact::Text("n1".into()));
        assert_eq!(f["disk_bytes"], Fact::Int(2_000_000_000_000));
        assert!(apply_overrides(&mut f, &["nokey".into()]).is_err());
        assert!(apply_overrides(&mut f, &["Bad=1".into()]).is_err());
        assert!(apply_overrides(&mut f, &["disk_bytes=lots".into()]).is_err());
    }

    #[test]
    fn discovery_gives_every_fact() {
        let f = discover(Path::new("/"));
        for k in ["hostname", "ip", "mdns", "disk_bytes"] {
            assert!(f.contains_key(k), "{k}");
        }
        assert!(matches!(&f["ip"], Fact::Text(ip) if ip.parse::<IpAddr>().is_ok()));
        assert!(matches!(f["disk_bytes"], Fact::Int(n) if n > 0));
    }
}
