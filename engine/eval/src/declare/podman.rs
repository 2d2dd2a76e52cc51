//! `network(name, #{ internal, subnet })` and `volume(name, #{})`.

use archy_graph::names::PodmanName;
use archy_graph::resource::{NetworkSpec, VolumeSpec};
use archy_graph::{Resource, Span};
use rhai::Dynamic;

use super::opts::{Opts, display};
use super::{Res, State};

/// `a.b.c.d/len`, checked as an IP network so podman never sees nonsense.
fn check_subnet(s: &str) -> bool {
    s.split_once('/').is_some_and(|(ip, len)| {
        let max = if ip.contains(':') { 128 } else { 32 };
        ip.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= max)
    })
}

pub fn network(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("network {}", display(&name));
    let mut o = Opts::new(what, options, &["internal", "subnet"], &at);
    let name = o.first_arg::<PodmanName>(&name);
    if matches!(name.as_ref().map(PodmanName::as_str), Some("host" | "none")) {
        o.fail(
            "has a name podman reserves",
            Some("containers use network: \"host\" or \"none\" without declaring it".into()),
        );
    }
    let internal = o.bool("internal").unwrap_or(false);
    let subnet = o.string("subnet");
    if let Some(s) = &subnet
        && !check_subnet(s)
    {
        let msg = format!("is {s:?}, not a subnet");
        o.fail_key(
            "subnet",
            &msg,
            Some("write it like \"10.89.1.0/24\"".into()),
        );
    }
    let spec = name.map(|name| {
        Resource::Network(NetworkSpec {
            name,
            internal,
            subnet,
        })
    });
    state.finish(at, o.problems, spec)
}

pub fn volume(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("volume {}", display(&name));
    let mut o = Opts::new(what, options, &[], &at);
    let name = o.first_arg::<PodmanName>(&name);
    let spec = name.map(|name| Resource::Volume(VolumeSpec { name }));
    state.finish(at, o.problems, spec)
}
