//! Problems rendered like a compiler's errors: the source line, a caret
//! under the place, and a hint. miette draws them.

use std::collections::BTreeMap;
use std::fmt;

use archy_graph::{Problem, Span};
use archy_node::NodeError;
use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan,
};

/// One problem as a miette diagnostic.
#[derive(Debug)]
struct Report {
    message: String,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl Diagnostic for Report {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (!self.labels.is_empty()).then(|| Box::new(self.labels.iter().cloned()) as _)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as _)
    }
}

/// The byte range of the token at `line:col` (1-based, col in chars).
fn source_span(text: &str, at: &Span) -> Option<SourceSpan> {
    let line_start = if at.line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(at.line as usize - 2)?.0 + 1
    };
    let line = text[line_start..].split('\n').next().unwrap_or("");
    let col = at.col.max(1) as usize - 1;
    let offset: usize = line.chars().take(col).map(char::len_utf8).sum();
    let rest = &line[offset.min(line.len())..];
    let len = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum::<usize>()
        .max(1);
    Some(SourceSpan::new((line_start + offset).into(), len))
}

fn report(
    message: String,
    at: Option<&Span>,
    label: &str,
    help: Option<String>,
    sources: &BTreeMap<String, String>,
) -> Report {
    let mut r = Report {
        message,
        source: None,
        labels: Vec::new(),
        help,
    };
    if let Some(at) = at {
        match sources
            .get(&at.file)
            .and_then(|t| source_span(t, at).map(|s| (t, s)))
        {
            Some((text, span)) => {
                r.source = Some(NamedSource::new(&at.file, text.clone()));
                r.labels
                    .push(LabeledSpan::new_with_span(Some(label.to_string()), span));
            }
            None => r.message = format!("{at}: {}", r.message),
        }
    }
    r
}

fn to_report(p: &Problem, sources: &BTreeMap<String, String>) -> Report {
    let mut r = report(
        p.message.clone(),
        p.at.as_ref(),
        "here",
        p.hint.clone(),
        sources,
    );
    if let Some((at, label)) = &p.also {
        let same_file = p.at.as_ref().is_some_and(|a| a.file == at.file);
        let span = sources.get(&at.file).and_then(|t| source_span(t, at));
        match (same_file, span) {
            (true, Some(span)) => r
                .labels
                .push(LabeledSpan::new_with_span(Some(label.clone()), span)),
            // In another file: a note with its place, under the hint.
            _ => {
                let note = format!("{label}: {at}");
                r.help = Some(match r.help.take() {
                    Some(h) => format!("{h}\n{note}"),
                    None => note,
                });
            }
        }
    }
    r
}

/// How many problems are drawn; the rest are counted.
pub const SHOWN_PROBLEMS: usize = 200;

/// Renders problems for a person. `color` is for terminals; snapshot
/// tests use plain text.
pub fn problems(problems: &[Problem], sources: &BTreeMap<String, String>, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    // Drawing a problem takes tens of microseconds: a loop that made
    // 100,000 bad resources would take seconds to print, for no reader.
    for p in problems.iter().take(SHOWN_PROBLEMS) {
        let r = to_report(p, sources);
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&format!("error: {p}\n"));
        }
    }
    let n = problems.len();
    if n > SHOWN_PROBLEMS {
        out.push_str(&format!(
            "... and {} more (only the first {SHOWN_PROBLEMS} problems are shown)\n",
            n - SHOWN_PROBLEMS
        ));
    }
    out.push_str(&format!(
        "error: {n} problem{} in the node description; nothing was changed\n",
        if n == 1 { "" } else { "s" }
    ));
    out
}

/// A failed command for the operator: evaluation problems drawn like a
/// compiler's, anything else as `error: MESSAGE` with the causes the
/// message does not already say, then the hint.
pub fn error(err: &NodeError, color: bool) -> String {
    match err {
        NodeError::Eval(f) => problems(&f.problems, &f.sources, color),
        NodeError::ReleaseEval { failure, .. } => {
            format!(
                "{err}\n{}",
                problems(&failure.problems, &failure.sources, color)
            )
        }
        _ => {
            let mut message = err.to_string();
            let mut cause = std::error::Error::source(err);
            while let Some(c) = cause {
                // Most errors name their cause in their own message: say
                // each cause once.
                let text = c.to_string();
                if !message.contains(&text) {
                    message.push_str(&format!(": {text}"));
                }
                cause = c.source();
            }
            let mut out = format!("error: {message}\n");
            if let Some(h) = err.hint() {
                out.push_str(&format!("  hint: {h}\n"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_the_token() {
        let text = "let a = 1;\nlet bb = file(x);\n";
        let at = Span {
            file: "n".into(),
            line: 2,
            col: 10,
        };
        let s = source_span(text, &at).expect("in range");
        assert_eq!(&text[s.offset()..s.offset() + s.len()], "file");
        assert!(
            source_span(
                text,
                &Span {
                    file: "n".into(),
                    line: 9,
                    col: 1
                }
            )
            .is_none()
        );
    }

    #[test]
    fn only_the_first_problems_are_drawn_and_the_rest_counted() {
        let text = "[\n    file(x),\n]\n";
        let sources = BTreeMap::from([("n".to_string(), text.to_string())]);
        let at = Span {
            file: "n".into(),
            line: 2,
            col: 5,
        };
        let many: Vec<Problem> = (0..SHOWN_PROBLEMS + 5)
            .map(|i| Problem::at(&at, format!("problem number {i}")))
            .collect();
        let out = problems(&many, &sources, false);
        assert!(out.contains("problem number 0\n"), "{out}");
        let last = SHOWN_PROBLEMS - 1;
        assert!(out.contains(&format!("problem number {last}\n")), "{out}");
        assert!(!out.contains(&format!("problem number {SHOWN_PROBLEMS}\n")));
        assert!(out.ends_with(&format!(
            "... and 5 more (only the first {SHOWN_PROBLEMS} problems are shown)\nerror: {} problems in the node description; nothing was changed\n",
            SHOWN_PROBLEMS + 5
        )));
    }
}
