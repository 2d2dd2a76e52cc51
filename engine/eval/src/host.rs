//! The `host` value: the facts of the node, read-only, and a record of which
//! facts the evaluation read (those, and only those, are part of the hash,
//! so a fact nobody uses, like free disk space, never makes a new
//! generation).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use archy_graph::Fact;
use rhai::{Dynamic, EvalAltResult, Position};

/// The facts given to an evaluation.
pub type HostFacts = BTreeMap<String, Fact>;

/// A fact that costs something to learn (the hash of the running archy),
/// learned only when a description reads it.
pub type DeferredFact = std::sync::Arc<dyn Fn() -> Fact + Send + Sync>;

/// The `host` value scripts see.
#[derive(Clone)]
pub struct Host {
    facts: Rc<RefCell<HostFacts>>,
    deferred: Rc<BTreeMap<String, DeferredFact>>,
    used: Rc<RefCell<BTreeSet<String>>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("facts", &self.facts.borrow())
            .field("deferred", &self.deferred.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Host {
    pub fn new(facts: HostFacts) -> Self {
        Self::with_deferred(facts, BTreeMap::new())
    }

    /// Facts, and facts learned when first read.
    pub fn with_deferred(facts: HostFacts, deferred: BTreeMap<String, DeferredFact>) -> Self {
        Host {
            facts: Rc::new(RefCell::new(facts)),
            deferred: Rc::new(deferred),
            used: Rc::default(),
        }
    }

    /// Reads a fact and records that it was used.
    pub fn get(&self, name: &str) -> Option<Fact> {
        let known = self.facts.borrow().get(name).cloned();
        let value = match known {
            Some(v) => v,
            None => {
                let v = (self.deferred.get(name)?)();
                self.facts.borrow_mut().insert(name.to_string(), v.clone());
                v
            }
        };
        self.used.borrow_mut().insert(name.to_string());
        Some(value)
    }

    /// Whether the fact `name` is known (given, or learnable when read).
    /// Not a read: it does not make the fact part of the hash.
    pub fn has(&self, name: &str) -> bool {
        self.facts.borrow().contains_key(name) || self.deferred.contains_key(name)
    }

    pub fn known(&self) -> String {
        let facts = self.facts.borrow();
        let mut names: BTreeSet<&String> = facts.keys().collect();
        names.extend(self.deferred.keys());
        names.into_iter().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The facts that were read, with their values.
    pub fn used(&self) -> BTreeMap<String, Fact> {
        let facts = self.facts.borrow();
        self.used
            .borrow()
            .iter()
            .filter_map(|k| facts.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// `host.name` and `host["name"]` in a script.
    pub fn index(&mut self, name: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        match self.get(name) {
            Some(Fact::Int(n)) => Ok(Dynamic::from_int(n)),
            Some(Fact::Text(s)) => Ok(Dynamic::from(s)),
            None => Err(Box::new(EvalAltResult::ErrorRuntime(
                format!(
                    "host has no fact `{name}`; the facts are: {}; add one with --fact {name}=VALUE",
                    self.known()
                )
                .into(),
                Position::NONE,
            ))),
        }
    }
}

/// The fact as text, for templates.
pub fn fact_text(f: &Fact) -> String {
    match f {
        Fact::Int(n) => n.to_string(),
        Fact::Text(s) => s.clone(),
    }
}
