//! `unit(name, #{ Unit: #{..}, Service: #{..}, Install: #{..}, on_change,
//! reads, secrets, health })`. Capitalized keys are the unit file's
//! sections; the lowercase ones are archy's.

use archy_graph::names::{AbsPath, SecretName, UnitName};
use archy_graph::resource::{OnChange, UnitSection, UnitSpec};
use archy_graph::{Resource, Span};
use archy_units::unit_keys::{check_key, check_section, sections_for};
use rhai::{Dynamic, Map};

use super::opts::{Opts, display, scalar_text, type_name};
use super::{Res, State};

const OPTIONS: &[&str] = &["on_change", "reads", "secrets", "instances", "health"];

pub fn unit(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("unit {}", display(&name));
    // Sections are split off first; the rest are archy's options.
    let (section_maps, rest) = split_sections(options);
    let mut o = Opts::new(what, rest, OPTIONS, &at);
    let name = o.first_arg::<UnitName>(&name);
    let on_change = o.on_change();
    let Reads {
        paths: reads,
        secrets,
        reload_triggers,
    } = reads(&mut o);
    let instance_names = o.strings("instances");
    let health = o.bool("health").unwrap_or(true);
    let Some(name) = name else {
        return state.finish(at, o.problems, None);
    };
    let instances = instance_names
        .map(|names| super::instance::declared_instances(&name, names, &at, &mut o))
        .unwrap_or_default();
    let sections = sections(&name, section_maps, &mut o);
    // Only a unit whose settings are all valid can be judged as a whole.
    if o.problems.is_empty() {
        check_unit_sense(&name, &sections, on_change, &mut o);
        if !reload_triggers.is_empty() {
            check_reloadable(
                &name,
                &sections,
                "a read with on_change: \"reload\"",
                &mut o,
            );
        }
    }
    let spec = Resource::Unit(UnitSpec {
        name,
        sections,
        on_change,
        reads,
        secrets,
        reload_triggers,
        health,
    });
    let res = state.finish(at, o.problems, Some(spec));
    if let Some(template) = &res.0
        && !instances.is_empty()
    {
        state
            .instances
            .borrow_mut()
            .push((template.clone(), instances));
    }
    res
}

/// Splits `#{ Service: .., on_change: .. }` into the sections (keys that
/// start with a capital letter) and everything else.
pub(super) fn split_sections(options: Dynamic) -> (Vec<(String, Dynamic)>, Dynamic) {
    let Some(map) = options.clone().try_cast::<Map>() else {
        return (Vec::new(), options);
    };
    let mut sections = Vec::new();
    let mut rest = Map::new();
    for (k, v) in map {
        if k.starts_with(|c: char| c.is_ascii_uppercase()) {
            sections.push((k.to_string(), v));
        } else {
            rest.insert(k, v);
        }
    }
    (sections, Dynamic::from_map(rest))
}

/// The sections in systemd's order, each key checked for this unit type.
pub(super) fn sections(
    name: &UnitName,
    maps: Vec<(String, Dynamic)>,
    o: &mut Opts,
) -> Vec<UnitSection> {
    let ty = name.unit_type();
    let order = sections_for(ty);
    let rank = |s: &str| order.iter().position(|x| *x == s).unwrap_or(order.len());
    let mut out = Vec::new();
    for (section, value) in maps {
        if let Err(e) = check_section(ty, &section) {
            o.fail(&e.message, Some(e.hint));
            continue;
        }
        let Some(map) = value.clone().try_cast::<Map>() else {
            o.fail(
                &format!(
                    "[{section}] must be a map of settings, not {}",
                    type_name(&value)
                ),
                None,
            );
            continue;
        };
        let mut entries = Vec::new();
        for (key, v) in map {
            if let Err(e) = check_key(ty, &section, &key) {
                o.fail(&e.message, Some(e.hint));
                continue;
            }
            entry_values(&section, &key, &v, &mut entries, o);
        }
        out.push(UnitSection {
            name: section,
            entries,
        });
    }
    out.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then(a.name.cmp(&b.name)));
    out
}

