//! The node's secret rotations, `<state>/rotations.json`: how often `archy
//! secret rotate` rotated each secret. It holds counts, never values; the
//! evaluator takes them as an input, so every command that evaluates reads
//! them from here and `eval`, `build`, `diff` and `switch` see the same
//! versions.
//!
//! Format 1 was the bare map (`{"bitcoin-rpc-password": 1}`); format 2 puts
//! it under `rotations`, beside the header, so that a secret called
//! `format` cannot be mistaken for the header.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::StateDir;
use crate::versioned::{self, NewerFormat, RecordError, VersionedRecord};

/// Secret name -> how often it was rotated.
pub type SecretRotations = BTreeMap<String, u32>;

/// What a rotations file holds, in format 2.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationsRecord {
    rotations: SecretRotations,
}

impl VersionedRecord for RotationsRecord {
    const WHAT: &'static str = "the secret rotations";
    const FORMAT: u32 = 2;

    /// Format 1: the map itself.
    fn upgrade(_: u32, fields: Value) -> Result<Self, serde_json::Error> {
        SecretRotations::deserialize(fields).map(|rotations| Self { rotations })
    }
}

/// Why the rotations could not be read or recorded.
#[derive(Debug, thiserror::Error)]
pub enum RotationsError {
    #[error("cannot read the secret rotations {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a JSON object of secret names to counts.
    #[error("{} is not a valid rotations file: {source}", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Newer(#[from] NewerFormat),
    #[error("cannot record the secret rotations in {}: write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RotationsError {
    /// What to do about a malformed file, for the operator.
    pub const MALFORMED_HINT: &'static str = "it holds how often each secret was rotated, as a \
         JSON object like {\"bitcoin-rpc-password\": 1}; fix it, or delete it to forget every \
         rotation (the next switch then makes new values for the secrets that were rotated)";
}

impl StateDir {
    /// The recorded rotations; none when the file does not exist.
    pub fn read_rotations(&self) -> Result<SecretRotations, RotationsError> {
        let path = self.rotations();
        match versioned::read::<RotationsRecord>(&path) {
            Ok(record) => Ok(record.map(|r| r.rotations).unwrap_or_default()),
            Err(RecordError::Io(source)) => Err(RotationsError::Read { path, source }),
            Err(RecordError::Parse(source)) => Err(RotationsError::Malformed { path, source }),
            Err(RecordError::Newer(newer)) => Err(newer.into()),
        }
    }

    /// Replaces the recorded rotations atomically. The caller holds the
    /// state lock.
    pub fn write_rotations(&self, rotations: &SecretRotations) -> Result<(), RotationsError> {
        let path = self.rotations();
        let record = RotationsRecord {
            rotations: rotations.clone(),
        };
        versioned::write(&path, &record, 0o644)
            .map_err(|source| RotationsError::Write { path, source })
    }
}
