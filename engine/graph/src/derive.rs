//! Files derived from secrets: a file's text may hold placeholders that the
//! node fills in at activation from its secrets, so the value never enters
//! the description, the graph or the store (which keep the template).
//!
//! - `{{secret.NAME}}`: the secret's value;
//! - `{{secret.NAME | sha256}}`: the hex SHA-256 of the value (for a
//!   config that checks a password against its hash).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

/// What a placeholder makes of a secret's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derivation {
    Value,
    Sha256,
}

/// A placeholder that is not one of the forms above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderError {
    pub placeholder: String,
    pub message: String,
}

/// One piece of a template: text as it is, or a secret's derivation.
enum Piece<'a> {
    Text(&'a str),
    Secret(&'a str, Derivation),
}

/// Splits `text` at `{{secret...}}` placeholders; other `{{...}}` are text
/// (a file may well hold braces of its own).
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, PlaceholderError> {
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
        let (name, derivation) = match spec.split_once('|') {
            None => (spec.trim(), Derivation::Value),
            Some((name, how)) if how.trim() == "sha256" => (name.trim(), Derivation::Sha256),
            Some((_, how)) => {
                return Err(PlaceholderError {
                    placeholder: format!("{{{{{inner}}}}}"),
                    message: format!("{:?} is not a derivation (there is `sha256`)", how.trim()),
                });
            }
        };
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !plain {
            return Err(PlaceholderError {
                placeholder: format!("{{{{{inner}}}}}"),
                message: format!("{name:?} is not a secret name"),
            });
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

/// `text` with every placeholder filled from `value(name)`. An error names
/// the secret that has no value, never a value.
pub fn render(
    text: &str,
    mut value: impl FnMut(&str) -> Option<Vec<u8>>,
) -> Result<String, PlaceholderError> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Secret(name, how) => {
                let missing = || PlaceholderError {
                    placeholder: format!("secret.{name}"),
                    message: format!("secret {name} has no value on this node"),
                };
                let v = value(name).ok_or_else(missing)?;
                match how {
                    Derivation::Value => out.push_str(&String::from_utf8_lossy(&v)),
                    Derivation::Sha256 => {
                        for b in Sha256::digest(&v) {
                            let _ = write!(out, "{b:02x}");
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_filled() {
        let t = "user=ui\npass={{secret.ui-pass}}\nhash={{ secret.ui-pass | sha256 }}\nkeep={{other}}\n";
        assert_eq!(
            secrets_in(t).unwrap(),
            BTreeSet::from(["ui-pass".to_string()])
        );
        let out = render(t, |n| (n == "ui-pass").then(|| b"abc".to_vec())).unwrap();
        assert_eq!(
            out,
            "user=ui\npass=abc\nhash=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nkeep={{other}}\n"
        );
    }

    #[test]
    fn bad_placeholders_and_missing_values_are_errors() {
        assert!(secrets_in("{{secret.x | md5}}").is_err());
        assert!(secrets_in("{{secret.a b}}").is_err());
        let e = render("{{secret.gone}}", |_| None).unwrap_err();
        assert!(e.message.contains("gone"), "{e:?}");
    }
}
