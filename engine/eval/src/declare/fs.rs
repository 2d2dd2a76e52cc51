//! `file(path, #{ text, mode, owner, group })` and
//! `dir(path, #{ mode, owner, group, disposable })`.

use archy_graph::names::{AbsPath, Mode};
use archy_graph::resource::{DirSpec, FileSpec};
use archy_graph::{Resource, Span};
use rhai::Dynamic;

use super::opts::Opts;
use super::{Res, State};

pub fn file(state: &State, at: Span, path: Dynamic, options: Dynamic) -> Res {
    let what = format!("file {}", super::opts::display(&path));
    let mut o = Opts::new(what, options, &["text", "mode", "owner", "group"], &at);
    let path = o.first_arg::<AbsPath>(&path);
    let has_text = o.has("text");
    let text = o.string("text");
    if !has_text {
        o.fail(
            "needs `text`",
            Some("file(path, #{ text: \"...\" }) writes exactly that text".into()),
        );
    }
    let mode = o.mode(Mode::FILE);
    let owner = o.account("owner");
    let group = o.account("group");
    let spec = (|| {
        let text = text?;
        Some(Resource::File(FileSpec {
            path: path?,
            content: state.blob(&text),
            size: text.len() as u64,
            mode: mode?,
            owner,
            group,
        }))
    })();
    state.finish(at, o.problems, spec)
}

pub fn dir(state: &State, at: Span, path: Dynamic, options: Dynamic) -> Res {
    let what = format!("dir {}", super::opts::display(&path));
    let mut o = Opts::new(
        what,
        options,
        &["mode", "owner", "group", "disposable"],
        &at,
    );
    let path = o.first_arg::<AbsPath>(&path);
    let mode = o.mode(Mode::DIR);
    let owner = o.account("owner");
    let group = o.account("group");
    let disposable = o.bool("disposable").unwrap_or(false);
    let spec = (|| {
        Some(Resource::Dir(DirSpec {
            path: path?,
            mode: mode?,
            owner,
            group,
            disposable,
        }))
    })();
    state.finish(at, o.problems, spec)
}
