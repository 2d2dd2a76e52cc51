//! The node-author vocabulary: the built-in constructors (`file`, `unit`,
//! `container`, ...) that scripts call. Each turns its arguments into a typed
//! resource, or records every problem it finds and returns an invalid
//! placeholder so evaluation can go on and report the rest.

mod accounts;
mod app;
mod container;
mod data;
mod fs;
pub(crate) use fs::file;
mod health;
mod instance;
pub mod opts;
mod podman;
mod software;
mod unit;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use archy_graph::{
    BuildContext, ContextFile, Declared, Digest, Kind, Problem, Resource, ResourceKey, Span,
};
use rhai::{Dynamic, Engine, NativeCallContext};

use crate::host::Host;
use crate::inputs::Rotations;
use crate::resolver::{self, Loader};
use crate::sources::Sources;

/// What constructors share during one evaluation.
pub struct State {
    pub host: Host,
    /// The node's secret rotations: `secret()` adds them to the declared
    /// version.
    pub rotations: Rotations,
    pub sources: Rc<dyn Sources>,
    /// The node file's logical path: the source of top-level calls.
    pub node_file: String,
    pub loader: Rc<Loader>,
    pub problems: RefCell<Vec<Problem>>,
    pub blobs: RefCell<BTreeMap<Digest, Arc<str>>>,
    /// Build contexts read, by tree digest: the graph carries them so the
    /// build can store them with the generation.
    pub contexts: RefCell<BTreeMap<Digest, Arc<BuildContext>>>,
    /// Where each artifact's and tree's bytes come from.
    pub software: RefCell<BTreeMap<ResourceKey, String>>,
    /// The running constructor's own call, when it is not the node
    /// author's line (see [`State::enter`]).
    pub inner: RefCell<Option<Span>>,
    /// Resources whose constructor failed, by the key they would have had.
    pub invalid: RefCell<BTreeSet<ResourceKey>>,
    /// The instances a template's `instances: [...]` declares: part of the
    /// node when the template is.
    pub instances: RefCell<Vec<(Rc<Declared>, Vec<Declared>)>>,
    /// Secrets declared with `import: PATH`, with the secret's name and
    /// the path: part of the node's imports when the secret is.
    pub imports: RefCell<Vec<(Rc<Declared>, String, String)>>,
    /// The file texts declared so far.
    pub texts: Texts,
}

/// The file texts declared so far, against the limits on their size.
#[derive(Debug)]
pub struct Texts {
    per_file: usize,
    all: usize,
    total: Cell<usize>,
    reported: Cell<bool>,
}

/// Why a text is refused: a message and a hint, or `None` when the node's
/// total was exceeded and already reported.
pub type TextRefused = Option<(String, String)>;

impl Texts {
    pub fn new(limits: &crate::Limits) -> Texts {
        Texts {
            per_file: limits.file_text_bytes,
            all: limits.text_bytes,
            total: Cell::new(0),
            reported: Cell::new(false),
        }
    }

    /// Counts one file's text of `len` bytes.
    pub fn admit(&self, len: usize) -> Result<(), TextRefused> {
        const HINT: &str = "a node description holds configuration, not bulk data: ship large content in a package or a container image";
        if len > self.per_file {
            return Err(Some((
                format!(
                    "is {}, over archy's limit of {} for one file's text",
                    mib(len),
                    mib(self.per_file)
                ),
                HINT.into(),
            )));
        }
        let total = self.total.get().saturating_add(len);
        self.total.set(total);
        if total > self.all {
            if self.reported.replace(true) {
                return Err(None);
            }
            return Err(Some((
                format!(
                    "takes the node's file texts past archy's limit of {} in all",
                    mib(self.all)
                ),
                HINT.into(),
            )));
        }
        Ok(())
    }
}

