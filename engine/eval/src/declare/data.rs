//! `data(name, #{ path, version, kind, opened, rebuild })`: an app's data
//! contract (see `archy_graph::data`).

use archy_graph::data::{DataKind, DataSpec};
use archy_graph::names::AppName;
use archy_graph::{Resource, Span};
use rhai::Dynamic;

use super::opts::{Opts, display};
use super::{Res, State};

const KINDS: &str = "use \"forward-only\" (never put back: lnd's channels), \"snapshot\" (safe to restore) or \"rebuildable\" (made again: an index)";

pub fn data(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("data {}", display(&name));
    let mut o = Opts::new(
        what,
        options,
        &["path", "version", "kind", "opened", "rebuild"],
        &at,
    );
    let name = o.first_arg::<AppName>(&name);
    if !o.has("path") {
        o.fail(
            "needs `path`, the data directory",
            Some(
                "data(\"lnd\", #{ path: \"/var/lib/lnd\", version: 1, kind: \"forward-only\" })"
                    .into(),
            ),
        );
    }
    let path = o.abs_path("path");
    if !o.has("version") {
        o.fail(
            "needs `version`, the data format this version of the app reads and writes",
            Some("a whole number the app's module sets from its image or binary version".into()),
        );
    }
    let version = o.int("version", 1, i64::from(u32::MAX)).map(|v| v as u32);
    let kind = match o.string("kind").as_deref() {
        Some("forward-only") => Some(DataKind::ForwardOnly),
        Some("snapshot") => Some(DataKind::Snapshot),
        Some("rebuildable") => Some(DataKind::Rebuildable),
        Some(other) => {
            o.fail_key("kind", &format!("is {other:?}"), Some(KINDS.into()));
            None
        }
        None => {
            o.fail("needs `kind`", Some(KINDS.into()));
            None
        }
    };
    let opened = o.string("opened");
    if let Some(rel) = &opened {
        let clean = !rel.is_empty()
            && !rel.starts_with('/')
            && rel
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != "..");
        if !clean {
            o.fail_key(
                "opened",
                &format!("is {rel:?}"),
                Some("a file inside the data directory, relative to it, like \"data/graph/mainnet/channel.db\"".into()),
            );
        }
    }
    let rebuild = o.string("rebuild");
    match kind {
        Some(DataKind::ForwardOnly) | Some(DataKind::Snapshot) if rebuild.is_some() => o.fail_key(
            "rebuild",
            "is only for rebuildable data",
            Some("remove it, or make the kind \"rebuildable\"".into()),
        ),
        Some(DataKind::Rebuildable) if rebuild.is_none() => o.fail(
            "is rebuildable but does not say what rebuilding costs",
            Some("add `rebuild: \"what the app does, and how long\"`, shown when a rollback empties it".into()),
        ),
        Some(k) if k != DataKind::ForwardOnly && opened.is_some() => o.fail_key(
            "opened",
            "is only for forward-only data",
            Some("remove it".into()),
        ),
        _ => {}
    }
    let spec = (|| {
        Some(DataSpec {
            name: name?,
            path: path?,
            version: version?,
            kind: kind?,
            opened: opened.clone(),
            rebuild: rebuild.clone(),
        })
    })();
    state.finish(at, o.problems, spec.map(Resource::Data))
}