/// One `Key=value` line, or one line per element of an array.
fn entry_values(
    section: &str,
    key: &str,
    v: &Dynamic,
    entries: &mut Vec<(String, String)>,
    o: &mut Opts,
) {
    let values: Vec<Dynamic> = match v.clone().try_cast::<rhai::Array>() {
        Some(items) => items,
        None => vec![v.clone()],
    };
    for item in values {
        // systemd's continuation: a line ending in a backslash goes on in
        // the next, the backslash read as a space. The value is written
        // joined, as systemd reads it.
        match scalar_text(&item).map(|s| s.replace("\\\n", " ")) {
            Some(s) if s.contains('\n') => o.fail(
                &format!("[{section}] {key}= has a line break, which would end the setting early"),
                Some(line_break_hint(key)),
            ),
            Some(s) => entries.push((key.to_string(), s)),
            None => o.fail(
                &format!(
                    "[{section}] {key}= must be a string, number, bool or an array of them, not {}",
                    type_name(&item)
                ),
                None,
            ),
        }
    }
}

/// What to write instead of a line break in `key=`'s value.
fn line_break_hint(key: &str) -> String {
    if key.starts_with("Exec") && !key.ends_with("Paths") {
        // ExecStart= twice is two commands (only a oneshot may have them).
        return format!(
            "to go on with the command on the next line, end the line with ` \\` (systemd joins the lines), or write it on one line; an array would make several {key}= lines, each a command of its own"
        );
    }
    let list = [
        "Environment",
        "EnvironmentFile",
        "Wants",
        "Requires",
        "Requisite",
        "BindsTo",
        "PartOf",
        "Upholds",
        "Conflicts",
        "Before",
        "After",
        "OnFailure",
        "OnSuccess",
        "Documentation",
        "ReadWritePaths",
        "ReadOnlyPaths",
        "InaccessiblePaths",
        "ExecPaths",
        "NoExecPaths",
        "BindPaths",
        "BindReadOnlyPaths",
        "ListenStream",
        "ListenDatagram",
        "OnCalendar",
        "SupplementaryGroups",
        "RequiresMountsFor",
        "WantedBy",
        "RequiredBy",
        "Also",
        "DeviceAllow",
    ];
    if list.contains(&key) {
        format!(
            "give several values as an array: one {key}= line each, which systemd adds together"
        )
    } else {
        "write the value on one line, or end the line with ` \\` to go on in the next (systemd joins the lines)".into()
    }
}

/// What a unit reads: paths (some of them reload triggers) and secrets.
pub(super) struct Reads {
    pub paths: Vec<AbsPath>,
    pub secrets: Vec<SecretName>,
    /// The paths whose change reloads the unit instead of restarting it.
    pub reload_triggers: Vec<AbsPath>,
}

/// `reads`: resources or absolute paths whose change must restart the unit,
/// or `#{ path, on_change: "reload" }` for one whose change reloads it;
/// `secrets`: secrets (or their names) it reads at run time.
pub(super) fn reads(o: &mut Opts) -> Reads {
    let mut out = Reads {
        paths: Vec::new(),
        secrets: Vec::new(),
        reload_triggers: Vec::new(),
    };
    for key in ["reads", "secrets"] {
        let Some(v) = o.take(key) else { continue };
        let items = v
            .clone()
            .try_cast::<rhai::Array>()
            .unwrap_or_else(|| vec![v]);
        for item in items {
            if key == "reads"
                && let Some(map) = item.clone().try_cast::<Map>()
            {
                if let Some((path, reload)) = read_with_options(map, o) {
                    if reload {
                        out.reload_triggers.push(path.clone());
                    }
                    out.paths.push(path);
                }
                continue;
            }
            read_item(key, item, o, &mut out);
        }
    }
    for list in [&mut out.paths, &mut out.reload_triggers] {
        list.sort();
        list.dedup();
    }
    out.secrets.sort();
    out.secrets.dedup();
    out
}

