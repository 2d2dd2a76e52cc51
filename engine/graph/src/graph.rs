//! Assembling declared resources into a graph: the checks that need every
//! resource at once (two claims on one path or name, references to
//! undeclared things), the references each resource has, and the hashes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::Digest;
use crate::context::BuildContext;
use crate::encode::{Fact, GraphRecord, ResourceRecord};
use crate::names::UnitName;
use crate::problem::{Problem, Span};
use crate::resource::{ImageSource, Kind, MountSource, NetworkMode, Resource, ResourceKey};

/// A resource as the evaluator declared it, with the call that made it.
#[derive(Debug, Clone)]
pub struct Declared {
    pub resource: Resource,
    pub at: Span,
}

/// Everything evaluation produced, before the graph checks.
#[derive(Debug, Default)]
pub struct Declarations {
    pub resources: Vec<Declared>,
    /// File contents by digest.
    pub blobs: BTreeMap<Digest, Arc<str>>,
    /// Build contexts read, by tree digest.
    pub contexts: BTreeMap<Digest, Arc<BuildContext>>,
    /// The host facts the evaluation read.
    pub facts: BTreeMap<String, Fact>,
    /// Where each artifact's and tree's bytes come from, as written.
    pub sources: BTreeMap<ResourceKey, String>,
    /// Resources whose constructor already reported a problem: a reference
    /// to one of them is not reported again as undeclared.
    pub invalid: BTreeSet<ResourceKey>,
}

/// A resource in the graph.
#[derive(Debug, Clone)]
pub struct Node {
    pub key: ResourceKey,
    pub resource: Resource,
    /// What this resource refers to; their hashes are part of its hash.
    pub refs: Vec<ResourceKey>,
    pub hash: Digest,
    pub at: Span,
}

/// A checked, hashed node description.
#[derive(Debug, Clone)]
pub struct Graph {
    pub root: Digest,
    pub facts: BTreeMap<String, Fact>,
    /// Sorted by key.
    pub nodes: Vec<Node>,
    pub blobs: BTreeMap<Digest, Arc<str>>,
    /// The files of every context a container is built from, by tree
    /// digest. Like `blobs`, no part of any hash (the container's `tree`
    /// field is), but what a switch needs to build the image.
    pub contexts: BTreeMap<Digest, Arc<BuildContext>>,
    /// Where each artifact's and tree's bytes come from (a file beside the
    /// node description, or a URL), as the author wrote it. No part of any
    /// hash: software is named by its declared hash, so the same bytes from
    /// elsewhere restart nothing. Empty in a generation loaded from the
    /// store, whose software is in the store already.
    pub sources: BTreeMap<ResourceKey, String>,
}