fn mib(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

impl State {
    /// The place of the constructor call being evaluated, as the node
    /// author sees it: the outermost call on rhai's call stack, which is a
    /// line of the node file even when the constructor runs inside a stdlib
    /// or app function. The constructor's own call, when it is elsewhere,
    /// is kept in `inner` to be shown beside problems.
    fn enter(&self, ctx: &NativeCallContext) -> Span {
        let own = resolver::span(
            ctx.call_source().unwrap_or(&self.node_file),
            ctx.call_position(),
        );
        // rhai records the caller's position in each frame; the outermost
        // frame's call is in the node file unless a module's top-level code
        // is running (then the constructor's own call is the best place).
        let outermost = ctx
            .debugger()
            .and_then(|d| d.call_stack().first())
            .filter(|_| !self.loader.is_loading_module())
            .map(|f| resolver::span(&self.node_file, f.pos));
        let at = outermost.unwrap_or_else(|| own.clone());
        *self.inner.borrow_mut() = (own != at).then_some(own);
        at
    }

    /// Keeps a file's text once, under its digest.
    pub fn blob(&self, text: &str) -> Digest {
        let digest = Digest::of(text.as_bytes());
        self.blobs
            .borrow_mut()
            .entry(digest)
            .or_insert_with(|| Arc::from(text));
        digest
    }

    /// Keeps a build context's files once, under its tree digest, and
    /// returns that digest.
    pub fn context(&self, files: Vec<ContextFile>) -> Digest {
        let context = BuildContext::new(files);
        let tree = context.tree_digest();
        self.contexts
            .borrow_mut()
            .entry(tree)
            .or_insert_with(|| Arc::new(context));
        tree
    }

    /// Ends a constructor: the resource if it had no problems, else the
    /// problems are kept and an invalid placeholder returned.
    pub fn finish(&self, at: Span, problems: Vec<Problem>, resource: Option<Resource>) -> Res {
        match resource {
            Some(resource) if problems.is_empty() => Res(Some(Rc::new(Declared { resource, at }))),
            _ => {
                let inner = self.inner.borrow().clone();
                let mut all = self.problems.borrow_mut();
                for mut p in problems {
                    if let Some(inner) = &inner
                        && p.also.is_none()
                    {
                        p = p.also(inner, "made by this call");
                    }
                    all.push(p);
                }
                Res(None)
            }
        }
    }
}

/// A resource as a script value. `None` when its constructor found problems
/// (already recorded).
#[derive(Debug, Clone)]
pub struct Res(pub Option<Rc<Declared>>);

impl Res {
    pub fn declared(&self) -> Option<&Declared> {
        self.0.as_deref()
    }
}

type Constructor = fn(&State, Span, Dynamic, Dynamic) -> Res;

/// Runs a constructor; when it fails, remembers the key the resource would
/// have had, so references to it are not reported a second time.
fn construct(
    state: &State,
    kind: Kind,
    make: Constructor,
    ctx: &NativeCallContext,
    args: (Dynamic, Dynamic),
) -> Res {
    let id = args.0.clone().into_string().ok();
    let res = make(state, state.enter(ctx), args.0, args.1);
    if let (None, Some(id)) = (res.declared(), id) {
        state.invalid.borrow_mut().insert(ResourceKey { kind, id });
    }
    res
}

/// Registers `name(arg)` and `name(arg, options)`.
fn register2(
    engine: &mut Engine,
    state: &Rc<State>,
    name: &'static str,
    kind: Kind,
    make: Constructor,
) {
    let s = state.clone();
    engine.register_fn(name, move |ctx: NativeCallContext, a: Dynamic| {
        construct(&s, kind, make, &ctx, (a, Dynamic::UNIT))
    });
    let s = state.clone();
    engine.register_fn(
        name,
        move |ctx: NativeCallContext, a: Dynamic, b: Dynamic| {
            construct(&s, kind, make, &ctx, (a, b))
        },
    );
}

/// Makes the vocabulary available to scripts.
pub fn register(engine: &mut Engine, state: &Rc<State>) {
    engine.register_type_with_name::<Res>("resource");
    engine.register_get("kind", |r: &mut Res| {
        r.declared()
            .map(|d| d.resource.kind().to_string())
            .unwrap_or_default()
    });
    engine.register_get("id", |r: &mut Res| {
        r.declared().map(|d| d.resource.id()).unwrap_or_default()
    });
    engine.register_fn("to_string", |r: &mut Res| match r.declared() {
        Some(d) => d.resource.key().to_string(),
        None => "invalid resource".to_string(),
    });
    register2(engine, state, "file", Kind::File, fs::file);
    register2(engine, state, "dir", Kind::Dir, fs::dir);
    register2(engine, state, "user", Kind::User, accounts::user);
    register2(engine, state, "group", Kind::Group, accounts::group);
    register2(engine, state, "unit", Kind::Unit, unit::unit);
    register2(
        engine,
        state,
        "container",
        Kind::Container,
        container::container,
    );
    register2(engine, state, "network", Kind::Network, podman::network);
    register2(engine, state, "volume", Kind::Volume, podman::volume);
    register2(engine, state, "secret", Kind::Secret, accounts::secret);
    register2(
        engine,
        state,
        "artifact",
        Kind::Artifact,
        software::artifact,
    );
    register2(engine, state, "tree", Kind::Tree, software::tree);
    register2(engine, state, "health_unit", Kind::Health, health::unit);
    register2(engine, state, "health_http", Kind::Health, health::http);
    register2(engine, state, "health_tcp", Kind::Health, health::tcp);
    register2(engine, state, "health_cmd", Kind::Health, health::cmd);
    register2(engine, state, "health_archy", Kind::Health, health::archy);
    register2(engine, state, "app_lifecycle", Kind::App, app::app);
    register2(engine, state, "data", Kind::Data, data::data);
    instance::register(engine, state);
    engine.register_fn("check_options", check_options);
}

/// `check_options(opts, ["a", "b"])` for stdlib functions: an option the
/// function does not know is an error with a did-you-mean, not ignored.
fn check_options(opts: rhai::Map, known: rhai::Array) -> Result<(), Box<rhai::EvalAltResult>> {
    let known: Vec<String> = known
        .into_iter()
        .filter_map(|k| k.into_string().ok())
        .collect();
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    for key in opts.keys() {
        if !refs.contains(&key.as_str()) {
            let hint = match opts::suggest(key, &refs) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the options are: {}", refs.join(", ")),
            };
            return Err(format!("unknown option `{key}`; {hint}").into());
        }
    }
    Ok(())
}