/// One plain item of `reads` or `secrets`: a resource, a path or a name.
fn read_item(key: &str, item: Dynamic, o: &mut Opts, out: &mut Reads) {
    if let Some(r) = item.clone().try_cast::<Res>() {
        match r.declared().map(|d| &d.resource) {
            Some(Resource::File(f)) => out.paths.push(f.path.clone()),
            Some(Resource::Dir(d)) => out.paths.push(d.path.clone()),
            Some(Resource::Secret(s)) => out.secrets.push(s.name.clone()),
            Some(other) => o.fail_key(
                key,
                &format!(
                    "names a {}, but a unit can only read files, dirs and secrets",
                    other.kind()
                ),
                None,
            ),
            None => {} // its own constructor reported why it is invalid
        }
        return;
    }
    let Some(s) = item.clone().into_immutable_string().ok() else {
        o.fail_key(
            key,
            &format!(
                "has {}, not a resource, a path or #{{ path, on_change }}",
                type_name(&item)
            ),
            None,
        );
        return;
    };
    if key == "secrets" {
        if let Some(n) = o.checked(key, SecretName::try_from(s.as_str())) {
            out.secrets.push(n);
        }
    } else if let Some(p) = o.checked(key, AbsPath::try_from(s.as_str())) {
        out.paths.push(p);
    }
}

/// `#{ path: file_or_path, on_change: "reload" | "restart" }` in `reads`:
/// the path, and whether its change reloads the unit.
fn read_with_options(map: Map, o: &mut Opts) -> Option<(AbsPath, bool)> {
    const KEYS: &[&str] = &["path", "on_change"];
    if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        o.fail_key(
            "reads",
            &format!("has an entry with the unknown key {k:?}"),
            Some("an entry is #{ path: file_or_path, on_change: \"reload\" }".into()),
        );
        return None;
    }
    let reload = match map
        .get("on_change")
        .map(|v| v.clone().into_immutable_string())
    {
        None => false,
        Some(Ok(s)) if s == "reload" => true,
        Some(Ok(s)) if s == "restart" => false,
        Some(other) => {
            let shown = other
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|t| t.to_string());
            o.fail_key(
                "reads",
                &format!("has an entry whose on_change is {shown}"),
                Some("a read's on_change is \"reload\" or \"restart\"".into()),
            );
            return None;
        }
    };
    let Some(path) = map.get("path") else {
        o.fail_key(
            "reads",
            "has an entry without a path",
            Some("an entry is #{ path: file_or_path, on_change: \"reload\" }".into()),
        );
        return None;
    };
    let mut one = Reads {
        paths: Vec::new(),
        secrets: Vec::new(),
        reload_triggers: Vec::new(),
    };
    read_item("reads", path.clone(), o, &mut one);
    match (one.paths.pop(), one.secrets.is_empty()) {
        (Some(p), true) => Some((p, reload)),
        (None, false) => {
            o.fail_key(
                "reads",
                "has an entry whose path is a secret",
                Some("list secrets under `secrets`; a secret's change always restarts".into()),
            );
            None
        }
        _ => None,
    }
}

fn has_key(sections: &[UnitSection], section: &str, key: &str) -> bool {
    sections
        .iter()
        .filter(|s| s.name == section)
        .any(|s| s.entries.iter().any(|(k, _)| k == key))
}

/// Units systemd would refuse to load, caught here instead of on the node.
fn check_unit_sense(name: &UnitName, sections: &[UnitSection], on_change: OnChange, o: &mut Opts) {
    match name.unit_type() {
        "service" if !has_key(sections, "Service", "ExecStart") => o.fail(
            "has no ExecStart= in [Service]; systemd refuses to load such a service",
            Some("add Service: #{ ExecStart: \"/path/to/program args\" }".into()),
        ),
        "timer"
            if !sections
                .iter()
                .filter(|s| s.name == "Timer")
                .any(|s| s.entries.iter().any(|(k, _)| k.starts_with("On"))) =>
        {
            o.fail(
                "has no OnCalendar= or other On...= trigger in [Timer]; it would never fire",
                Some("add Timer: #{ OnCalendar: \"daily\" }".into()),
            )
        }
        _ => {}
    }
    if on_change == OnChange::Reload {
        check_reloadable(name, sections, "on_change: \"reload\"", o);
    }
}

/// A service reloads only through its `ExecReload=`; systemd refuses to
/// reload one without it (other unit types reload in their own way: a
/// mount remounts).
fn check_reloadable(name: &UnitName, sections: &[UnitSection], what: &str, o: &mut Opts) {
    if name.unit_type() == "service" && !has_key(sections, "Service", "ExecReload") {
        o.fail(
            &format!("has {what} but no ExecReload= in [Service]"),
            Some("add ExecReload=, or let the change restart the unit".into()),
        );
    }
}
