//! `app_lifecycle(name, #{ state, units, data })`: an app's lifecycle, as
//! the stdlib's `app::resources` declares it from an app value (see
//! stdlib/app.rhai).

use archy_graph::app::{AppSpec, AppState};
use archy_graph::names::{AbsPath, AppName, UnitName};
use archy_graph::{Resource, Span};
use rhai::Dynamic;

use super::opts::{Opts, display};
use super::{Res, State};

pub fn app(state: &State, at: Span, name: Dynamic, options: Dynamic) -> Res {
    let what = format!("app {}", display(&name));
    let mut o = Opts::new(what, options, &["state", "units", "data"], &at);
    let name = o.first_arg::<AppName>(&name);
    let app_state = match o.string("state").as_deref() {
        None | Some("running") => Some(AppState::Running),
        Some("stopped") => Some(AppState::Stopped),
        Some(other) => {
            o.fail_key(
                "state",
                &format!("is {other:?}"),
                Some("use \"running\" or \"stopped\"".into()),
            );
            None
        }
    };
    let units = checked_list(&mut o, "units", |s| UnitName::try_from(s));
    let data = checked_list(&mut o, "data", |s| AbsPath::try_from(s));
    let spec = match (name, app_state) {
        (Some(name), Some(state)) => Some(Resource::App(AppSpec {
            name,
            state,
            units,
            data,
        })),
        _ => None,
    };
    state.finish(at, o.problems, spec)
}

/// The list `key` of checked names, sorted and each once (the order an
/// app's resources were written in means nothing to its lifecycle).
fn checked_list<T: Ord>(
    o: &mut Opts,
    key: &str,
    check: impl Fn(&str) -> Result<T, archy_graph::names::NameError>,
) -> Vec<T> {
    let mut out: Vec<T> = o
        .strings(key)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| o.checked(key, check(s)))
        .collect();
    out.sort();
    out.dedup();
    out
}
