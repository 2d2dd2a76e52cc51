//! The end of a build's output: a failed build is explained by its last
//! lines (the failing step and what it printed), and a build can print far
//! more than an error message should carry.

use std::collections::VecDeque;

/// How many lines of build output a build error carries.
pub(crate) const BUILD_TAIL_LINES: usize = 20;

/// The last `limit` lines of a text that arrives in pieces that need not
/// end at line ends.
#[derive(Debug)]
pub(crate) struct Tail {
    limit: usize,
    lines: VecDeque<String>,
    /// The start of a line whose end has not arrived yet.
    partial: String,
}

impl Tail {
    pub(crate) fn new(limit: usize) -> Self {
        Tail {
            limit,
            lines: VecDeque::with_capacity(limit + 1),
            partial: String::new(),
        }
    }

    /// Adds the next piece of the text.
    pub(crate) fn push(&mut self, piece: &str) {
        let mut rest = piece;
        while let Some(end) = rest.find('\n') {
            self.partial.push_str(&rest[..end]);
            let line = std::mem::take(&mut self.partial);
            self.push_line(line);
            rest = &rest[end + 1..];
        }
        self.partial.push_str(rest);
    }

    fn push_line(&mut self, line: String) {
        self.lines.push_back(line);
        if self.lines.len() > self.limit {
            self.lines.pop_front();
        }
    }

    /// The last lines, each ended by a newline (an unfinished last line
    /// included).
    pub(crate) fn finish(mut self) -> String {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.push_line(line);
        }
        self.lines.iter().fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_of_pieces_split_anywhere() {
        let mut tail = Tail::new(3);
        for piece in ["STEP 1/3\nSTEP", " 2/3\nout", "put\n", "STEP 3/3\nlast"] {
            tail.push(piece);
        }
        assert_eq!(tail.finish(), "output\nSTEP 3/3\nlast\n");
    }

    #[test]
    fn short_or_empty_output_is_kept_whole() {
        let mut tail = Tail::new(20);
        tail.push("one\n");
        tail.push("\n");
        tail.push("two\n");
        assert_eq!(tail.finish(), "one\n\ntwo\n");
        assert_eq!(Tail::new(20).finish(), "");
    }
}
