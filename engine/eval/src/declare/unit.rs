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

const OPTIONS: &[&str] = &["on_change", "reads", "secrets", "health"];

pub fn unit(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("unit {}", display(&name));
    // Sections are split off first; the rest are archy's options.
    let (section_maps, rest) = split_sections(options);
    let mut o = Opts::new(what, rest, OPTIONS, &at);
    let name = o.first_arg::<UnitName>(&name);
    let on_change = o.on_change();
    let (reads, secrets) = reads(&mut o);
    let health = o.bool("health").unwrap_or(true);
    let Some(name) = name else {
        return state.finish(at, o.problems, None);
    };
    let sections = sections(&name, section_maps, &mut o);
    // Only a unit whose settings are all valid can be judged as a whole.
    if o.problems.is_empty() {
        check_unit_sense(&name, &sections, on_change, &mut o);
    }
    let spec = Resource::Unit(UnitSpec {
        name,
        sections,
        on_change,
        reads,
        secrets,
        health,
    });
    state.finish(at, o.problems, Some(spec))
}

/// Splits `#{ Service: .., on_change: .. }` into the sections (keys that
/// start with a capital letter) and everything else.
fn split_sections(options: Dynamic) -> (Vec<(String, Dynamic)>, Dynamic) {
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
fn sections(name: &UnitName, maps: Vec<(String, Dynamic)>, o: &mut Opts) -> Vec<UnitSection> {
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
        match scalar_text(&item) {
            Some(s) if s.contains('\n') => o.fail(
                &format!("[{section}] {key}= has a line break, which would end the setting early"),
                Some(
                    "give several values as an array; systemd joins continuation lines itself"
                        .into(),
                ),
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

/// `reads`: resources or absolute paths whose change must restart the unit.
fn reads(o: &mut Opts) -> (Vec<AbsPath>, Vec<SecretName>) {
    let mut paths = Vec::new();
    let mut secrets = Vec::new();
    for key in ["reads", "secrets"] {
        let Some(v) = o.take(key) else { continue };
        let items = v
            .clone()
            .try_cast::<rhai::Array>()
            .unwrap_or_else(|| vec![v]);
        for item in items {
            if let Some(r) = item.clone().try_cast::<Res>() {
                match r.declared().map(|d| &d.resource) {
                    Some(Resource::File(f)) => paths.push(f.path.clone()),
                    Some(Resource::Dir(d)) => paths.push(d.path.clone()),
                    Some(Resource::Secret(s)) => secrets.push(s.name.clone()),
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
                continue;
            }
            let Some(s) = item.clone().into_immutable_string().ok() else {
                o.fail_key(
                    key,
                    &format!("has {}, not a resource or a path", type_name(&item)),
                    None,
                );
                continue;
            };
            if key == "secrets" {
                if let Some(n) = o.checked(key, SecretName::try_from(s.as_str())) {
                    secrets.push(n);
                }
            } else if let Some(p) = o.checked(key, AbsPath::try_from(s.as_str())) {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths.dedup();
    secrets.sort();
    secrets.dedup();
    (paths, secrets)
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
    if on_change == OnChange::Reload && !has_key(sections, "Service", "ExecReload") {
        o.fail(
            "says on_change: \"reload\" but has no ExecReload= in [Service]",
            Some("add ExecReload=, or use on_change: \"restart\"".into()),
        );
    }
}
