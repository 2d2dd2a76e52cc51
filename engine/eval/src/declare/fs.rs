//! `file(path, #{ text, mode, owner, group })` and
//! `dir(path, #{ mode, owner, group, disposable })`.

use archy_graph::derive;
use archy_graph::names::{AbsPath, Mode, SecretName};
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
    let mut text = o.string("text");
    if let Some(t) = &text
        && let Err(refused) = state.texts.admit(t.len())
    {
        if let Some((message, hint)) = refused {
            o.fail_key("text", &message, Some(hint));
        }
        text = None;
    }
    if !has_text {
        o.fail(
            "needs `text`",
            Some("file(path, #{ text: \"...\" }) writes exactly that text".into()),
        );
    }
    let derives = derives(&mut o, text.as_deref());
    // A file derived from a secret holds what the secret holds.
    let private = !derives.is_empty();
    let mode = o.mode(if private { Mode::SECRET } else { Mode::FILE });
    if private
        && let Some(m) = mode
        && m.bits() & 0o007 != 0
    {
        o.fail_key(
            "mode",
            &format!("is {m}, which lets every user read a file derived from a secret"),
            Some("use 0640 or 0600, with `owner`/`group` for the service that reads it".into()),
        );
    }
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
            derives,
        }))
    })();
    state.finish(at, o.problems, spec)
}

/// Every placeholder form, for a text that has a malformed one.
const DERIVE_HINT: &str = "write {{secret.NAME}} for a secret's value, {{secret.NAME | sha256}} for its hash, \
{{secret.NAME | rpcauth USER}} for a bitcoind rpcauth= value, \
or {{secret.NAME | basic USER}} for an HTTP Basic credential";

/// The secrets the text's `{{secret.NAME}}` placeholders derive from.
fn derives(o: &mut Opts, text: Option<&str>) -> Vec<SecretName> {
    let Some(text) = text else {
        return Vec::new();
    };
    let names = match derive::secrets_in(text) {
        Ok(names) => names,
        Err(e) => {
            o.fail_key(
                "text",
                &format!("{} {}", e.placeholder, e.message),
                Some(DERIVE_HINT.into()),
            );
            return Vec::new();
        }
    };
    names
        .iter()
        .filter_map(|n| o.checked("text", SecretName::try_from(n.as_str())))
        .collect()
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
