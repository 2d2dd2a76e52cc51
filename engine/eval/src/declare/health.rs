//! The checks a switch must pass: `health_unit(name)`,
//! `health_http(url, #{ expect, within })`, `health_tcp(port, #{ host,
//! within })`, `health_cmd(argv, #{ within })`.

use archy_graph::names::{NameError, UnitName};
use archy_graph::resource::{HealthProbe, HealthSpec};
use archy_graph::{Problem, Resource, Span};
use rhai::Dynamic;

use super::opts::{Opts, display, type_name};
use super::{Res, State};

fn finish(state: &State, at: Span, mut o: Opts, probe: Option<HealthProbe>) -> Res {
    let within = o.within();
    let spec = probe
        .zip(within)
        .map(|(probe, within)| Resource::Health(HealthSpec { probe, within }));
    state.finish(at, o.problems, spec)
}

pub fn unit(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let mut o = Opts::new(
        format!("health_unit {}", display(&name)),
        options,
        &["within"],
        &at,
    );
    let probe = o.first_arg::<UnitName>(&name).map(HealthProbe::Unit);
    finish(state, at, o, probe)
}

/// An http:// or https:// URL with a host, and nothing that could break a
/// probe's command line.
fn check_url(u: &str) -> Result<String, NameError> {
    let ok = (u.starts_with("http://") || u.starts_with("https://"))
        && u.split("://").nth(1).is_some_and(|rest| !rest.is_empty())
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(u.to_string())
    } else {
        Err(NameError {
            message: format!("{u:?} is not an http:// or https:// URL"),
            hint: Some("write it like \"http://127.0.0.1:8080/health\"".into()),
        })
    }
}

pub fn http(state: &State, at: Span, url: Dynamic, options: Dynamic) -> Res {
    let mut o = Opts::new(
        format!("health_http {}", display(&url)),
        options,
        &["expect", "within"],
        &at,
    );
    let url = o.first_arg_with(&url, check_url);
    let expect = o.int("expect", 100, 599).unwrap_or(200) as u16;
    let probe = url.map(|url| HealthProbe::Http { url, expect });
    finish(state, at, o, probe)
}

pub fn tcp(state: &State, at: Span, port: Dynamic, options: Dynamic) -> Res {
    let mut o = Opts::new(
        format!("health_tcp {port}"),
        options,
        &["host", "within"],
        &at,
    );
    let port = match port.as_int() {
        Ok(p) if (1..=65535).contains(&p) => Some(p as u16),
        _ => {
            o.fail(
                "needs a port number from 1 to 65535 as its first argument",
                None,
            );
            None
        }
    };
    let host = o.string("host").unwrap_or_else(|| "127.0.0.1".to_string());
    if host.parse::<std::net::IpAddr>().is_err() {
        o.fail_key("host", &format!("is {host:?}, not an IP address"), None);
    }
    let probe = port.map(|port| HealthProbe::Tcp { host, port });
    finish(state, at, o, probe)
}

pub fn cmd(state: &State, at: Span, argv: Dynamic, options: Dynamic) -> Res {
    let mut o = Opts::new("health_cmd".to_string(), options, &["within"], &at);
    let argv = match argv.clone().try_cast::<rhai::Array>() {
        Some(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.clone().into_immutable_string() {
                    Ok(s) if !s.is_empty() => out.push(s.to_string()),
                    Ok(_) => o
                        .problems
                        .push(Problem::at(&at, format!("health_cmd: argv[{i}] is empty"))),
                    Err(_) => o.problems.push(Problem::at(
                        &at,
                        format!(
                            "health_cmd: argv[{i}] must be a string, not {}",
                            type_name(item)
                        ),
                    )),
                }
            }
            if items.is_empty() {
                o.fail(
                    "needs a command: an argv array like [\"/usr/bin/test\", \"-f\", \"/run/x\"]",
                    None,
                );
            }
            Some(out)
        }
        None => {
            o.fail(
                "needs an argv array like [\"/usr/bin/test\", \"-f\", \"/run/x\"]",
                None,
            );
            None
        }
    };
    finish(state, at, o, argv.map(HealthProbe::Cmd))
}

/// `health_archy(path)`: the archy binary at `path` runs and reads the
/// generation being switched to. `archy::units()` declares it for the
/// binary it installs, so a new archy that cannot run is rolled back.
pub fn archy(state: &State, at: Span, path: Dynamic, options: Dynamic) -> Res {
    let mut o = Opts::new(
        format!("health_archy {}", display(&path)),
        options,
        &["within"],
        &at,
    );
    let probe = o
        .first_arg::<archy_graph::names::AbsPath>(&path)
        .map(HealthProbe::Archy);
    finish(state, at, o, probe)
}
