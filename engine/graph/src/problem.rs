//! Problems found in a node description, each tied to the place in the Rhai
//! sources that caused it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A place in a Rhai source: the file as the node author knows it
/// (`node.rhai`, `stdlib/systemd.rhai`), 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub file: String,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One thing wrong with a node description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it happened; `None` only for problems with no source at all
    /// (a node file that cannot be read).
    pub at: Option<Span>,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// A second place that takes part, such as the first of two
    /// resources claiming the same path.
    pub also: Option<(Span, String)>,
}

impl Problem {
    pub fn new(at: Option<Span>, message: impl Into<String>) -> Self {
        Problem {
            at,
            message: message.into(),
            hint: None,
            also: None,
        }
    }

    pub fn at(at: &Span, message: impl Into<String>) -> Self {
        Problem::new(Some(at.clone()), message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn also(mut self, at: &Span, label: impl Into<String>) -> Self {
        self.also = Some((at.clone(), label.into()));
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some((at, label)) = &self.also {
            write!(f, " ({label} at {at})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}
