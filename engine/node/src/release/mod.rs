//! What a publisher runs: a key pair that signs releases, and the signed
//! bundles `archy ota apply` installs. No node is involved.
//!
//! A release carries its node's software. `build` evaluates the release's
//! node.rhai as a node would (this machine's host facts, with `--fact`
//! overrides, and no secret rotations, which change secrets only; a node
//! that does not evaluate is refused, as it would be on every node), stores
//! every `artifact()` and `tree()` it declares exactly as a node's build
//! would (into a throwaway store: each checked against its declared hash,
//! URLs downloaded), and publishes each of those store objects as
//! `objects/<blake3>` beside the bundle, listed in its signed manifest with
//! its blake3, size and store name (an artifact's bytes; a tree's manifest
//! and each of its files). A node fetches only the ones its store lacks and
//! has them all before it builds, so the description inside the bundle
//! never needs the relative sources the bundle does not carry.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use archy_build::BuildError;
use archy_build::software::store_software;
use archy_eval::Inputs;
use archy_graph::Resource;
use archy_ota::publish::PackObject;
use archy_ota::{keys, pack};
use archy_store::{StateDir, Store};
use semver::Version;

use crate::{NodeError, evaluate, facts};

pub use archy_ota::pack::PackReport;

/// This archy's own version, which a release's minimum is compared with.
pub fn archy_version() -> Version {
    Version::parse(env!("CARGO_PKG_VERSION")).unwrap_or_else(|_| Version::new(0, 0, 0))
}

/// A key pair written by [`keygen`].
#[derive(Debug)]
pub struct KeyPair {
    pub key_id: String,
    pub secret: PathBuf,
    pub public: PathBuf,
}

/// Makes a key pair: `PREFIX.key` (secret, mode 0600) and `PREFIX.pub`.
/// Never replaces a file.
pub fn keygen(prefix: &Path) -> Result<KeyPair, NodeError> {
    let with = |ext: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    let (secret, public) = (with(".key"), with(".pub"));
    if let Some(p) = [&secret, &public].into_iter().find(|p| p.exists()) {
        return Err(NodeError::KeyExists(p.clone()));
    }
    let comment = format!(
        "archy release key {}",
        prefix.file_name().map_or_else(
            || "archy-release".into(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    let pair = keys::generate(&comment).map_err(NodeError::Keygen)?;
    // The secret key is created 0600 from its first byte, and never
    // replaces a file (create_new), so a racing writer cannot swap it.
    write_new(&secret, pair.secret.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public, pair.public.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&secret);
        return Err(e);
    }
    Ok(KeyPair {
        key_id: pair.key_id,
        secret,
        public,
    })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), NodeError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(NodeError::io("write", path))?;
    file.write_all(bytes)
        .map_err(NodeError::io("write", path))?;
    file.sync_all().map_err(NodeError::io("write", path))
}

/// What a release bundle is made of.
#[derive(Debug)]
pub struct ReleaseRequest<'a> {
    /// The folder holding node.rhai.
    pub src: &'a Path,
    /// The secret key's file.
    pub key: &'a Path,
    pub version: &'a Version,
    pub channel: &'a str,
    /// The oldest archy that may install it (default: this one).
    pub min_archy: Option<&'a Version>,
    pub out: &'a Path,
    /// `--fact K=V` overrides of this machine's facts, for evaluating the
    /// node to learn the software it declares.
    pub facts: &'a [String],
}

/// A signed bundle and the key that signed it.
#[derive(Debug)]
pub struct Built {
    pub report: PackReport,
    pub key_id: String,
}

/// Packs a node's sources into a signed bundle.
pub fn build(req: &ReleaseRequest<'_>) -> Result<Built, NodeError> {
    let channel = req.channel;
    if channel.is_empty()
        || !channel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(NodeError::BadChannel(channel.to_string()));
    }
    let key = keys::SigningKey::load(req.key).map_err(NodeError::SigningKey)?;
    let out_dir = match req.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let software = Software::gather(req.src, req.facts, &out_dir)?;
    let report = pack::build(&pack::PackRequest {
        src: req.src,
        key: &key,
        version: req.version.clone(),
        channel: channel.to_string(),
        min_archy: req.min_archy.cloned().unwrap_or_else(archy_version),
        out: req.out,
        objects: &software.objects,
    })
    .map_err(NodeError::Pack)?;
    Ok(Built {
        report,
        key_id: key.key_id(),
    })
}

/// The software of a release's node, in a throwaway store (removed on
/// drop) next to where the bundle goes.
struct Software {
    objects: Vec<PackObject>,
    _store: Option<tempfile::TempDir>,
}

impl Software {
    fn gather(src: &Path, overrides: &[String], out_dir: &Path) -> Result<Software, NodeError> {
        let node = src.join("node.rhai");
        let mut host = facts::discover(out_dir);
        facts::apply_overrides(&mut host, overrides)?;
        // No `archy` fact: the archy a node runs is the node's own
        // (archy::units()'s default binary is the one that applies the
        // release), so the bundle carries none unless the release names one.
        let inputs = Inputs {
            facts: host,
            rotations: Default::default(),
            deferred: Default::default(),
        };
        let evaluation = evaluate::evaluate_with(&node, inputs, &archy_eval::Limits::default())?;
        let graph = &evaluation.graph;
        let has_software = graph
            .nodes
            .iter()
            .any(|n| matches!(n.resource, Resource::Artifact(_) | Resource::Tree(_)));
        if !has_software {
            return Ok(Software {
                objects: Vec::new(),
                _store: None,
            });
        }
        // Beside the bundle: the objects are published from it, and on one
        // file system a copy is all it costs.
        let temp = tempfile::Builder::new()
            .prefix(".archy-release-store.")
            .tempdir_in(out_dir)
            .map_err(NodeError::io("create a temporary store in", out_dir))?;
        let store = Store::open(&StateDir::new(temp.path().join("state")))?;
        let origin = crate::software::origin(&node, &[]);
        let stored = store_software(&store, graph, &origin)
            .map_err(|e| NodeError::Build(BuildError::from(e)))?;
        let objects = stored
            .objects
            .iter()
            .map(|id| PackObject {
                name: id.name().as_str().to_string(),
                path: store.object_path(id),
            })
            .collect();
        Ok(Software {
            objects,
            _store: Some(temp),
        })
    }
}

pub mod repository;
