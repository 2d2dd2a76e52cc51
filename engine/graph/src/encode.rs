//! The canonical encoding that hashes are taken over.
//!
//! postcard's wire format is specified and stable: fields in declaration
//! order, varint integers, length-prefixed strings and sequences, enum
//! variants by index. Every map in a hashed type is a `BTreeMap`, so no
//! iteration order leaks in. Each encoding starts with a domain string so a
//! resource can never hash like a graph. The encoded bytes are also what the
//! store keeps, so an object's name is the blake3 of its bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::resource::{Resource, ResourceKey};

const RESOURCE_DOMAIN: &str = "archy.resource.v4";
const GRAPH_DOMAIN: &str = "archy.graph.v1";

/// A value of a host fact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Fact {
    Int(i64),
    Text(String),
}

/// What a resource's hash covers: its own fields and the hashes of the
/// resources it refers to (a Merkle graph).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub domain: String,
    pub resource: Resource,
    pub refs: Vec<(ResourceKey, Digest)>,
}

/// What the root hash covers: the host facts the evaluation used and every
/// resource's key and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphRecord {
    pub domain: String,
    pub facts: BTreeMap<String, Fact>,
    pub resources: Vec<(ResourceKey, Digest)>,
}

/// The bytes of something that failed to decode.
#[derive(Debug, thiserror::Error)]
#[error("not a canonical {what} record: {source}")]
pub struct DecodeError {
    what: &'static str,
    source: postcard::Error,
}

impl DecodeError {
    /// For the other canonical records of the crate (context manifests).
    pub(crate) fn new(what: &'static str, source: postcard::Error) -> Self {
        DecodeError { what, source }
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain structs into a Vec cannot fail: postcard only errors on
    // unsupported serde features (none are used) or a full fixed buffer.
    postcard::to_stdvec(value).unwrap_or_else(|e| unreachable!("postcard encoding failed: {e}"))
}

impl ResourceRecord {
    pub fn new(resource: Resource, refs: Vec<(ResourceKey, Digest)>) -> Self {
        ResourceRecord {
            domain: RESOURCE_DOMAIN.to_string(),
            resource,
            refs,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// The encoding this archy writes and reads.
    pub fn current_domain() -> &'static str {
        RESOURCE_DOMAIN
    }

    /// The domain string a record starts with, read before the rest: a
    /// record of another encoding version may not decode, or may decode
    /// into the wrong fields, so its version is checked first.
    pub fn domain_of(bytes: &[u8]) -> Result<String, DecodeError> {
        postcard::take_from_bytes::<String>(bytes)
            .map(|(domain, _)| domain)
            .map_err(|source| DecodeError {
                what: "resource",
                source,
            })
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let rec: Self = postcard::from_bytes(bytes).map_err(|source| DecodeError {
            what: "resource",
            source,
        })?;
        Ok(rec)
    }
}

impl GraphRecord {
    pub fn new(facts: BTreeMap<String, Fact>, resources: Vec<(ResourceKey, Digest)>) -> Self {
        GraphRecord {
            domain: GRAPH_DOMAIN.to_string(),
            facts,
            resources,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        postcard::from_bytes(bytes).map_err(|source| DecodeError {
            what: "graph",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::names::{AbsPath, AccountName, Mode, SecretName};
    use crate::resource::{FileSpec, SecretSpec, UserSpec};

    fn sample() -> ResourceRecord {
        let file = Resource::File(FileSpec {
            path: AbsPath::try_from("/etc/archy/demo.conf").unwrap(),
            content: Digest::of(b"greeting=hello\n"),
            size: 15,
            mode: Mode::FILE,
            owner: None,
            group: None,
            derives: vec![],
        });
        ResourceRecord::new(file, vec![])
    }

    #[test]
    fn the_domain_is_read_before_the_rest() {
        let mut old = sample();
        old.domain = "archy.resource.v2".into();
        let bytes = old.encode();
        assert_eq!(
            ResourceRecord::domain_of(&bytes).unwrap(),
            "archy.resource.v2"
        );
        assert_eq!(
            ResourceRecord::domain_of(&sample().encode()).unwrap(),
            ResourceRecord::current_domain()
        );
        assert!(ResourceRecord::domain_of(&[0xff]).is_err());
    }

    fn user_sample() -> ResourceRecord {
        let name = |n: &str| AccountName::try_from(n).unwrap();
        let user = Resource::User(UserSpec {
            name: name("svc"),
            uid: Some(2345),
            group: Some(name("svc")),
            groups: vec![name("bitcoin"), name("tor")],
            home: None,
            system: true,
        });
        ResourceRecord::new(user, vec![])
    }

    fn secret_sample() -> ResourceRecord {
        let secret = Resource::Secret(SecretSpec {
            name: SecretName::try_from("bitcoin-rpc-password").unwrap(),
            length: 32,
            owner: Some(AccountName::try_from("bitcoin").unwrap()),
            group: None,
            mode: Mode::SECRET,
            version: 3,
            regenerate: true,
        });
        ResourceRecord::new(secret, vec![])
    }

    /// If this fails, the canonical encoding changed: every node's root hash
    /// changes with it and every generation would look new. Only update the
    /// pinned value for a deliberate change of the encoding (and bump the
    /// domain strings). v3 added users' supplementary `groups` and
    /// containers' `stop_timeout`; v4 added secrets' `regenerate`. The
    /// values were also computed apart from this code, by writing
    /// postcard's bytes out by hand in Python and hashing them with a
    /// BLAKE3 written from its specification (the same script gives the v3
    /// values pinned before).
    #[test]
    fn pinned_digest() {
        let bytes = sample().encode();
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "5515d5631c3637a2741b116c9ec5b9ae9436501d577ea046ee06c609fd28ac1b"
        );
        let bytes = user_sample().encode();
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "57aea65b7e86c13d99c1a5b2c62b2459956bac6bbddeba7c12b12d0f8d14f4db"
        );
        let bytes = secret_sample().encode();
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "7c1f791283b9df0c579585f2ad97c322a6889a6b53fc27452783abf8d47ad690"
        );
    }

    #[test]
    fn round_trip() {
        let rec = sample();
        assert_eq!(ResourceRecord::decode(&rec.encode()).unwrap(), rec);
        let g = GraphRecord::new(
            BTreeMap::from([("hostname".into(), Fact::Text("n1".into()))]),
            vec![(rec.resource.key(), Digest::of(&rec.encode()))],
        );
        assert_eq!(GraphRecord::decode(&g.encode()).unwrap(), g);
        assert!(GraphRecord::decode(b"junk").is_err());
    }
}
