//! archy's evaluator: a node description (Rhai) in, a checked, hashed graph
//! out. Pure: it reads only through [`Sources`], sees the machine only
//! through the [`Inputs`] it is given (host facts, secret rotations), and
//! has no clock, randomness, environment or network.

mod declare;
pub mod errors;
pub mod host;
pub mod inputs;
pub mod memory;
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
pub use inputs::{Inputs, Rotations};
pub use sandbox::{Exceeded, Limits};
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
/// given inputs: host facts (a [`HostFacts`] alone will do) and secret
/// rotations. Runs on a thread of its own whose stack is sized for
/// the call-depth limit, so no script can overflow the caller's stack.
pub fn evaluate(
    sources: impl Sources + 'static,
    node: &str,
    inputs: impl Into<Inputs>,
    limits: &Limits,
) -> Result<Evaluation, Failure> {
    let inputs = inputs.into();
    let node = node.to_string();
    let limits = limits.clone();
    let stack = limits.stack_bytes;
    let run = move || {
        // No single allocation may take the process more than three times
        // the memory limit above what it held before (see `memory`): room
        // for the one operation that doubles a value just under the limit
        // before the check between operations stops the evaluation.
        let _capped = memory::held().map(|held| {
            memory::Capped::new(held.saturating_add(limits.memory_bytes.saturating_mul(3)))
        });
        let sources: Rc<dyn Sources> = Rc::new(sources);
        let budget = sandbox::Budget::start(&limits);
        let first = evaluate_here(
            sources.clone(),
            &node,
            inputs.clone(),
            &limits,
            false,
            budget,
        );
        match first {
            // Problems inside stdlib or app functions are placed at the
            // author's own calls by a second, traced run (pure, so it fails
            // the same way, only slower), with a budget of its own. A first
            // run stopped by a limit is reported as it is: a traced run
            // would only be stopped again, later.
            Err((f, false)) if f.problems.iter().any(in_library) => {
                let budget = sandbox::Budget::start(&limits);
                match evaluate_here(sources, &node, inputs, &limits, true, budget) {
                    Err((traced, false)) => Err(traced),
                    Err((_, true)) | Ok(_) => Err(f),
                }
            }
            other => other.map_err(|(f, _)| f),
        }
    };
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

/// True when a problem is placed inside stdlib or an app.
fn in_library(p: &Problem) -> bool {
    p.at.as_ref()
        .is_some_and(|a| a.file.starts_with("stdlib/") || a.file.starts_with("apps/"))
}

fn evaluate_here(
    sources: Rc<dyn Sources>,
    node: &str,
    inputs: Inputs,
    limits: &Limits,
    trace_calls: bool,
    budget: sandbox::Budget,
) -> Result<Evaluation, (Failure, bool)> {
    let loader = resolver::Loader::new(sources.clone(), node);
    let host = Host::with_deferred(inputs.facts, inputs.deferred);
    let state = Rc::new(State {
        host: host.clone(),
        rotations: inputs.rotations,
        sources,
        node_file: node.to_string(),
        loader: loader.clone(),
        problems: Default::default(),
        blobs: Default::default(),
        contexts: Default::default(),
        software: Default::default(),
        inner: Default::default(),
        invalid: Default::default(),
        instances: Default::default(),
        imports: Default::default(),
        texts: declare::Texts::new(limits),
    });
    let mut engine = sandbox::engine(limits, trace_calls, budget);
    engine.set_module_resolver(resolver::Resolver(loader.clone()));
    declare::register(&mut engine, &state);
    engine.register_type_with_name::<Host>("host");
    // `host.has("archy")`: whether a fact is known, without reading it.
    engine.register_fn("has", |h: &mut Host, name: &str| h.has(name));
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
    // A failure, and whether a limit of the budget stopped it.
    let stopped = |f: Failure, by_limit: bool| (f, by_limit);
    let text = loader.read(node).map_err(|e| {
        let mut p = Problem::new(None, e.message);
        p.hint = e.hint;
        stopped(fail(vec![p]), false)
    })?;
    let mut ast = engine.compile(&text).map_err(|e| {
        stopped(
            fail(vec![errors::to_problem_with(&e.into(), node, limits)]),
            false,
        )
    })?;
    ast.set_source(node);
    let result = engine
        .eval_ast_with_scope::<Dynamic>(&mut Scope::new(), &ast)
        .map_err(|e| {
            let mut problems = state.problems.borrow().clone();
            problems.push(errors::to_problem_with(&e, node, limits));
            stopped(fail(problems), errors::is_limit(&e))
        })?;

    let mut decl = Declarations::default();
    let mut problems = state.problems.borrow().clone();
    // Problems with the value as a whole point at the last statement,
    // which is the expression the node evaluates to.
    let last = ast
        .statements()
        .last()
        .map(|s| s.position())
        .unwrap_or_default();
    let end = resolver::span(node, last);
    collect(&end, result, &state, &mut decl, &mut problems);
    decl.blobs = std::mem::take(&mut *state.blobs.borrow_mut());
    decl.contexts = std::mem::take(&mut *state.contexts.borrow_mut());
    decl.sources = std::mem::take(&mut *state.software.borrow_mut());
    decl.facts = host.used();
    decl.invalid = std::mem::take(&mut *state.invalid.borrow_mut());
    // The whole-graph checks run even when constructors found problems, so
    // one evaluation reports everything it can.
    let graph = match (archy_graph::assemble(decl), problems.is_empty()) {
        (Ok(graph), true) => graph,
        (Ok(_), false) => return Err(stopped(fail(problems), false)),
        (Err(more), _) => {
            problems.extend(more);
            problems.sort_by(|a, b| a.at.cmp(&b.at));
            return Err(stopped(fail(problems), false));
        }
    };
    Ok(Evaluation {
        graph,
        sources: loader.texts.borrow().clone(),
    })
}

/// Flattens the node's value (a list of resources, nested lists allowed,
/// `()` skipped so `if` without `else` works) into declarations.
fn collect(
    end: &archy_graph::Span,
    value: Dynamic,
    state: &State,
    decl: &mut Declarations,
    problems: &mut Vec<Problem>,
) {
    let node = &end.file;
    if !value.is_array() {
        problems.push(
            Problem::at(
                end,
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
    // The imports of the secrets that are part of the node.
    let mut imports: Vec<(String, String, archy_graph::Span)> = Vec::new();
    while let Some(v) = stack.pop() {
        let v = match v.try_cast_result::<rhai::Array>() {
            Ok(items) => {
                stack.extend(items.into_iter().rev());
                continue;
            }
            Err(v) => v,
        };
        if let Some(r) = v.read_lock::<Res>() {
            // An invalid resource's problems were recorded by its constructor.
            if let Some(d) = &r.0 {
                decl.resources.push((**d).clone());
                // A template's `instances: [...]` come with it.
                for (template, instances) in state.instances.borrow().iter() {
                    if std::rc::Rc::ptr_eq(template, d) {
                        decl.resources.extend(instances.iter().cloned());
                    }
                }
                for (secret, name, path) in state.imports.borrow().iter() {
                    if std::rc::Rc::ptr_eq(secret, d) {
                        imports.push((name.clone(), path.clone(), d.at.clone()));
                    }
                }
            }
        } else if !v.is_unit() {
            problems.push(
                Problem::at(
                    end,
                    format!(
                        "{node} evaluates to a list holding {}, which is not a resource",
                        declare::opts::type_name(&v)
                    ),
                )
                .hint("the list may hold resources, lists of resources and ()"),
            );
        }
    }
    if let Some(first) = imports.first().map(|(_, _, at)| at.clone()) {
        // One file for all of them, declared where the first one is.
        imports.sort();
        imports.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        let text = imports_json(&imports);
        let mut options = rhai::Map::new();
        options.insert("text".into(), Dynamic::from(text));
        options.insert("mode".into(), Dynamic::from("0644".to_string()));
        let file = declare::file(
            state,
            first,
            Dynamic::from(archy_graph::SECRET_IMPORTS_PATH.to_string()),
            Dynamic::from(options),
        );
        if let Some(d) = &file.0 {
            decl.resources.push((**d).clone());
        }
    }
}

/// `{"NAME": "PATH", ...}`: what archy reads a secret's import from.
fn imports_json(imports: &[(String, String, archy_graph::Span)]) -> String {
    let quoted = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let pairs: Vec<String> = imports
        .iter()
        .map(|(name, path, _)| format!("{}: {}", quoted(name), quoted(path)))
        .collect();
    format!("{{{}}}\n", pairs.join(", "))
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
