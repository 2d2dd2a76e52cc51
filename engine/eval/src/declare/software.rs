//! `artifact(path, #{ source, blake3 | sha256, mode, owner, group, place })`
//! and `tree(path, #{ source, blake3 })`: software by its hash.
//!
//! The evaluator sees only what the author declared: the hash and where
//! the bytes come from. It never reads them (no file, no network), so
//! `archy eval` stays pure; the build fetches the bytes and refuses any
//! whose hash differs.

use archy_graph::names::{AbsPath, Mode};
use archy_graph::resource::{ArtifactSpec, ContentHash, Placement, TreeSpec};
use archy_graph::{Digest, Kind, Resource, ResourceKey, Span};
use rhai::Dynamic;

use super::opts::Opts;
use super::{Res, State};

const SOURCE_HINT: &str =
    "use a path relative to the node description's folder (\"bin/validator\"), or an https:// URL";

pub fn artifact(state: &State, at: Span, path: Dynamic, options: Dynamic) -> Res {
    let what = format!("artifact {}", super::opts::display(&path));
    let mut o = Opts::new(
        what,
        options,
        &[
            "source", "blake3", "sha256", "mode", "owner", "group", "place",
        ],
        &at,
    );
    let path = o.first_arg::<AbsPath>(&path);
    let source = source(
        &mut o,
        "artifact(path, #{ source: \"bin/app\", blake3: \"...\" })",
    );
    let hash = match (o.has("blake3"), o.has("sha256")) {
        (true, true) => {
            o.fail(
                "gives both `blake3` and `sha256`",
                Some("declare one hash".into()),
            );
            None
        }
        (false, false) => {
            o.fail(
                "needs its hash, `blake3` or `sha256`",
                Some("`archy hash file FILE` prints a file's blake3; an upstream SHA256SUMS line gives its sha256".into()),
            );
            None
        }
        (true, false) => blake3(&mut o).map(ContentHash::Blake3),
        (false, true) => sha256(&mut o).map(ContentHash::Sha256),
    };
    let mode = o.mode(Mode::PROGRAM);
    if let Some(m) = mode
        && m.bits() & 0o7000 != 0
    {
        o.fail_key(
            "mode",
            &format!("is {m}: archy installs no setuid, setgid or sticky software"),
            Some("grant what the program needs with its unit (AmbientCapabilities=, User=)".into()),
        );
    }
    let owner = o.account("owner");
    let group = o.account("group");
    let place = match o.string("place").as_deref() {
        None => None,
        Some("link") => Some(Placement::Link),
        Some("copy") => Some(Placement::Copy),
        Some(other) => {
            o.fail_key(
                "place",
                &format!("is {other:?}"),
                Some(
                    "use \"link\" (a symlink into the store) or \"copy\" (a file of its own)"
                        .into(),
                ),
            );
            None
        }
    };
    // A link points at a store object: root's and read-only. Anything
    // else the author asks for needs a file of its own.
    let root = |a: &Option<archy_graph::names::AccountName>| {
        a.as_ref().is_none_or(|a| a.as_str() == "root")
    };
    let store_like = root(&owner)
        && root(&group)
        && mode.is_some_and(|m| matches!(m.bits(), 0o444 | 0o555 | 0o644 | 0o755));
    if place == Some(Placement::Link) && !store_like && mode.is_some() {
        o.fail_key(
            "place",
            "is \"link\", but a link into the store is root's and read-only (mode 0444 or 0555)",
            Some(
                "leave `place` out, or use place: \"copy\" for a file with its own mode and owner"
                    .into(),
            ),
        );
    }
    let place = place.unwrap_or(if store_like {
        Placement::Link
    } else {
        Placement::Copy
    });
    let spec = (|| {
        Some(ArtifactSpec {
            path: path?,
            hash: hash?,
            mode: mode?,
            owner,
            group,
            place,
        })
    })();
    if let (Some(spec), Some(src)) = (&spec, source) {
        state.software_source(Kind::Artifact, spec.path.to_string(), src);
    }
    state.finish(at, o.problems, spec.map(Resource::Artifact))
}

pub fn tree(state: &State, at: Span, path: Dynamic, options: Dynamic) -> Res {
    let what = format!("tree {}", super::opts::display(&path));
    let mut o = Opts::new(what, options, &["source", "blake3"], &at);
    let path = o.first_arg::<AbsPath>(&path);
    let source = source(
        &mut o,
        "tree(path, #{ source: \"ui/dist.tar.gz\", blake3: \"...\" })",
    );
    if !o.has("blake3") {
        o.fail(
            "needs `blake3`, the hash of the tree",
            Some("`archy hash tree SOURCE` prints it (a folder, .tar.gz or .tar.zst)".into()),
        );
    }
    let manifest = blake3(&mut o);
    let spec = (|| {
        Some(TreeSpec {
            path: path?,
            manifest: manifest?,
        })
    })();
    if let (Some(spec), Some(src)) = (&spec, source) {
        state.software_source(Kind::Tree, spec.path.to_string(), src);
    }
    state.finish(at, o.problems, spec.map(Resource::Tree))
}

/// `source`: a URL, or a relative path that stays inside the node's folder
/// (as imports do).
fn source(o: &mut Opts, example: &str) -> Option<String> {
    if !o.has("source") {
        o.fail(
            "needs `source`, where its bytes come from",
            Some(example.into()),
        );
        return None;
    }
    let s = o.string("source")?;
    if let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    {
        if rest.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            o.fail_key(
                "source",
                &format!("{s:?} is not a URL"),
                Some(SOURCE_HINT.into()),
            );
            return None;
        }
        return Some(s);
    }
    let bad = s.is_empty()
        || s.starts_with('/')
        || s.contains('\0')
        || s.contains("://")
        || s.split('/')
            .any(|part| part == ".." || part.is_empty() && s.len() > 1);
    if bad {
        o.fail_key(
            "source",
            &format!("{s:?} is not inside the node description's folder"),
            Some(SOURCE_HINT.into()),
        );
        return None;
    }
    Some(s.trim_start_matches("./").to_string())
}

fn blake3(o: &mut Opts) -> Option<Digest> {
    let s = o.string("blake3")?;
    match s.parse::<Digest>() {
        Ok(d) => Some(d),
        Err(_) => {
            o.fail_key(
                "blake3",
                &format!("{s:?} is not a blake3 hash"),
                Some("write the 64 lowercase hex digits `archy hash` prints".into()),
            );
            None
        }
    }
}

fn sha256(o: &mut Opts) -> Option<String> {
    let s = o.string("sha256")?;
    let hex = s.strip_prefix("sha256:").unwrap_or(&s);
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Some(hex.to_string());
    }
    o.fail_key(
        "sha256",
        &format!("{s:?} is not a sha256 hash"),
        Some("write the 64 lowercase hex digits of `sha256sum FILE`".into()),
    );
    None
}

impl State {
    /// Remembers where a piece of software's bytes come from.
    fn software_source(&self, kind: Kind, id: String, source: String) {
        self.software
            .borrow_mut()
            .insert(ResourceKey { kind, id }, source);
    }
}