impl Graph {
    pub fn get(&self, key: &ResourceKey) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.key.cmp(key))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// The canonical bytes of one node: what its hash is taken over and what
    /// the store keeps.
    pub fn node_record(&self, node: &Node) -> ResourceRecord {
        let refs = node
            .refs
            .iter()
            .filter_map(|k| self.get(k).map(|r| (k.clone(), r.hash)))
            .collect();
        ResourceRecord::new(node.resource.clone(), refs)
    }

    /// The canonical bytes the root hash is taken over.
    pub fn record(&self) -> GraphRecord {
        GraphRecord::new(
            self.facts.clone(),
            self.nodes.iter().map(|n| (n.key.clone(), n.hash)).collect(),
        )
    }

    /// Hashes every node again with today's encoding, references first,
    /// and the root with them: for a generation an older archy built,
    /// whose resources were read into today's types (see
    /// [`crate::legacy`]), so they compare equal to a fresh evaluation.
    pub fn rehash(&mut self) {
        let index: BTreeMap<ResourceKey, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.key.clone(), i))
            .collect();
        let mut done: BTreeMap<usize, Digest> = BTreeMap::new();
        for start in 0..self.nodes.len() {
            // Depth first without recursion: a node is hashed once every
            // node it refers to is. The graph is acyclic (a Merkle graph).
            let mut stack = vec![start];
            while let Some(&i) = stack.last() {
                if done.contains_key(&i) {
                    stack.pop();
                    continue;
                }
                let pending: Vec<usize> = self.nodes[i]
                    .refs
                    .iter()
                    .filter_map(|r| index.get(r).copied())
                    .filter(|j| !done.contains_key(j) && !stack.contains(j))
                    .collect();
                if !pending.is_empty() {
                    stack.extend(pending);
                    continue;
                }
                let node = &self.nodes[i];
                let refs = node
                    .refs
                    .iter()
                    .filter_map(|r| {
                        index
                            .get(r)
                            .and_then(|j| done.get(j))
                            .map(|h| (r.clone(), *h))
                    })
                    .collect();
                let hash = Digest::of(&ResourceRecord::new(node.resource.clone(), refs).encode());
                done.insert(i, hash);
                stack.pop();
            }
        }
        for (i, hash) in done {
            self.nodes[i].hash = hash;
        }
        self.root = Digest::of(&self.record().encode());
    }

    /// How many resources of each kind, in the graph's kind order.
    pub fn count_by_kind(&self) -> Vec<(Kind, usize)> {
        Kind::ALL
            .iter()
            .map(|k| (*k, self.nodes.iter().filter(|n| n.key.kind == *k).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// Checks the declarations as a whole and hashes them into a graph, or
/// returns every problem found.
pub fn assemble(decl: Declarations) -> Result<Graph, Vec<Problem>> {
    let mut problems = Vec::new();
    let by_key = unique_keys(&decl.resources, &mut problems);
    check_paths(&by_key, &mut problems);
    check_generated_units(&by_key, &mut problems);
    check_ids(&by_key, &mut problems);
    check_requires(&by_key, &mut problems);
    check_instances(&by_key, &decl.invalid, &mut problems);
    crate::app::check_apps(&by_key, &mut problems);
    crate::data::check_contracts(&by_key, &mut problems);
    let files = FileIndex::new(&by_key);
    let mut refs = BTreeMap::new();
    for (key, d) in &by_key {
        let found = references(d, &by_key, &decl.invalid, &files, &mut problems);
        refs.insert(key.clone(), found);
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.at.cmp(&b.at));
        return Err(problems);
    }
    let mut graph = hash_all(by_key, refs, decl.blobs, decl.contexts, decl.facts);
    graph.sources = decl.sources;
    graph
        .sources
        .retain(|k, _| graph.nodes.binary_search_by(|n| n.key.cmp(k)).is_ok());
    Ok(graph)
}

fn unique_keys(
    resources: &[Declared],
    problems: &mut Vec<Problem>,
) -> BTreeMap<ResourceKey, Declared> {
    let mut by_key: BTreeMap<ResourceKey, Declared> = BTreeMap::new();
    for d in resources {
        let key = d.resource.key();
        if let Some(first) = by_key.get(&key) {
            problems.push(
                Problem::at(&d.at, format!("{key} is declared twice"))
                    .also(&first.at, "first declared here")
                    .hint("declare each resource once; remove one of the two"),
            );
        } else {
            by_key.insert(key, d.clone());
        }
    }
    by_key
}

/// The declarations in the order the author wrote them, so that "first
/// declared here" is the one that comes first.
fn in_source_order(by_key: &BTreeMap<ResourceKey, Declared>) -> Vec<(&ResourceKey, &Declared)> {
    let mut all: Vec<_> = by_key.iter().collect();
    all.sort_by(|a, b| a.1.at.cmp(&b.1.at));
    all
}

/// A file, a directory, an artifact or a tree cannot claim one path, and
/// nothing can be declared inside a file, an artifact or a tree.
fn check_paths(by_key: &BTreeMap<ResourceKey, Declared>, problems: &mut Vec<Problem>) {
    let mut paths: BTreeMap<&str, (&Declared, Kind)> = BTreeMap::new();
    for (key, d) in in_source_order(by_key) {
        if !is_path_kind(key.kind) {
            continue;
        }
        if let Some((first, kind)) = paths.get(key.id.as_str()) {
            problems.push(
                Problem::at(
                    &d.at,
                    format!("{key} claims a path already declared as a {kind}"),
                )
                .also(&first.at, "first declared here")
                .hint("a path can be declared once: a file, a directory, an artifact or a tree"),
            );
        } else {
            paths.insert(&key.id, (d, key.kind));
        }
    }
    // Each path against the nearest declared path above it: a file, an
    // artifact or a tree there is used as a directory. (Not neighbours in
    // sorted order: "/a-b" sorts between "/a" and "/a/c".)
    for (q, (e, _)) in &paths {
        let mut at = *q;
        let parent = loop {
            let Some((up, _)) = at.rsplit_once('/') else {
                break None;
            };
            if let Some((p, found)) = paths.get_key_value(up) {
                break Some((*p, found));
            }
            at = up;
        };
        let Some((p, (d, k))) = parent else {
            continue;
        };
        let whole = matches!(k, Kind::File | Kind::Artifact | Kind::Tree);
        if whole {
            let hint = if *k == Kind::Tree {
                "a tree is replaced whole: put the file into the tree's source, or move it"
            } else {
                "make the outer path a dir(...) or move one of them"
            };
            problems.push(
                Problem::at(
                    &e.at,
                    format!(
                        "{q} lies inside {p}, which is declared as a{} {k}",
                        if *k == Kind::Artifact { "n" } else { "" }
                    ),
                )
                .also(&d.at, format!("the {k} is declared here"))
                .hint(hint),
            );
        }
    }
}

/// The kinds that claim a path of the node's file system.
fn is_path_kind(kind: Kind) -> bool {
    matches!(kind, Kind::File | Kind::Dir | Kind::Artifact | Kind::Tree)
}

/// The systemd unit a podman resource becomes through Quadlet.
pub fn generated_unit(key: &ResourceKey) -> Option<UnitName> {
    let unit = match key.kind {
        Kind::Container => format!("{}.service", key.id),
        Kind::Network => format!("{}-network.service", key.id),
        Kind::Volume => format!("{}-volume.service", key.id),
        _ => return None,
    };
    // The id is a podman name (letters, digits, `_`, `.`, `-`): always a
    // valid unit name prefix, so this never fails for a checked resource.
    UnitName::try_from(unit).ok()
}

/// A container `x` runs as `x.service`: a unit of that name would clash.
fn check_generated_units(by_key: &BTreeMap<ResourceKey, Declared>, problems: &mut Vec<Problem>) {
    for (key, d) in by_key {
        let Some(unit) = generated_unit(key) else {
            continue;
        };
        let clash = ResourceKey {
            kind: Kind::Unit,
            id: unit.to_string(),
        };
        if let Some(other) = by_key.get(&clash) {
            problems.push(
                Problem::at(
                    &d.at,
                    format!("{key} runs as {unit}, which is also declared as a unit"),
                )
                .also(&other.at, "the unit is declared here")
                .hint("rename the unit or the podman resource"),
            );
        }
    }
}

/// An instance names a template declared in the node, and no `unit(...)`
/// declares its unit too; a drop-in's name is a plain file name.
fn check_instances(
    by_key: &BTreeMap<ResourceKey, Declared>,
    invalid: &BTreeSet<ResourceKey>,
    problems: &mut Vec<Problem>,
) {
    for (key, d) in by_key {
        if let Resource::Dropin(x) = &d.resource {
            let template = ResourceKey {
                kind: Kind::Unit,
                id: x.unit.to_string(),
            };
            if x.unit.is_template()
                && !by_key.contains_key(&template)
                && !invalid.contains(&template)
            {
                problems.push(
                    Problem::at(
                        &d.at,
                        format!("{key} is for template {}, which the node does not declare", x.unit),
                    )
                    .hint(format!(
                        "archy cannot know which instances of a template it does not own run: give the drop-in to each instance, e.g. \"{}\"",
                        x.unit.as_str().replacen("@.", "@NAME.", 1)
                    )),
                );
            }
        }
        let Resource::Instance(i) = &d.resource else {
            continue;
        };
        let template = ResourceKey {
            kind: Kind::Unit,
            id: i.template.to_string(),
        };
        if !i.template.is_template() {
            problems.push(
                Problem::at(
                    &d.at,
                    format!("{key} names {}, which is not a template", i.template),
                )
                .hint("a template's name ends in @.TYPE, e.g. \"app@.service\""),
            );
        } else if let Some(Declared {
            resource: Resource::Unit(t),
            at,
        }) = by_key.get(&template)
            && !t
                .sections
                .iter()
                .any(|s| s.name == "Install" && !s.entries.is_empty())
        {
            problems.push(
                Problem::at(
                    &d.at,
                    format!(
                        "{key} is an instance of {}, which has no [Install] section: nothing would start it",
                        i.template
                    ),
                )
                .also(at, "the template is declared here")
                .hint("add Install: #{ WantedBy: \"multi-user.target\" } to the template"),
            );
        } else if !by_key.contains_key(&template) && !invalid.contains(&template) {
            problems.push(
                Problem::at(
                    &d.at,
                    format!(
                        "{key} is an instance of {}, which the node does not declare",
                        i.template
                    ),
                )
                .hint(format!(
                    "declare the template with unit(\"{}\", #{{ ... }}); for a unit archy does not own, use dropin(...) instead",
                    i.template
                )),
            );
        }
        if let Some(Declared {
            resource: Resource::Unit(t),
            ..
        }) = by_key.get(&template)
            && i.on_change == Some(crate::resource::OnChange::Reload)
            && !t
                .sections
                .iter()
                .filter(|s| s.name == "Service")
                .any(|s| s.entries.iter().any(|(k, _)| k == "ExecReload"))
        {
            problems.push(
                Problem::at(
                    &d.at,
                    format!(
                        "{key} says on_change: \"reload\" but its template {} has no ExecReload= in [Service]",
                        i.template
                    ),
                )
                .hint("add ExecReload= to the template, or use on_change: \"restart\""),
            );
        }
        let clash = ResourceKey {
            kind: Kind::Unit,
            id: key.id.clone(),
        };
        if let Some(other) = by_key.get(&clash) {
            problems.push(
                Problem::at(&d.at, format!("{key} is also declared as a unit"))
                    .also(&other.at, "the unit is declared here")
                    .hint(
                        "declare it once: as an instance of the template, or as a unit of its own",
                    ),
            );
        }
    }
}

/// `requires` names other containers of the node. It is no reference for
/// hashing: a container's own file does not change when one it needs does;
/// systemd restarts it along with that one.
fn check_requires(by_key: &BTreeMap<ResourceKey, Declared>, problems: &mut Vec<Problem>) {
    for (key, d) in by_key {
        let Resource::Container(c) = &d.resource else {
            continue;
        };
        for r in &c.requires {
            let other = ResourceKey {
                kind: Kind::Container,
                id: r.to_string(),
            };
            if *r == c.name {
                problems.push(
                    Problem::at(&d.at, format!("{key} requires itself"))
                        .hint("remove its own name from `requires`"),
                );
            } else if !by_key.contains_key(&other) {
                problems.push(
                    Problem::at(
                        &d.at,
                        format!("{key} requires container {r:?}, which is not declared"),
                    )
                    .hint("declare that container, or remove it from `requires`"),
                );
            }
        }
    }
}

/// Two accounts cannot share a uid or gid.
fn check_ids(by_key: &BTreeMap<ResourceKey, Declared>, problems: &mut Vec<Problem>) {
    let mut seen: BTreeMap<(Kind, u32), &Declared> = BTreeMap::new();
    for (_, d) in in_source_order(by_key) {
        let id = match &d.resource {
            Resource::User(u) => u.uid.map(|n| (Kind::User, n)),
            Resource::Group(g) => g.gid.map(|n| (Kind::Group, n)),
            _ => None,
        };
        let Some(id) = id else { continue };
        if let Some(first) = seen.get(&id) {
            let what = if id.0 == Kind::User { "uid" } else { "gid" };
            problems.push(
                Problem::at(
                    &d.at,
                    format!("{} uses {what} {}, already taken", d.resource.key(), id.1),
                )
                .also(&first.at, format!("{} has it", first.resource.key()))
                .hint(format!("give each account its own {what}")),
            );
        } else {
            seen.insert(id, d);
        }
    }
}

/// Managed file paths (files, artifacts, trees), for finding what a unit
/// or container reads.
struct FileIndex<'a> {
    files: BTreeMap<&'a str, &'a ResourceKey>,
}

impl<'a> FileIndex<'a> {
    fn new(by_key: &'a BTreeMap<ResourceKey, Declared>) -> Self {
        let files = by_key
            .keys()
            .filter(|k| matches!(k.kind, Kind::File | Kind::Artifact | Kind::Tree))
            .map(|k| (k.id.as_str(), k))
            .collect();
        FileIndex { files }
    }

    /// The files at `path` or below it, and the tree `path` lies in.
    fn within(&self, path: &str) -> Vec<ResourceKey> {
        let dir = path.trim_end_matches('/');
        let mut found: Vec<ResourceKey> = self
            .files
            .range(dir..)
            .take_while(|(p, _)| p.starts_with(dir))
            .filter(|(p, _)| {
                p.len() == dir.len() || p.as_bytes()[dir.len()] == b'/' || dir.is_empty()
            })
            .map(|(_, k)| (*k).clone())
            .collect();
        // `/srv/ui/index.html` is read from the tree at `/srv/ui`.
        let mut at = dir;
        while let Some((parent, _)) = at.rsplit_once('/') {
            if let Some(k) = self.files.get(parent).filter(|k| k.kind == Kind::Tree) {
                found.push((*k).clone());
                break;
            }
            at = parent;
        }
        found
    }

    /// As [`FileIndex::mentioned_in`], leaving out the paths with a
    /// specifier (`/etc/x/%i.conf`), which name a file per instance.
    fn mentioned_unexpanded(&self, text: &str, out: &mut BTreeSet<ResourceKey>) {
        for word in text.split_whitespace().filter(|w| !w.contains('%')) {
            self.mentioned_in(word, out);
        }
    }

    /// The files named by absolute paths anywhere in `text`, such as
    /// `ExecStart=/usr/bin/app --config /etc/app.conf` or
    /// `EnvironmentFile=-/etc/app.env`.
    fn mentioned_in(&self, text: &str, out: &mut BTreeSet<ResourceKey>) {
        let is_path_char = |c: char| c.is_ascii_alphanumeric() || "/._@+-".contains(c);
        for token in text.split(|c: char| !is_path_char(c)) {
            let Some(start) = token.find('/') else {
                continue;
            };
            let path = &token[start..];
            if path.len() > 1 {
                out.extend(self.within(path));
            }
        }
    }
}

fn undeclared(d: &Declared, kind: Kind, id: &str, how: &str, problems: &mut Vec<Problem>) {
    let hint = match kind {
        Kind::Secret => format!("declare it: secret(\"{id}\", #{{ length: 32 }})"),
        Kind::Network => {
            format!("declare it: network(\"{id}\", #{{}}), or use \"host\" or \"none\"")
        }
        Kind::Volume => {
            format!("declare it: volume(\"{id}\", #{{}}), or bind-mount an absolute path")
        }
        _ => format!("declare the {kind} or remove the reference"),
    };
    problems.push(
        Problem::at(
            &d.at,
            format!(
                "{} {how} {kind} {id:?}, which is not declared",
                d.resource.key()
            ),
        )
        .hint(hint),
    );
}

/// The files (or the files in the folders) `reads` names and the secrets
/// `secrets` names, of a unit, an instance or a drop-in.
fn reads_and_secrets(
    reads: &[crate::names::AbsPath],
    secrets: &[crate::names::SecretName],
    files: &FileIndex,
    need: &mut impl FnMut(Kind, &str, &str, &mut BTreeSet<ResourceKey>),
    out: &mut BTreeSet<ResourceKey>,
) {
    for p in reads {
        let found = files.within(p.as_str());
        if found.is_empty() {
            need(Kind::File, p.as_str(), "reads", out);
        }
        out.extend(found);
    }
    for s in secrets {
        need(Kind::Secret, s.as_str(), "reads", out);
    }
}

/// What a resource refers to. Restart triggers come from here: when a
/// referenced resource's hash changes, so does this one's.
fn references(
    d: &Declared,
    by_key: &BTreeMap<ResourceKey, Declared>,
    invalid: &BTreeSet<ResourceKey>,
    files: &FileIndex,
    problems: &mut Vec<Problem>,
) -> Vec<ResourceKey> {
    let mut out = BTreeSet::new();
    let mut need = |kind: Kind, id: &str, how: &str, out: &mut BTreeSet<ResourceKey>| {
        let key = ResourceKey {
            kind,
            id: id.to_string(),
        };
        if by_key.contains_key(&key) {
            out.insert(key);
        } else if !invalid.contains(&key) {
            undeclared(d, kind, id, how, problems);
        }
    };
    match &d.resource {
        Resource::Unit(u) => {
            for s in &u.sections {
                for (_, v) in &s.entries {
                    // A template's `%i` paths are its instances' to read.
                    if u.name.is_template() {
                        files.mentioned_unexpanded(v, &mut out);
                    } else {
                        files.mentioned_in(v, &mut out);
                    }
                }
            }
            reads_and_secrets(&u.reads, &u.secrets, files, &mut need, &mut out);
        }
        Resource::Instance(i) => {
            let template = ResourceKey {
                kind: Kind::Unit,
                id: i.template.to_string(),
            };
            if let Some(Declared {
                resource: Resource::Unit(t),
                ..
            }) = by_key.get(&template)
            {
                out.insert(template.clone());
                // The template's paths with this instance's specifiers
                // filled in: `/etc/x/%i.conf` is this instance's file.
                for s in &t.sections {
                    for (_, v) in &s.entries {
                        if v.contains('%') {
                            files.mentioned_in(&expand_instance(v, &i.instance), &mut out);
                        }
                    }
                }
            }
            reads_and_secrets(&i.reads, &i.secrets, files, &mut need, &mut out);
        }
        Resource::Dropin(u) => {
            for s in &u.sections {
                for (_, v) in &s.entries {
                    files.mentioned_in(v, &mut out);
                }
            }
            reads_and_secrets(&u.reads, &u.secrets, files, &mut need, &mut out);
        }
        Resource::File(f) => {
            for s in &f.derives {
                need(Kind::Secret, s.as_str(), "derives from", &mut out);
            }
        }
        Resource::Container(c) => {
            for s in c.secret_env.values() {
                need(Kind::Secret, s.as_str(), "reads", &mut out);
            }
            if let NetworkMode::Named(n) = &c.network {
                need(Kind::Network, n.as_str(), "joins", &mut out);
            }
            for m in &c.volumes {
                match &m.source {
                    MountSource::Volume(v) => need(Kind::Volume, v.as_str(), "mounts", &mut out),
                    MountSource::Bind(p) => out.extend(files.within(p.as_str())),
                }
            }
            let argv = c.entrypoint.iter().flatten().chain(&c.exec);
            for v in argv.chain(c.env.values()).chain(c.derived_env.values()) {
                files.mentioned_in(v, &mut out);
            }
            // A built image is named by its context's tree hash, a field of
            // the container itself: there is nothing more to refer to.
        }
        _ => {}
    }
    out.into_iter().collect()
}

/// `text` with an instance's specifiers filled in: `%i` (the instance as
/// written), `%I` (unescaped: `-` is `/`), `%%` a percent sign. Others are
/// left as they are.
pub fn expand_instance(text: &str, instance: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i') => out.push_str(instance),
            Some('I') => out.push_str(&instance.replace('-', "/")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Hashes each resource after everything it refers to. References are
/// shallow (units and containers point at files, secrets, networks and
/// volumes; files derived from secrets point at secrets), so resources are
/// hashed by depth: those that refer to nothing, then files, then the rest.
fn hash_all(
    by_key: BTreeMap<ResourceKey, Declared>,
    mut refs: BTreeMap<ResourceKey, Vec<ResourceKey>>,
    mut blobs: BTreeMap<Digest, Arc<str>>,
    mut contexts: BTreeMap<Digest, Arc<BuildContext>>,
    facts: BTreeMap<String, Fact>,
) -> Graph {
    let mut hashes: BTreeMap<ResourceKey, Digest> = BTreeMap::new();
    let depth = |k: &ResourceKey| match refs.get(k) {
        None => 0,
        Some(r) if r.is_empty() => 0,
        Some(_) if k.kind == Kind::File => 1,
        // An instance refers to its template, which is hashed first.
        Some(_) if k.kind == Kind::Instance => 3,
        Some(_) => 2,
    };
    let mut ordered: Vec<_> = by_key.into_iter().collect();
    ordered.sort_by_key(|(k, _)| depth(k));
    let mut nodes = Vec::new();
    for (key, d) in ordered {
        let my_refs = refs.remove(&key).unwrap_or_default();
        let with_hashes = my_refs.iter().map(|r| (r.clone(), hashes[r])).collect();
        let hash = Digest::of(&ResourceRecord::new(d.resource.clone(), with_hashes).encode());
        hashes.insert(key.clone(), hash);
        nodes.push(Node {
            key,
            resource: d.resource,
            refs: my_refs,
            hash,
            at: d.at,
        });
    }
    nodes.sort_by(|a, b| a.key.cmp(&b.key));
    // Texts of files and contexts of containers that were made but left
    // out of the node are not part of the graph.
    let used: BTreeSet<Digest> = nodes
        .iter()
        .filter_map(|n| match &n.resource {
            Resource::File(f) => Some(f.content),
            _ => None,
        })
        .collect();
    blobs.retain(|d, _| used.contains(d));
    let built: BTreeSet<Digest> = nodes
        .iter()
        .filter_map(|n| match &n.resource {
            Resource::Container(c) => match &c.image {
                ImageSource::Build { tree, .. } => Some(*tree),
                ImageSource::Reference(_) => None,
            },
            _ => None,
        })
        .collect();
    contexts.retain(|d, _| built.contains(d));
    let record = GraphRecord::new(
        facts.clone(),
        nodes.iter().map(|n| (n.key.clone(), n.hash)).collect(),
    );
    Graph {
        root: Digest::of(&record.encode()),
        facts,
        nodes,
        blobs,
        contexts,
        sources: BTreeMap::new(),
    }
}
