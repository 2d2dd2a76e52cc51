//! Names of store objects: `<digest>-<name>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;
use crate::error::ParseError;

/// The longest name part an object may have. File systems allow 255 bytes
/// per file name; the digest and its dash take 65 of them.
pub const MAX_NAME_LEN: usize = 200;

/// The human-readable part of an object's file name (`bitcoind.service`).
///
/// Restricted to a portable character set so a name can never escape the
/// store directory (`/`), hide from listings or collide with the store's
/// own temp files (a leading `.`), or need quoting in a shell.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName(String);

impl ObjectName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for ObjectName {
    type Error = ParseError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        let invalid = |reason| ParseError::ObjectName {
            input: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("an object name cannot be empty"));
        }
        if text.len() > MAX_NAME_LEN {
            return Err(invalid("an object name is at most 200 characters"));
        }
        if text.starts_with('.') {
            return Err(invalid("an object name cannot start with '.'"));
        }
        if !text.bytes().all(is_name_byte) {
            return Err(invalid(
                "an object name uses only letters, digits and . _ + @ = -",
            ));
        }
        Ok(Self(text.to_owned()))
    }
}

impl TryFrom<String> for ObjectName {
    type Error = ParseError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::try_from(text.as_str())
    }
}

/// Whether `byte` may appear in an object name (ASCII only, so the byte
/// length checked above is also the character count).
fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._+@=-".contains(&byte)
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectName({:?})", self.0)
    }
}

/// An object's identity and file name in the store: `<digest>-<name>`, where
/// the digest is blake3 of the object's exact bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    digest: Digest,
    name: ObjectName,
}

impl ObjectId {
    /// The id of content with `digest`, stored under `name`.
    pub fn new(digest: Digest, name: ObjectName) -> Self {
        Self { digest, name }
    }

    /// The id `bytes` get when inserted under `name`.
    pub fn of(name: &ObjectName, bytes: &[u8]) -> Self {
        Self::new(Digest::of(bytes), name.clone())
    }

    /// The blake3 digest of the object's content.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The name part.
    pub fn name(&self) -> &ObjectName {
        &self.name
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.digest, self.name)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| ParseError::ObjectId {
            input: text.to_owned(),
            reason,
        };
        // `split_at_checked` also rejects a split inside a multi-byte
        // character, which a valid id never contains.
        let (digest, rest) = text
            .split_at_checked(64)
            .ok_or_else(|| invalid("an object id is <64 hex digits>-<name>"))?;
        let name = rest
            .strip_prefix('-')
            .ok_or_else(|| invalid("an object id is <64 hex digits>-<name>"))?;
        Ok(Self {
            digest: digest.parse()?,
            name: ObjectName::try_from(name)?,
        })
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> ObjectName {
        ObjectName::try_from(text).expect("a valid test name")
    }

    #[test]
    fn accepts_the_allowed_characters() {
        for ok in ["a", "bitcoind.service", "lnd+x@y=z_1-2", &"n".repeat(200)] {
            assert!(ObjectName::try_from(ok).is_ok(), "{ok:?} should be valid");
        }
    }

    #[test]
    fn rejects_unsafe_names() {
        let long = "n".repeat(201);
        for bad in ["", ".hidden", "..", "a/b", "a b", "é", "a\0", long.as_str()] {
            assert!(
                ObjectName::try_from(bad).is_err(),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn id_round_trips_through_text_and_json() -> Result<(), Box<dyn std::error::Error>> {
        let id = ObjectId::of(&name("unit.service"), b"[Unit]\n");
        let text = id.to_string();
        assert_eq!(text, format!("{}-unit.service", Digest::of(b"[Unit]\n")));
        assert_eq!(text.parse::<ObjectId>()?, id);
        assert_eq!(serde_json::to_string(&id)?, format!("\"{text}\""));
        assert_eq!(
            serde_json::from_str::<ObjectId>(&format!("\"{text}\""))?,
            id
        );
        Ok(())
    }

    #[test]
    fn id_parsing_rejects_malformed_ids() {
        let digest = Digest::of(b"x").to_string();
        for bad in [
            String::new(),
            digest.clone(),
            format!("{digest}-"),
            format!("{digest}_name"),
            format!("{digest}-.hidden"),
            format!("{}-name", &digest[..63]),
            format!("{}-name", digest.to_uppercase()),
        ] {
            assert!(
                bad.parse::<ObjectId>().is_err(),
                "{bad:?} should be invalid"
            );
        }
    }
}
