//! Files derived from secrets: a file's text may hold placeholders that the
//! node fills in at activation from its secrets, so the value never enters
//! the description, the graph or the store (which keep the template).
//!
//! - `{{secret.NAME}}`: the secret's value;
//! - `{{secret.NAME | sha256}}`: the hex SHA-256 of the value (for a
//!   config that checks a password against its hash);
//! - `{{secret.NAME | rpcauth USER}}`: a bitcoind `rpcauth=` value,
//!   `USER:SALT$HMAC`, as Bitcoin Core's `share/rpcauth/rpcauth.py` makes
//!   it, so bitcoind checks the password without holding it;
//! - `{{secret.NAME | basic USER}}`: base64 of `USER:VALUE`, the credentials
//!   of an HTTP `Authorization: Basic` header.
//!
//! This is the syntax: the evaluator checks a template with [`secrets_in`]
//! and records the secrets it derives from. Computing a derivation is an
//! activation's work, in the realizer (`archy_realize::derive`), which
//! splits a template with [`pieces`].

use std::collections::BTreeSet;

/// The forms a derivation may take, ending the messages about a wrong one.
const FORMS: &str = "the forms are `sha256`, `rpcauth USER` and `basic USER`";

/// What a placeholder makes of a secret's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derivation<'a> {
    Value,
    Sha256,
    /// `USER:SALT$HMAC` for bitcoind's `rpcauth=`.
    Rpcauth {
        user: &'a str,
    },
    /// base64 of `USER:VALUE`, for `Authorization: Basic`.
    Basic {
        user: &'a str,
    },
}

/// A placeholder that is not one of the forms above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{placeholder} {message}")]
pub struct PlaceholderError {
    pub placeholder: String,
    pub message: String,
}

/// One piece of a template: text as it is, or a secret's derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Secret(&'a str, Derivation<'a>),
}

/// A secret's or a user's name: ASCII letters, digits and `-_.`. Also what
/// keeps a user name from breaking the line it is put in (an rpcauth user
/// cannot hold `:`, a basic one neither).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The user name after `rpcauth` or `basic`.
fn user_of<'a>(how: &str, words: &[&'a str]) -> Result<&'a str, String> {
    match words {
        [] => Err(format!(
            "`{how}` needs a user name, like `{how} node`; {FORMS}"
        )),
        [user] if is_plain_name(user) => Ok(user),
        [user] => Err(format!(
            "{user:?} is not a user name for `{how}` (use ASCII letters, digits and -_.)"
        )),
        [_, extra @ ..] => Err(format!(
            "`{how}` takes one user name, but {:?} follows it; {FORMS}",
            extra.join(" ")
        )),
    }
}

/// What follows the `|`: a derivation and its arguments, split at spaces.
fn parse_derivation(how: &str) -> Result<Derivation<'_>, String> {
    let words: Vec<&str> = how.split_whitespace().collect();
    match words.as_slice() {
        ["sha256"] => Ok(Derivation::Sha256),
        ["sha256", extra @ ..] => Err(format!(
            "`sha256` takes no argument, but {:?} follows it; {FORMS}",
            extra.join(" ")
        )),
        ["rpcauth", rest @ ..] => Ok(Derivation::Rpcauth {
            user: user_of("rpcauth", rest)?,
        }),
        ["basic", rest @ ..] => Ok(Derivation::Basic {
            user: user_of("basic", rest)?,
        }),
        [] => Err(format!("has `|` but no derivation; {FORMS}")),
        [other, ..] => Err(format!("{other:?} is not a derivation; {FORMS}")),
    }
}

/// Splits `text` at `{{secret...}}` placeholders; other `{{...}}` are text
/// (a file may well hold braces of its own).
pub fn pieces(text: &str) -> Result<Vec<Piece<'_>>, PlaceholderError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let inner_start = start + 2;
        let Some(len) = rest[inner_start..].find("}}") else {
            break;
        };
        let inner = rest[inner_start..inner_start + len].trim();
        let Some(spec) = inner.strip_prefix("secret.") else {
            out.push(Piece::Text(&rest[..inner_start]));
            rest = &rest[inner_start..];
            continue;
        };
        out.push(Piece::Text(&rest[..start]));
        let fail = |message: String| PlaceholderError {
            placeholder: format!("{{{{{inner}}}}}"),
            message,
        };
        let (name, derivation) = match spec.split_once('|') {
            None => (spec.trim(), Derivation::Value),
            Some((name, how)) => (name.trim(), parse_derivation(how).map_err(fail)?),
        };
        if !is_plain_name(name) {
            return Err(fail(format!("{name:?} is not a secret name")));
        }
        out.push(Piece::Secret(name, derivation));
        rest = &rest[inner_start + len + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// The secrets `text` derives from, by name.
pub fn secrets_in(text: &str) -> Result<BTreeSet<String>, PlaceholderError> {
    Ok(pieces(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Secret(name, _) => Some(name.to_string()),
            Piece::Text(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn placeholders_are_found() {
        let t = "user=ui\npass={{secret.ui-pass}}\nhash={{ secret.ui-pass | sha256 }}\nkeep={{other}}\n";
        assert_eq!(
            secrets_in(t).unwrap(),
            BTreeSet::from(["ui-pass".to_string()])
        );
        assert_eq!(
            pieces(t).unwrap(),
            [
                Piece::Text("user=ui\npass="),
                Piece::Secret("ui-pass", Derivation::Value),
                Piece::Text("\nhash="),
                Piece::Secret("ui-pass", Derivation::Sha256),
                Piece::Text("\nkeep={{"),
                Piece::Text("other}}\n"),
            ]
        );
    }

    #[test]
    fn bad_placeholders_are_errors() {
        assert!(secrets_in("{{secret.x | md5}}").is_err());
        assert!(secrets_in("{{secret.a b}}").is_err());
    }

    #[test]
    fn derivations_with_users_are_checked() {
        let ok = "{{secret.a | rpcauth node}} {{secret.b|basic lnd_user.1}}";
        assert_eq!(
            secrets_in(ok).unwrap(),
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
        let cases = [
            ("{{secret.x | rpcauth}}", "`rpcauth` needs a user name"),
            ("{{secret.x | basic}}", "`basic` needs a user name"),
            ("{{secret.x | rpcauth a b}}", "takes one user name"),
            ("{{secret.x | rpcauth no:colon}}", "is not a user name"),
            ("{{secret.x | basic ünïcode}}", "is not a user name"),
            ("{{secret.x | sha256 extra}}", "takes no argument"),
            ("{{secret.x | md5}}", "is not a derivation"),
            ("{{secret.x | }}", "no derivation"),
            ("{{secret.x | sha256 | basic node}}", "takes no argument"),
        ];
        for (text, want) in cases {
            let e = secrets_in(text).unwrap_err();
            assert!(e.message.contains(want), "{text}: {e}");
            assert!(e.placeholder.starts_with("{{secret.x"), "{text}: {e:?}");
        }
        // A missing user, an unknown derivation or extra words: the
        // message lists every form there is.
        for text in [
            "{{secret.x | md5}}",
            "{{secret.x | rpcauth}}",
            "{{secret.x | basic}}",
            "{{secret.x | basic node extra}}",
            "{{secret.x | sha256 extra}}",
        ] {
            let e = secrets_in(text).unwrap_err();
            for form in ["`sha256`", "`rpcauth USER`", "`basic USER`"] {
                assert!(e.message.contains(form), "{text}: {e}");
            }
        }
    }
}
