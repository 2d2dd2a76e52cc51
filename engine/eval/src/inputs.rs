//! What an evaluation is given besides its sources: the host facts and the
//! node's secret rotations. Both come from the caller (the CLI reads them
//! on the node); the evaluator itself never looks for them.

use std::collections::BTreeMap;

use crate::host::{DeferredFact, HostFacts};

/// How often each secret was rotated on this node (`archy secret rotate`),
/// by secret name. A secret's effective version is its declared version
/// plus its rotations, so a rotation changes the secret's hash and so
/// everything that derives from it or reads it. Names the description does
/// not declare are ignored.
pub type Rotations = BTreeMap<String, u32>;

/// The inputs of an evaluation other than its sources. A [`HostFacts`]
/// alone converts into inputs without rotations.
#[derive(Clone, Default)]
pub struct Inputs {
    pub facts: HostFacts,
    pub rotations: Rotations,
    /// Facts learned only if the description reads them.
    pub deferred: BTreeMap<String, DeferredFact>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("facts", &self.facts)
            .field("rotations", &self.rotations)
            .field("deferred", &self.deferred.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl From<HostFacts> for Inputs {
    fn from(facts: HostFacts) -> Self {
        Inputs {
            facts,
            rotations: Rotations::new(),
            deferred: BTreeMap::new(),
        }
    }
}
