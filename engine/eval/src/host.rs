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

/// The `host` value scripts see.
#[derive(Debug, Clone)]
pub struct Host {
    facts: Rc<HostFacts>,
    used: Rc<RefCell<BTreeSet<String>>>,
}

impl Host {
    pub fn new(facts: HostFacts) -> Self {
        Host {
            facts: Rc::new(facts),
            used: Rc::default(),
        }
    }

    /// Reads a fact and records that it was used.
    pub fn get(&self, name: &str) -> Option<&Fact> {
        let value = self.facts.get(name)?;
        self.used.borrow_mut().insert(name.to_string());
        Some(value)
    }

    pub fn known(&self) -> String {
        self.facts.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The facts that were read, with their values.
    pub fn used(&self) -> BTreeMap<String, Fact> {
        self.used
            .borrow()
            .iter()
            .filter_map(|k| self.facts.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// `host.name` and `host["name"]` in a script.
    pub fn index(&mut self, name: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        match self.get(name) {
            Some(Fact::Int(n)) => Ok(Dynamic::from_int(*n)),
            Some(Fact::Text(s)) => Ok(Dynamic::from(s.clone())),
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
