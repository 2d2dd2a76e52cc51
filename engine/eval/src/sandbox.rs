//! The sandboxed engine: `Engine::new_raw()` plus only what a node
//! description needs, with every limit set explicitly so that debug and
//! release builds behave the same (rhai's defaults differ between them).

use std::time::{Duration, Instant};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, EvalAltResult, INT, ImmutableString, Position};

/// The limits of one evaluation. The defaults leave room for nodes of
/// tens of thousands of resources, and stop an endless loop, runaway
/// recursion or runaway data within the wall-time limit (2 s), whichever
/// limit is hit first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub operations: u64,
    /// Wall time for one evaluation (`archy --eval-timeout SECS`).
    pub wall_time: Duration,
    /// How much the memory held may grow while evaluating: enforced when
    /// the binary counts memory (see [`crate::memory`]), and by the guards
    /// on the operations that can ask for a lot at once (`pad`, `replace`).
    pub memory_bytes: usize,
    /// The text of one `file()`.
    pub file_text_bytes: usize,
    /// The texts of every `file()` of the node together (each declaration
    /// counts, also when another file has the same text).
    pub text_bytes: usize,
    pub call_levels: usize,
    pub expr_depth: usize,
    pub fn_expr_depth: usize,
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
            wall_time: Duration::from_secs(2),
            memory_bytes: 1 << 30,
            file_text_bytes: 16 << 20,
            text_bytes: 256 << 20,
            call_levels: 64,
            expr_depth: 64,
            fn_expr_depth: 48,
            modules: 256,
            variables: 10_000,
            functions: 10_000,
            stack_bytes: 256 << 20,
        }
    }
}

/// Which limit stopped an evaluation: the token rhai's progress callback
/// ends it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    WallTime,
    Memory,
}

/// The budget of one evaluation pass: when it ends, and the memory held
/// when it began.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
    pub held_at_start: Option<usize>,
}

impl Budget {
    pub fn start(limits: &Limits) -> Budget {
        Budget {
            deadline: Instant::now() + limits.wall_time,
            held_at_start: crate::memory::held(),
        }
    }
}

/// An engine with only the pure parts of the language: no `eval`, no
/// clock, no randomness, no file, environment or network access (rhai's
/// raw engine has none of those unless a package adds them, and the
/// packages below add none). `print` and `debug` go to the log.
/// `trace_calls` keeps rhai's call stack (see below).
pub fn engine(limits: &Limits, trace_calls: bool, budget: Budget) -> Engine {
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
        // rhai's data-size limits stay off (0): with any of them set, rhai
        // re-measures a whole array or map after every call on it, so
        // `a.push(x)` costs the length of `a` and building a list is
        // quadratic. Memory is bounded by `memory_bytes` instead (below).
        .set_max_string_size(0)
        .set_max_array_size(0)
        .set_max_map_size(0)
        .set_max_modules(limits.modules)
        .set_max_variables(limits.variables)
        .set_max_functions(limits.functions);
    // Wall time and memory, checked between operations (rhai is built
    // without its clock, `no_time`: the clock is read here). Reading it
    // costs about as much as an operation, so it is read every 16th.
    let memory = limits.memory_bytes;
    engine.on_progress(move |ops| {
        if ops % 16 == 0 && Instant::now() >= budget.deadline {
            return Some(Dynamic::from(Exceeded::WallTime));
        }
        if let (Some(start), Some(now)) = (budget.held_at_start, crate::memory::held())
            && now.saturating_sub(start) > memory
        {
            return Some(Dynamic::from(Exceeded::Memory));
        }
        None
    });
    guards(&mut engine, memory);
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

/// The operations that can ask for a lot of memory in one step, checked
/// before they run (they override the packages' own, which checked only
/// against rhai's data-size limits): padding to a length, and replacing a
/// short text by a long one everywhere.
fn guards(engine: &mut Engine, memory: usize) {
    fn too_large(what: String) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorDataTooLarge(what, Position::NONE))
    }
    let check = move |what: &str, bytes: usize| {
        if bytes > memory {
            Err(too_large(format!("{what} ({} MiB)", bytes >> 20)))
        } else {
            Ok(())
        }
    };
    let slot = std::mem::size_of::<Dynamic>();
    engine.register_fn(
        "pad",
        move |array: &mut rhai::Array, len: INT, item: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let Ok(len) = usize::try_from(len) else {
                return Ok(());
            };
            if len <= array.len() {
                return Ok(());
            }
            let each = slot.saturating_add(approx_bytes(&item));
            check("padding an array", (len - array.len()).saturating_mul(each))?;
            array.resize(len, item);
            Ok(())
        },
    );
    let pad_string = move |string: &mut ImmutableString,
                           len: INT,
                           with: &str|
          -> Result<(), Box<EvalAltResult>> {
        let Ok(len) = usize::try_from(len) else {
            return Ok(());
        };
        let have = string.chars().count();
        if len <= have || with.is_empty() {
            return Ok(());
        }
        check(
            "padding a string",
            string
                .len()
                .saturating_add((len - have).saturating_mul(with.len())),
        )?;
        let (need, each) = (len - have, with.chars().count());
        let mut out = String::with_capacity(string.len() + need / each * with.len() + with.len());
        out.push_str(string);
        out.push_str(&with.repeat(need / each));
        out.extend(with.chars().take(need % each));
        *string = out.into();
        Ok(())
    };
    engine.register_fn("pad", move |s: &mut ImmutableString, len: INT, c: char| {
        pad_string(s, len, c.encode_utf8(&mut [0; 4]))
    });
    engine.register_fn("pad", pad_string);
    let replace = move |string: &mut ImmutableString,
                        find: &str,
                        with: &str|
          -> Result<(), Box<EvalAltResult>> {
        if with.len() > find.len() {
            let count = string.matches(find).count();
            check(
                "replacing in a string",
                string
                    .len()
                    .saturating_add(count.saturating_mul(with.len() - find.len())),
            )?;
        }
        *string = string.replace(find, with).into();
        Ok(())
    };
    engine.register_fn("replace", replace);
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: &str, with: char| {
            replace(s, find, with.encode_utf8(&mut [0; 4]))
        },
    );
    engine.register_fn(
        "replace",
        move |s: &mut ImmutableString, find: char, with: &str| {
            replace(s, find.encode_utf8(&mut [0; 4]), with)
        },
    );
}

/// About the bytes a value holds beyond its own slot.
fn approx_bytes(v: &Dynamic) -> usize {
    let slot = std::mem::size_of::<Dynamic>();
    if let Some(a) = v.read_lock::<rhai::Array>() {
        a.iter().map(|x| slot + approx_bytes(x)).sum()
    } else if let Some(m) = v.read_lock::<rhai::Map>() {
        m.iter()
            .map(|(k, x)| k.len() + slot + approx_bytes(x))
            .sum()
    } else if let Some(s) = v.read_lock::<ImmutableString>() {
        s.len()
    } else {
        0
    }
}
