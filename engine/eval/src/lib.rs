//! archy's evaluator: a node description (Rhai) in, a checked, hashed graph
//! out. Pure: it reads only through [`Sources`], sees the machine only
//! through the host facts it is given, and has no clock, randomness,
//! environment or network.

mod declare;
pub mod errors;
pub mod host;
pub mod resolver;
pub mod sandbox;
pub mod sources;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use archy_graph::{Declarations, Graph, Problem};
use rhai::{Dynamic, Scope};

pub use host::{Host, HostFacts};
pub use sandbox::Limits;
pub use sources::{FsSources, MemSources, SourceError, Sources};

use declare::{Res, State};

/// A successful evaluation.
#[derive(Debug)]
pub struct Evaluation {
    pub graph: Graph,
    /// Every Rhai file read, by logical path.
    pub sources: BTreeMap<String, String>,
}

/// A failed evaluation: every problem found, and the texts to show them in.
#[derive(Debug)]
pub struct Failure {
    pub problems: Vec<Problem>,
    pub sources: BTreeMap<String, String>,
}

/// Evaluates the node file `node` (a logical path in `sources`) with the
/// given host facts. Runs on a thread of its own whose stack is sized for
/// the call-depth limit, so no script can overflow the caller's stack.
pub fn evaluate(
    sources: impl Sources + 'static,
    node: &str,
    facts: HostFacts,
    limits: &Limits,
) -> Result<Evaluation, Failure> {
    let node = node.to_string();
    let limits = limits.clone();
    let stack = limits.stack_bytes;
    let run = move || evaluate_here(Rc::new(sources), &node, facts, &limits);
    match std::thread::Builder::new()
        .name("archy-eval".into())
        .stack_size(stack)
        .spawn(run)
        .map(|t| t.join())
    {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Failure {
            problems: vec![Problem::new(
                None,
                "the evaluator crashed; this is a bug in archy",
            )],
            sources: BTreeMap::new(),
        }),
        Err(e) => Err(Failure {
            problems: vec![Problem::new(
                None,
                format!("cannot start the evaluator: {e}"),
            )],
            sources: BTreeMap::new(),
        }),
    }
}

fn evaluate_here(
    sources: Rc<dyn Sources>,
    node: &str,
    facts: HostFacts,
    limits: &Limits,
) -> Result<Evaluation, Failure> {
    let loader = resolver::Loader::new(sources.clone(), node);
    let host = Host::new(facts);
    let state = Rc::new(State {
        host: host.clone(),
        sources,
        node_file: node.to_string(),
        loader: loader.clone(),
        problems: Default::default(),
        blobs: Default::default(),
        inner: Default::default(),
    });
    let mut engine = sandbox::engine(limits);
    engine.set_module_resolver(resolver::Resolver(loader.clone()));
    declare::register(&mut engine, &state);
    engine.register_type_with_name::<Host>("host");
    engine.register_indexer_get(|h: &mut Host, name: &str| h.index(name));
    // `host` is visible everywhere, also inside functions and modules,
    // and cannot be assigned to: it is not a variable of any scope.
    let host_value = Dynamic::from(host.clone());
    // rhai marks on_var "volatile", not deprecated; it is the one way to
    // give every scope a read-only value.
    #[allow(deprecated)]
    engine.on_var(move |name, _, _| Ok((name == "host").then(|| host_value.clone())));

    let fail = |problems: Vec<Problem>| Failure {
        problems,
        sources: loader.texts.borrow().clone(),
    };
    let text = loader.read(node).map_err(|e| {
        let mut p = Problem::new(None, e.message);
        p.hint = e.hint;
        fail(vec![p])
    })?;
    let mut ast = engine
        .compile(&text)
        .map_err(|e| fail(vec![errors::to_problem_with(&e.into(), node, limits)]))?;
    ast.set_source(node);
    let result = engine
        .eval_ast_with_scope::<Dynamic>(&mut Scope::new(), &ast)
        .map_err(|e| {
            let mut problems = state.problems.borrow().clone();
            problems.push(errors::to_problem_with(&e, node, limits));
            fail(problems)
        })?;

    let mut decl = Declarations::default();
    let mut problems = state.problems.borrow().clone();
    collect(node, result, &mut decl, &mut problems);
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    decl.blobs = std::mem::take(&mut *state.blobs.borrow_mut());
    decl.facts = host.used();
    let graph = archy_graph::assemble(decl).map_err(fail)?;
    Ok(Evaluation {
        graph,
        sources: loader.texts.borrow().clone(),
    })
}

/// Flattens the node's value (a list of resources, nested lists allowed,
/// `()` skipped so `if` without `else` works) into declarations.
fn collect(node: &str, value: Dynamic, decl: &mut Declarations, problems: &mut Vec<Problem>) {
    if !value.is_array() {
        problems.push(
            Problem::new(
                None,
                format!(
                    "{node} evaluates to {}, not a list of resources",
                    declare::opts::type_name(&value)
                ),
            )
            .hint("end the node description with a list: [ file(...), unit(...), ... ]"),
        );
        return;
    }
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        if let Some(items) = v.clone().try_cast::<rhai::Array>() {
            stack.extend(items.into_iter().rev());
        } else if let Some(r) = v.clone().try_cast::<Res>() {
            // An invalid resource's problems were recorded by its constructor.
            if let Some(d) = r.declared() {
                decl.resources.push(d.clone());
            }
        } else if !v.is_unit() {
            problems.push(
                Problem::new(
                    None,
                    format!(
                        "{node} evaluates to a list holding {}, which is not a resource",
                        declare::opts::type_name(&v)
                    ),
                )
                .hint("the list may hold resources, lists of resources and ()"),
            );
        }
    }
}

/// Where a node file's sources are: the nearest folder at or above the node
/// file's own that has a `stdlib/` (the file's own folder if none does),
/// and the node file's logical path within it.
pub fn locate(node_file: &Path) -> std::io::Result<(PathBuf, String)> {
    let file = std::fs::canonicalize(node_file)?;
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let root = dir
        .ancestors()
        .find(|d| d.join("stdlib").is_dir())
        .unwrap_or(&dir)
        .to_path_buf();
    let logical = file
        .strip_prefix(&root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((root, logical))
}
