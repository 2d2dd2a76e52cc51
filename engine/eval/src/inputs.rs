//! What an evaluation is given besides its sources: the host facts and the
//! node's secret rotations. Both come from the caller (the CLI reads them
//! on the node); the evaluator itself never looks for them.

use std::collections::BTreeMap;

use crate::host::HostFacts;

/// How often each secret was rotated on this node (`archy secret rotate`),
/// by secret name. A secret's effective version is its declared version
/// plus its rotations, so a rotation changes the secret's hash and so
/// everything that derives from it or reads it. Names the description does
/// not declare are ignored.
pub type Rotations = BTreeMap<String, u32>;

/// The inputs of an evaluation other than its sources. A [`HostFacts`]
/// alone converts into inputs without rotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub facts: HostFacts,
    pub rotations: Rotations,
}

impl From<HostFacts> for Inputs {
    fn from(facts: HostFacts) -> Self {
        Inputs {
            facts,
            rotations: Rotations::new(),
        }
    }
}
