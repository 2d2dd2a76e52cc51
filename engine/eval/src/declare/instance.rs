//! Template instances and drop-ins:
//! `unit_instance("app@.service", "testnet", #{ reads, secrets, on_change, health })`
//! (also `unit("app@.service", #{ ..., instances: ["testnet"] })`) and
//! `dropin("systemd-networkd.service", "archy-br0", #{ Service: #{..}, on_change, reads, secrets })`.

use std::rc::Rc;

use archy_graph::names::UnitName;
use archy_graph::resource::{DropinSpec, InstanceSpec};
use archy_graph::{Declared, Kind, Resource, ResourceKey, Span};
use rhai::{Dynamic, Engine, NativeCallContext};

use super::opts::{Opts, display};
use super::unit::{Reads, reads, sections, split_sections};
use super::{Res, State};

const INSTANCE_OPTIONS: &[&str] = &["on_change", "reads", "secrets", "health"];
const DROPIN_OPTIONS: &[&str] = &["on_change", "reads", "secrets"];

type Constructor3 = fn(&State, Span, Dynamic, Dynamic, Dynamic) -> (Res, Option<String>);

/// Registers `name(a, b)` and `name(a, b, options)`.
pub(super) fn register(engine: &mut Engine, state: &Rc<State>) {
    for (name, kind, make) in [
        (
            "unit_instance",
            Kind::Instance,
            unit_instance as Constructor3,
        ),
        ("dropin", Kind::Dropin, dropin as Constructor3),
    ] {
        let s = state.clone();
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, a: Dynamic, b: Dynamic| {
                construct(&s, kind, make, &ctx, (a, b, Dynamic::UNIT))
            },
        );
        let s = state.clone();
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, a: Dynamic, b: Dynamic, c: Dynamic| {
                construct(&s, kind, make, &ctx, (a, b, c))
            },
        );
    }
}

/// Runs a constructor; when it fails, remembers the key the resource would
/// have had, so references to it are not reported a second time.
fn construct(
    state: &State,
    kind: Kind,
    make: Constructor3,
    ctx: &NativeCallContext,
    args: (Dynamic, Dynamic, Dynamic),
) -> Res {
    let (res, id) = make(state, state.enter(ctx), args.0, args.1, args.2);
    if let (None, Some(id)) = (res.declared(), id) {
        state.invalid.borrow_mut().insert(ResourceKey { kind, id });
    }
    res
}

