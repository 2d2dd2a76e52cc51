//! `user(name, #{ uid, group, groups, home, system })`, `group(name, #{ gid })` and
//! `secret(name, #{ length, owner, group, mode, version, regenerate })`.

use archy_graph::names::{AccountName, Mode, SecretName};
use archy_graph::resource::{GroupSpec, SecretSpec, UserSpec};
use archy_graph::{Resource, Span};
use rhai::Dynamic;

use super::opts::{Opts, display};
use super::{Res, State};

pub fn user(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("user {}", display(&name));
    let mut o = Opts::new(
        what,
        options,
        &["uid", "group", "groups", "home", "system"],
        &at,
    );
    let name = o.first_arg::<AccountName>(&name);
    let uid = o.int("uid", 0, i64::from(u32::MAX - 1)).map(|n| n as u32);
    let group = o.account("group");
    let groups = supplementary_groups(&mut o);
    let home = o.abs_path("home");
    let system = o.bool("system").unwrap_or(true);
    let spec = name.map(|name| {
        Resource::User(UserSpec {
            name,
            uid,
            group,
            groups,
            home,
            system,
        })
    });
    state.finish(at, o.problems, spec)
}

/// `groups: ["bitcoin", "tor"]`: supplementary groups, each named once.
/// Like `group`, a name is checked here and resolved on the node (a group
/// the node has, or one the description declares), since evaluation does
/// not see the node's tables.
fn supplementary_groups(o: &mut Opts) -> Vec<AccountName> {
    let mut out: Vec<AccountName> = Vec::new();
    for g in o.strings("groups").unwrap_or_default() {
        let Some(name) = o.checked("groups", AccountName::try_from(g.as_str())) else {
            continue;
        };
        if out.contains(&name) {
            o.fail_key(
                "groups",
                &format!("names {name} twice"),
                Some("list each group once".into()),
            );
        } else {
            out.push(name);
        }
    }
    out
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
    // `import` is a Rhai keyword: written `"import"` (quoted) in a map, or
    // `import_from`.
    let known = [
        "length",
        "owner",
        "group",
        "mode",
        "version",
        "regenerate",
        "import",
        "import_from",
    ];
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
    let declared = o.int("version", 1, i64::from(u32::MAX)).unwrap_or(1) as u32;
    // The node's rotations (`archy secret rotate`) bump the version the
    // description declares, so rotating needs no edit of the description.
    let rotated = name
        .as_ref()
        .and_then(|n| state.rotations.get(n.as_str()).copied())
        .unwrap_or(0);
    let version = declared.checked_add(rotated).unwrap_or_else(|| {
        o.fail_key(
            "version",
            &format!(
                "is {declared}, and with the {rotated} rotations this node recorded it would pass {}",
                u32::MAX
            ),
            Some("declare a smaller version, or lower the count in the state dir's rotations.json".into()),
        );
        declared
    });
    // Making a lost value anew is safe only where the author says so:
    // the default keeps a lost wallet password from being replaced.
    let regenerate = o.bool("regenerate").unwrap_or(false);
    // The old node's file the value is taken from while archy has none.
    let import = if o.has("import") {
        o.abs_path("import")
    } else {
        o.abs_path("import_from")
    };
    let imported = name.as_ref().map(|n| n.to_string()).zip(import);
    let spec = (|| {
        Some(Resource::Secret(SecretSpec {
            name: name?,
            length,
            owner,
            group,
            mode: mode?,
            version,
            regenerate,
        }))
    })();
    let res = state.finish(at, o.problems, spec);
    if let (Some(d), Some((name, path))) = (&res.0, imported) {
        state
            .imports
            .borrow_mut()
            .push((d.clone(), name, path.to_string()));
    }
    res
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
