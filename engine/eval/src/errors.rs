//! Turning rhai's errors into [`Problem`]s that point at `file:line:col`
//! and say what to do.

use archy_graph::{Problem, Span};
use rhai::{Dynamic, EvalAltResult, Position};

use crate::resolver::span;
use crate::sandbox::{Exceeded, Limits};

/// A problem carried through rhai's error channel (from the module
/// resolver), so it keeps its own file and position.
#[derive(Debug, Clone)]
pub struct CarriedProblem(pub Problem);

pub fn problem_error(p: Problem, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(CarriedProblem(p)),
        pos,
    ))
}

/// Functions a node author might reach for that archy leaves out on
/// purpose, because an evaluation must give the same graph every time.
const IMPURE: &[&str] = &[
    "eval",
    "timestamp",
    "sleep",
    "exit",
    "random",
    "rand",
    "env",
    "getenv",
    "open_file",
    "read_file",
    "parse_json",
    "http_get",
    "system",
    "command",
];

const PURITY_HINT: &str = "node descriptions are evaluated purely: no clock, no randomness, no files, no environment, no network and no eval. Facts about the machine come in as `host`";

/// The problem behind a rhai error raised while evaluating `file`.
pub fn to_problem(err: &EvalAltResult, file: &str) -> Problem {
    to_problem_with(err, file, &Limits::default())
}

/// Like [`to_problem`], naming the limits in force.
pub fn to_problem_with(err: &EvalAltResult, file: &str, limits: &Limits) -> Problem {
    let mut file = file.to_string();
    let mut err = err;
    // The outermost call in the author's own file, for a second label.
    let mut called_from: Option<(Span, String)> = None;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                if called_from.is_none() && !pos.is_none() {
                    called_from = Some((span(&file, *pos), format!("in the call to {name}()")));
                }
                if !src.is_empty() {
                    file = src.clone();
                }
                err = inner;
            }
            EvalAltResult::ErrorInModule(_, inner, _) => err = inner,
            EvalAltResult::ErrorRuntime(v, _) if v.is::<CarriedProblem>() => {
                return v.clone().cast::<CarriedProblem>().0;
            }
            _ => break,
        }
    }
    let (message, hint) = describe(err, limits);
    // Some errors carry no position; then the call that led to them is
    // the best place to show.
    let at = match (err.position().is_none(), called_from.take()) {
        (true, Some((call, _))) => call,
        (_, outer) => {
            called_from = outer;
            span(&file, err.position())
        }
    };
    // An error raised inside stdlib or an app is shown at the node
    // author's call, with the line that raised it beside it.
    let in_library = at.file.starts_with("stdlib/") || at.file.starts_with("apps/");
    let (at, called_from) = match called_from {
        Some((call, _)) if in_library => (call, Some((at, "raised here".to_string()))),
        other => (at, other),
    };
    let mut p = Problem::new(Some(at), message);
    p.hint = hint;
    if let Some((at, label)) = called_from
        && Some(&at) != p.at.as_ref()
    {
        p = p.also(&at, label);
    }
    p
}

fn describe(err: &EvalAltResult, limits: &Limits) -> (String, Option<String>) {
    use EvalAltResult as E;
    // rhai's message without its " (line L, position P)" suffix: the
    // position is shown by the renderer.
    let plain = || {
        let text = err.to_string();
        let pos = format!(" ({})", err.position());
        text.strip_suffix(&pos).unwrap_or(&text).to_string()
    };
    match err {
        E::ErrorTooManyOperations(_) => (
            format!("evaluation stopped here: it did not finish within archy's limit of {} operations (an endless loop?)", limits.operations),
            Some("a node description must finish quickly; look for a loop or recursion that never ends".into()),
        ),
        E::ErrorTerminated(token, _) => match token.clone().try_cast::<Exceeded>() {
            Some(Exceeded::WallTime) => (
                format!(
                    "evaluation stopped here: it did not finish within archy's wall-time limit of {}",
                    seconds(limits.wall_time)
                ),
                Some("look for a loop that runs too long or builds too much; a description that is right but slow can be given more time with `archy --eval-timeout SECS`".into()),
            ),
            Some(Exceeded::Memory) => (
                format!(
                    "evaluation stopped here: it holds more than archy's memory limit of {} MiB",
                    limits.memory_bytes >> 20
                ),
                Some("a node description holds configuration, not bulk data; look for a loop that builds ever larger lists or strings".into()),
            ),
            None => (plain(), None),
        },
        E::ErrorStackOverflow(_) => (
            format!("calls nested deeper than {} levels (runaway recursion?)", limits.call_levels),
            Some("look for a function that calls itself without end".into()),
        ),
        E::ErrorDataTooLarge(what, _) => (
            format!("{what} would exceed archy's memory limit of {} MiB", limits.memory_bytes >> 20),
            Some("a node description holds configuration, not bulk data".into()),
        ),
        E::ErrorTooManyModules(_) => (
            format!("more than {} modules imported", limits.modules),
            None,
        ),
        E::ErrorTooManyVariables(_) => (format!("more than {} variables", limits.variables), None),
        E::ErrorFunctionNotFound(sig, _) => {
            let name = sig.split([' ', '(']).next().unwrap_or(sig);
            let hint = if IMPURE.contains(&name) {
                PURITY_HINT.to_string()
            } else {
                "check the function's name and the number and types of its arguments".to_string()
            };
            (format!("no function {sig}"), Some(hint))
        }
        E::ErrorVariableNotFound(name, _) => (
            format!("no variable `{name}`"),
            Some("functions see only their parameters, `host` and imported modules, not the caller's variables".into()),
        ),
        E::ErrorRuntime(v, _) => (format!("{v}"), None),
        E::ErrorParsing(kind, _) => {
            let mut hint = None;
            if matches!(kind, rhai::ParseErrorType::ExprTooDeep) {
                hint = Some(format!("expressions may nest {} levels at most", limits.expr_depth));
            }
            if let rhai::ParseErrorType::Reserved(word) = kind
                && IMPURE.contains(&word.as_str())
            {
                hint = Some(PURITY_HINT.to_string());
            }
            (plain(), hint)
        }
        _ => (plain(), None),
    }
}

/// True when `err` is one of the evaluation's limits stopping it
/// (operations, wall time, memory, call depth), not a mistake at one place.
pub fn is_limit(err: &EvalAltResult) -> bool {
    use EvalAltResult as E;
    match err {
        E::ErrorInFunctionCall(_, _, inner, _) | E::ErrorInModule(_, inner, _) => is_limit(inner),
        E::ErrorTooManyOperations(_)
        | E::ErrorTerminated(..)
        | E::ErrorStackOverflow(_)
        | E::ErrorDataTooLarge(..) => true,
        _ => false,
    }
}

/// `2 s`, `0.5 s`.
fn seconds(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}
