//! `import` for node descriptions. rhai's own file resolver accepts absolute
//! paths and `..`, and recurses forever on a cyclic import; this one
//! resolves only inside the node's folder, `stdlib/` and `apps/`, names a
//! cycle instead of overflowing the stack, and reads through [`Sources`]
//! only.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use archy_graph::{Problem, Span};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

type SharedModule = Shared<Module>;

use crate::errors::{problem_error, to_problem};
use crate::sources::Sources;

/// Checks an import or build path and returns it as a logical path: no
/// absolute paths, no `..`, no backslashes, a leading `./` dropped.
pub fn logical_path(spec: &str) -> Result<String, (String, String)> {
    let hint =
        "import paths are relative, like \"stdlib/systemd\" or \"apps/bitcoind\"".to_string();
    if spec.is_empty() {
        return Err(("is empty".into(), hint));
    }
    if spec.starts_with('/') {
        return Err((format!("{spec:?} is an absolute path"), hint));
    }
    if spec.contains('\\') || spec.contains('\0') {
        return Err((format!("{spec:?} has a backslash or NUL"), hint));
    }
    let spec = spec.strip_prefix("./").unwrap_or(spec);
    let parts: Vec<&str> = spec.split('/').collect();
    if parts.contains(&"..") {
        return Err((format!("{spec:?} leaves its folder with '..'"), hint));
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err((format!("{spec:?} is not a normalized path"), hint));
    }
    Ok(spec.to_string())
}

/// The folder part of a logical path (`""` at the root).
pub fn folder(logical: &str) -> &str {
    logical.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// The Rhai file an `import` names, seen from the file that imports it:
/// `stdlib/...` and `apps/...` from the sources root, anything else beside
/// the importing file.
pub fn import_target(
    importer: &str,
    node_dir: &str,
    spec: &str,
) -> Result<String, (String, String)> {
    let spec = logical_path(spec)?;
    let mut logical = if spec.starts_with("stdlib/") || spec.starts_with("apps/") {
        spec
    } else {
        match folder(importer) {
            "" => spec,
            dir => format!("{dir}/{spec}"),
        }
    };
    if !logical.ends_with(".rhai") {
        logical.push_str(".rhai");
    }
    let inside = |dir: &str| dir.is_empty() || logical.starts_with(&format!("{dir}/"));
    if inside("stdlib") || inside("apps") || inside(node_dir) {
        Ok(logical)
    } else {
        Err((
            format!("{logical} is outside the node's folder, stdlib/ and apps/"),
            "a node may import only from its own folder, stdlib/ and apps/".into(),
        ))
    }
}

/// Shared by the resolver and the evaluation: what was read, for error
/// rendering, and which modules are loading, for cycle detection.
pub(crate) struct Loader {
    pub sources: Rc<dyn Sources>,
    pub node_file: String,
    pub node_dir: String,
    pub texts: RefCell<BTreeMap<String, String>>,
    loading: RefCell<Vec<String>>,
    cache: RefCell<HashMap<String, SharedModule>>,
}

impl Loader {
    pub fn new(sources: Rc<dyn Sources>, node_file: &str) -> Rc<Self> {
        Rc::new(Loader {
            sources,
            node_file: node_file.to_string(),
            node_dir: folder(node_file).to_string(),
            texts: RefCell::default(),
            loading: RefCell::new(vec![node_file.to_string()]),
            cache: RefCell::default(),
        })
    }

    /// True while a module's top-level code runs (an import in progress).
    pub fn is_loading_module(&self) -> bool {
        self.loading.borrow().len() > 1
    }

    /// Reads a source and remembers its text for error rendering.
    pub fn read(&self, logical: &str) -> Result<String, crate::sources::SourceError> {
        let text = self.sources.read(logical)?;
        self.texts
            .borrow_mut()
            .insert(logical.to_string(), text.clone());
        Ok(text)
    }
}

/// A place in `file` for a rhai position.
pub fn span(file: &str, pos: Position) -> Span {
    Span {
        file: file.to_string(),
        line: pos.line().unwrap_or(0) as u32,
        col: pos.position().unwrap_or(0) as u32,
    }
}

/// The module resolver installed in the sandboxed engine.
pub(crate) struct Resolver(pub Rc<Loader>);

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let loader = &self.0;
        let importer = source.unwrap_or(&loader.node_file).to_string();
        let at = span(&importer, pos);
        let fail = |msg: String, hint: String| {
            problem_error(
                Problem::at(&at, format!("cannot import {path:?}: {msg}")).hint(hint),
                pos,
            )
        };
        let logical =
            import_target(&importer, &loader.node_dir, path).map_err(|(m, h)| fail(m, h))?;
        if let Some(m) = loader.cache.borrow().get(&logical) {
            return Ok(m.clone());
        }
        let cycle_start = loader.loading.borrow().iter().position(|l| *l == logical);
        if let Some(start) = cycle_start {
            let mut chain = loader.loading.borrow()[start..].to_vec();
            chain.push(logical.clone());
            return Err(fail(
                format!("import cycle: {}", chain.join(" -> ")),
                "break the cycle: move what both files need into a third module".into(),
            ));
        }
        let text = loader
            .read(&logical)
            .map_err(|e| fail(e.message, e.hint.unwrap_or_else(|| "check the path".into())))?;
        let mut ast = engine
            .compile(&text)
            .map_err(|e| problem_error(to_problem(&e.into(), &logical), pos))?;
        ast.set_source(logical.as_str());
        loader.loading.borrow_mut().push(logical.clone());
        let result = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        loader.loading.borrow_mut().pop();
        let mut module = result.map_err(|e| problem_error(to_problem(&e, &logical), pos))?;
        module.set_id(logical.as_str());
        let shared: SharedModule = module.into();
        loader.cache.borrow_mut().insert(logical, shared.clone());
        Ok(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            import_target("node.rhai", "", "stdlib/systemd"),
            Ok("stdlib/systemd.rhai".into())
        );
        assert_eq!(
            import_target("node.rhai", "", "./lib/x.rhai"),
            Ok("lib/x.rhai".into())
        );
        assert_eq!(
            import_target("stdlib/a.rhai", "", "b"),
            Ok("stdlib/b.rhai".into())
        );
        assert_eq!(
            import_target("examples/n.rhai", "examples", "common"),
            Ok("examples/common.rhai".into())
        );
        assert!(import_target("examples/n.rhai", "examples", "../x").is_err());
        assert!(import_target("examples/n.rhai", "examples", "/etc/passwd").is_err());
        // A file outside every root (only reachable by a bug elsewhere)
        // cannot import beside itself.
        assert!(import_target("other/n.rhai", "examples", "x").is_err());
        assert!(import_target("node.rhai", "", "a//b").is_err());
    }
}
