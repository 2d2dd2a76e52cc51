//! The sandboxed engine: `Engine::new_raw()` plus only what a node
//! description needs, with every limit set explicitly so that debug and
//! release builds behave the same (rhai's defaults differ between them).

use rhai::Engine;
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};

/// The limits of one evaluation. The defaults stop an endless loop, runaway
/// recursion or a gigantic string in well under a second while leaving room
/// for nodes of tens of thousands of resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub operations: u64,
    pub call_levels: usize,
    pub expr_depth: usize,
    pub fn_expr_depth: usize,
    pub string_bytes: usize,
    pub array_len: usize,
    pub map_len: usize,
    pub modules: usize,
    pub variables: usize,
    pub functions: usize,
    /// The evaluation thread's stack: deep enough for `call_levels` calls.
    pub stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            operations: 5_000_000,
            call_levels: 64,
            expr_depth: 64,
            fn_expr_depth: 48,
            string_bytes: 4 << 20,
            array_len: 1_000_000,
            map_len: 100_000,
            modules: 256,
            variables: 10_000,
            functions: 10_000,
            stack_bytes: 256 << 20,
        }
    }
}

/// An engine with only the pure parts of the language: no `eval`, no
/// clock, no randomness, no file, environment or network access (rhai's
/// raw engine has none of those unless a package adds them, and the
/// packages below add none). `print` and `debug` go to the log.
/// `trace_calls` keeps rhai's call stack (see below).
pub fn engine(limits: &Limits, trace_calls: bool) -> Engine {
    let mut engine = Engine::new_raw();
    for package in [
        ArithmeticPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
    ] {
        engine.register_global_module(package);
    }
    engine.disable_symbol("eval");
    engine
        .set_max_operations(limits.operations)
        .set_max_call_levels(limits.call_levels)
        .set_max_expr_depths(limits.expr_depth, limits.fn_expr_depth)
        .set_max_string_size(limits.string_bytes)
        .set_max_array_size(limits.array_len)
        .set_max_map_size(limits.map_len)
        .set_max_modules(limits.modules)
        .set_max_variables(limits.variables)
        .set_max_functions(limits.functions);
    if trace_calls {
        // A debugger that never stops: registering one makes rhai keep the
        // call stack, which is how a resource made inside a stdlib or app
        // function is traced back to the node author's own line. It copies
        // every call's arguments, which makes building a long list
        // quadratic, so it is only used to explain a failed evaluation.
        // (rhai marks the API "volatile", not deprecated.)
        #[allow(deprecated)]
        engine.register_debugger(
            |_, debugger| debugger,
            |_, _, _, _, _| Ok(rhai::debugger::DebuggerCommand::Continue),
        );
    }
    engine.on_print(|s| tracing::info!(target: "archy::rhai", "{s}"));
    engine.on_debug(|s, src, pos| {
        tracing::debug!(target: "archy::rhai", "{}:{pos}: {s}", src.unwrap_or("?"));
    });
    engine
}
