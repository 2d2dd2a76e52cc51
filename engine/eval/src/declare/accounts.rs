//! `user(name, #{ uid, group, home, system })`, `group(name, #{ gid })` and
//! `secret(name, #{ length, owner, group, mode, version })`.

use archy_graph::names::{AccountName, Mode, SecretName};
use archy_graph::resource::{GroupSpec, SecretSpec, UserSpec};
use archy_graph::{Resource, Span};
use rhai::Dynamic;

use super::opts::{Opts, display};
use super::{Res, State};

pub fn user(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("user {}", display(&name));
    let mut o = Opts::new(what, options, &["uid", "group", "home", "system"], &at);
    let name = o.first_arg::<AccountName>(&name);
    let uid = o.int("uid", 0, i64::from(u32::MAX - 1)).map(|n| n as u32);
    let group = o.account("group");
    let home = o.abs_path("home");
    let system = o.bool("system").unwrap_or(true);
    let spec = name.map(|name| {
        Resource::User(UserSpec {
            name,
            uid,
            group,
            home,
            system,
        })
    });
    state.finish(at, o.problems, spec)
}

pub fn group(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("group {}", display(&name));
    let mut o = Opts::new(what, options, &["gid"], &at);
    let name = o.first_arg::<AccountName>(&name);
    let gid = o.int("gid", 0, i64::from(u32::MAX - 1)).map(|n| n as u32);
    let spec = name.map(|name| Resource::Group(GroupSpec { name, gid }));
    state.finish(at, o.problems, spec)
}

/// Options that would put a secret's value into the description.
const VALUE_KEYS: &[&str] = &["value", "text", "password", "content"];

pub fn secret(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("secret {}", display(&name));
    let known = ["length", "owner", "group", "mode", "version"];
    // Refuse a value before the generic unknown-option check, with the why.
    let value_given = options
        .clone()
        .try_cast::<rhai::Map>()
        .is_some_and(|m| VALUE_KEYS.iter().any(|k| m.contains_key(*k)));
    let options = if value_given {
        strip_values(options)
    } else {
        options
    };
    let mut o = Opts::new(what, options, &known, &at);
    if value_given {
        o.fail(
            "cannot be given a value",
            Some("archy generates each secret on the node and keeps it out of the description, the store and the logs; remove the value".into()),
        );
    }
    let name = o.first_arg::<SecretName>(&name);
    let length = o.int("length", 12, 4096).unwrap_or(32) as u32;
    let owner = o.account("owner");
    let group = o.account("group");
    let mode = o.mode(Mode::SECRET);
    if let Some(m) = mode
        && m.bits() & 0o007 != 0
    {
        o.fail_key(
            "mode",
            &format!("is {m}, which lets every user read the secret"),
            Some("use 0600, or 0640 with a `group`".into()),
        );
    }
    let version = o.int("version", 1, i64::from(u32::MAX)).unwrap_or(1) as u32;
    let spec = (|| {
        Some(Resource::Secret(SecretSpec {
            name: name?,
            length,
            owner,
            group,
            mode: mode?,
            version,
        }))
    })();
    state.finish(at, o.problems, spec)
}

/// The options without the keys that would hold a value, so the value is
/// never carried further, not even into an error message.
fn strip_values(options: Dynamic) -> Dynamic {
    match options.try_cast::<rhai::Map>() {
        Some(mut m) => {
            for k in VALUE_KEYS {
                m.remove(*k);
            }
            Dynamic::from_map(m)
        }
        None => Dynamic::UNIT,
    }
}