/// `name` escaped as systemd-escape does for an instance: `/` becomes
/// `-`, other characters a unit name cannot hold become `\xNN`.
fn escaped(name: &str) -> String {
    let mut out = String::new();
    for (i, b) in name.trim_matches('/').bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b":_.".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The instance `instance` of `template`, checked: the template is one,
/// and the instance makes a valid unit name.
fn instance_spec(template: &UnitName, instance: &str, o: &mut Opts) -> Option<InstanceSpec> {
    if !template.is_template() {
        o.fail(
            &format!("{template} is not a template, so it has no instances"),
            Some("a template's name ends in @.TYPE, e.g. \"app@.service\"".into()),
        );
        return None;
    }
    let bad = instance.is_empty()
        || instance.contains('@')
        || !instance
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\".contains(c));
    let full = template
        .as_str()
        .replacen("@.", &format!("@{instance}."), 1);
    if bad || UnitName::try_from(full.as_str()).is_err() {
        let hint = match escaped(instance) {
            e if !e.is_empty() && e != instance => format!(
                "an instance name may hold letters, digits and : - _ . \\ only; systemd-escape writes \"{instance}\" as \"{e}\" (and %I in the template gives back the original)"
            ),
            _ => "an instance name may hold letters, digits and : - _ . \\ only, and no @".into(),
        };
        o.fail(
            &format!("instance {instance:?} of {template} is not a valid instance name"),
            Some(hint),
        );
        return None;
    }
    Some(InstanceSpec {
        template: template.clone(),
        instance: instance.to_string(),
        on_change: None,
        reads: Vec::new(),
        secrets: Vec::new(),
        health: true,
    })
}

/// The instances a template's `instances: [...]` declares, each at the
/// template's call; a name given twice is refused.
pub(super) fn declared_instances(
    template: &UnitName,
    names: Vec<String>,
    at: &Span,
    o: &mut Opts,
) -> Vec<Declared> {
    let mut out: Vec<Declared> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for name in &names {
        if seen.contains(&name.as_str()) {
            o.fail_key(
                "instances",
                &format!("names instance {name:?} twice"),
                Some("list each instance once".into()),
            );
            continue;
        }
        seen.push(name);
        if let Some(spec) = instance_spec(template, name, o) {
            out.push(Declared {
                resource: Resource::Instance(spec),
                at: at.clone(),
            });
        }
    }
    out
}

fn text_arg(value: &Dynamic, what: &str, o: &mut Opts) -> Option<String> {
    match value.clone().into_immutable_string() {
        Ok(s) => Some(s.to_string()),
        Err(_) => {
            o.fail(
                &format!(
                    "the {what} must be a string, not {}",
                    super::opts::type_name(value)
                ),
                None,
            );
            None
        }
    }
}

/// `unit_instance(template, instance, #{ reads, secrets, on_change, health })`.
fn unit_instance(
    state: &State,
    at: Span,
    template: Dynamic,
    instance: Dynamic,
    options: Dynamic,
) -> (Res, Option<String>) {
    let what = format!(
        "unit_instance {} {}",
        display(&template),
        display(&instance)
    );
    let mut o = Opts::new(what, options, INSTANCE_OPTIONS, &at);
    // `"app@"` is short for `"app@.service"`.
    let template = match template.clone().into_immutable_string() {
        Ok(t) if t.ends_with('@') => Dynamic::from(format!("{t}.service")),
        _ => template,
    };
    let template = o.first_arg::<UnitName>(&template);
    let instance = text_arg(&instance, "second argument (the instance)", &mut o);
    let on_change = o.has("on_change").then(|| o.on_change());
    let health = o.bool("health").unwrap_or(true);
    let (reads, secrets) = plain_reads(&mut o);
    let spec = match (template, instance) {
        (Some(t), Some(i)) => instance_spec(&t, &i, &mut o),
        _ => None,
    };
    let id = spec.as_ref().map(InstanceSpec::unit);
    let resource = spec.map(|s| {
        Resource::Instance(InstanceSpec {
            on_change,
            reads,
            secrets,
            health,
            ..s
        })
    });
    (state.finish(at, o.problems, resource), id)
}

/// The paths and secrets of `reads`/`secrets`. A read that says
/// `on_change: "reload"` is a `unit(...)` option only: refused here rather
/// than taken as a restart.
fn plain_reads(
    o: &mut Opts,
) -> (
    Vec<archy_graph::names::AbsPath>,
    Vec<archy_graph::names::SecretName>,
) {
    let Reads {
        paths,
        secrets,
        reload_triggers,
    } = reads(o);
    if !reload_triggers.is_empty() {
        o.fail_key(
            "reads",
            "has a read with on_change: \"reload\", which only unit(...) takes",
            Some("give the instance or drop-in on_change: \"reload\" as a whole, or move the read to the unit".into()),
        );
    }
    (paths, secrets)
}

/// A drop-in's name: a plain file name, without `.conf`.
fn dropin_name(name: &str, o: &mut Opts) -> Option<String> {
    let name = name.strip_suffix(".conf").unwrap_or(name);
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c));
    if !ok {
        o.fail(
            &format!("drop-in name {name:?} is not a plain file name"),
            Some("use letters, digits and - _ . @ :, e.g. \"archy-br0\" (archy adds .conf)".into()),
        );
        return None;
    }
    Some(name.to_string())
}

/// `dropin(unit, name, #{ Section: #{..}, on_change, reads, secrets })`.
fn dropin(
    state: &State,
    at: Span,
    unit: Dynamic,
    name: Dynamic,
    options: Dynamic,
) -> (Res, Option<String>) {
    let what = format!("dropin {} {}", display(&unit), display(&name));
    let (section_maps, rest) = split_sections(options);
    let mut o = Opts::new(what, rest, DROPIN_OPTIONS, &at);
    let unit = o.first_arg::<UnitName>(&unit);
    let name = text_arg(&name, "second argument (the drop-in's name)", &mut o)
        .and_then(|n| dropin_name(&n, &mut o));
    let on_change = o.on_change();
    let (reads, secrets) = plain_reads(&mut o);
    let (Some(unit), Some(name)) = (unit, name) else {
        return (state.finish(at, o.problems, None), None);
    };
    let maps: Vec<(String, Dynamic)> = section_maps
        .into_iter()
        .filter(|(section, _)| {
            if section == "Install" {
                o.fail(
                    "a drop-in cannot have an [Install] section: systemd reads [Install] only from the unit's own file",
                    Some("enable the unit itself, or declare it with unit(...)".into()),
                );
                return false;
            }
            true
        })
        .collect();
    if maps.is_empty() && o.problems.is_empty() {
        o.fail(
            "has no settings: a drop-in needs at least one section",
            Some("add a section, e.g. Service: #{ Environment: \"A=1\" }".into()),
        );
    }
    let sections = sections(&unit, maps, &mut o);
    let spec = DropinSpec {
        unit,
        name,
        sections,
        on_change,
        reads,
        secrets,
    };
    let id = spec.path();
    (
        state.finish(at, o.problems, Some(Resource::Dropin(spec))),
        Some(id),
    )
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn escaping_as_systemd_escape() {
        assert_eq!(escaped("dev/sda"), "dev-sda");
        assert_eq!(escaped("a b"), "a\\x20b");
    }
}
