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

const RESOURCE_DOMAIN: &str = "archy.resource.v5";
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

    /// Decodes a record of today's encoding, or of an older one that
    /// [`crate::legacy`] reads into today's types. `None` for an encoding
    /// this archy cannot read (a newer one, or one too old).
    pub fn decode_any(bytes: &[u8]) -> Result<Option<Upgraded>, DecodeError> {
        let domain = Self::domain_of(bytes)?;
        if domain == RESOURCE_DOMAIN {
            return Self::decode(bytes).map(|record| {
                Some(Upgraded {
                    record,
                    upgraded: false,
                })
            });
        }
        crate::legacy::upgrade(&domain, bytes).transpose().map(|r| {
            r.map(|record| Upgraded {
                record,
                upgraded: true,
            })
        })
    }
}

/// A record as [`ResourceRecord::decode_any`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    pub record: ResourceRecord,
    /// Read from an older encoding: its hash is not today's.
    pub upgraded: bool,
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

    /// v5's new fields: a unit's reload triggers, `stop-start` and its
    /// `health` opt-out.
    fn unit_sample() -> ResourceRecord {
        use crate::names::UnitName;
        use crate::resource::{OnChange, UnitSection, UnitSpec};
        let conf = AbsPath::try_from("/etc/web/web.conf").unwrap();
        let unit = Resource::Unit(UnitSpec {
            name: UnitName::try_from("web.service").unwrap(),
            sections: vec![UnitSection {
                name: "Service".into(),
                entries: vec![("ExecStart".into(), "/usr/bin/web".into())],
            }],
            on_change: OnChange::StopStart,
            reads: vec![conf.clone()],
            secrets: vec![],
            reload_triggers: vec![conf],
            health: false,
        });
        ResourceRecord::new(unit, vec![])
    }

    /// If this fails, the canonical encoding changed: every node's root hash
    /// changes with it and every generation would look new. Only update the
    /// pinned value for a deliberate change of the encoding (and bump the
    /// domain strings). v3 added users' supplementary `groups` and
    /// containers' `stop_timeout`; v4 added secrets' `regenerate`; v5
    /// units' `reload_triggers`, `on_change: "stop-start"`, units' and
    /// containers' `health`, instances and drop-ins (older generations are
    /// read by
    /// [`crate::legacy`]). The values were also computed apart from this
    /// code, by writing postcard's bytes out by hand in Python and hashing
    /// them: up to v4 with a BLAKE3 written from its specification, v5's
    /// with the `blake3` package of PyPI (the same script, given v4's
    /// domain, gives v4's pinned values).
    #[test]
    fn pinned_digest() {
        let bytes = sample().encode();
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "4ac4380137115323b3eaef6d1b657edd4642b87c7e64de80712a344697aa825b"
        );
        let bytes = user_sample().encode();
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "30cc2383611e6585e61156f60d47bb86af74d8d6277832ff3198d16d39f34abe"
        );
        let bytes = secret_sample().encode();
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "210c491bfe91d8e896b1b8561cb1c4a53761503b8f53faa233a2d9b7c2bc9861"
        );
        let bytes = unit_sample().encode();
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "72191a7d57bc45e60bb2c45ae4db69a1b67caf7fe95304f950d9e820d9685935"
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
