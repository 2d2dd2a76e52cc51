//! The blake3 digest that names every store object, and (re-exported by
//! `archy-graph`) every resource, blob and whole graph: one type, so a
//! digest computed by the graph is the one the store files an object under.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ParseError;

/// A blake3 digest, written as 64 lowercase hex digits.
///
/// Only lowercase is accepted when parsing so that every digest has exactly
/// one spelling: two object file names differing only in case would otherwise
/// name the same content.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from(blake3::hash(bytes))
    }

    /// The digest of the file at `path`, read as a stream (never whole
    /// into memory).
    pub fn of_file(path: &std::path::Path) -> std::io::Result<Self> {
        let mut hasher = blake3::Hasher::new();
        std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
        Ok(Self::from(hasher.finalize()))
    }

    /// Wraps raw digest bytes (the caller computed them with blake3).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits, for humans.
    pub fn short(&self) -> String {
        let mut text = self.to_string();
        text.truncate(12);
        text
    }
}

impl From<blake3::Hash> for Digest {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

// Debug shows the hex form: an array of 32 numbers is unreadable in test
// failures and logs.
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| ParseError::Digest {
            input: text.to_owned(),
            reason,
        };
        if text.len() != 64 {
            return Err(invalid("a digest is exactly 64 hex digits"));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let high = hex_value(pair[0]).ok_or_else(|| invalid(NOT_LOWER_HEX))?;
            let low = hex_value(pair[1]).ok_or_else(|| invalid(NOT_LOWER_HEX))?;
            *byte = high << 4 | low;
        }
        Ok(Self(bytes))
    }
}

const NOT_LOWER_HEX: &str = "a digest uses only the digits 0-9 and a-f (lowercase)";

/// The value of one lowercase hex digit.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

// Text formats (the store's JSON records, `archy eval --json`) carry the
// hex; binary ones (the graph's canonical postcard encoding, whose bytes are
// hashed) the 32 raw bytes.
impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_matches_blake3() {
        let digest = Digest::of(b"abc");
        let text = digest.to_string();
        assert_eq!(text, blake3::hash(b"abc").to_hex().as_str());
        assert_eq!(text.parse::<Digest>(), Ok(digest));
        assert_eq!(digest.short(), text[..12]);
    }

    #[test]
    fn rejects_wrong_length_uppercase_and_non_hex() {
        let good = Digest::of(b"x").to_string();
        assert!(good[..63].parse::<Digest>().is_err());
        assert!(good.to_uppercase().parse::<Digest>().is_err());
        assert!(format!("g{}", &good[1..]).parse::<Digest>().is_err());
    }

    #[test]
    fn serializes_as_hex_string() -> Result<(), serde_json::Error> {
        let digest = Digest::of(b"x");
        let json = serde_json::to_string(&digest)?;
        assert_eq!(json, format!("\"{digest}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json)?, digest);
        assert!(serde_json::from_str::<Digest>("\"nope\"").is_err());
        Ok(())
    }
}
