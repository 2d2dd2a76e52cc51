//! The typed resources a node description evaluates to, one per constructor
//! of the node-author vocabulary.
//!
//! These structs are what gets hashed: their canonical encoding is postcard
//! (a specified, stable binary format) over the fields in declaration order,
//! with every map a `BTreeMap`. Reordering or retyping a field changes every
//! hash; `encode::tests::pinned_digest` fails when that happens by accident.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::names::{AbsPath, AccountName, Mode, PodmanName, SecretName, UnitName};
use crate::quantity::{Bytes, MilliCpus, Millis};

/// A file with exactly this content. The text itself lives in the graph's
/// blob table under `content`, so large texts are hashed once and stored once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    pub path: AbsPath,
    pub content: Digest,
    pub size: u64,
    pub mode: Mode,
    pub owner: Option<AccountName>,
    pub group: Option<AccountName>,
    /// Secrets the text's `{{secret.NAME}}` placeholders are filled from
    /// at activation (see [`crate::derive`]); the store keeps the template.
    pub derives: Vec<SecretName>,
}

/// A directory. A switch never deletes one that leaves the description
/// unless it is `disposable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirSpec {
    pub path: AbsPath,
    pub mode: Mode,
    pub owner: Option<AccountName>,
    pub group: Option<AccountName>,
    pub disposable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    pub name: AccountName,
    pub uid: Option<u32>,
    /// The primary group.
    pub group: Option<AccountName>,
    /// Supplementary groups, in the order written, each once. archy adds
    /// the user to them and never takes it out of a group.
    pub groups: Vec<AccountName>,
    pub home: Option<AbsPath>,
    pub system: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub name: AccountName,
    pub gid: Option<u32>,
}

/// What a switch does to a unit whose content (or anything it reads) changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnChange {
    Restart,
    Reload,
    /// Leave it running; the change takes effect at its next start.
    Keep,
    /// Stop it with its old definition before the new files are written,
    /// then start it with the new one, so that the old `ExecStop=` runs
    /// (NixOS's `stopIfChanged`).
    StopStart,
}

/// One `[Section]` of a unit file: keys in a fixed order, a key repeated for
/// each value of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitSection {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitSpec {
    pub name: UnitName,
    /// In systemd's order: `[Unit]`, the type's own section, `[Install]`.
    pub sections: Vec<UnitSection>,
    pub on_change: OnChange,
    /// Paths the author declared this unit reads, beyond those its text
    /// mentions (which are found by themselves).
    pub reads: Vec<AbsPath>,
    /// Secrets the unit reads at run time.
    pub secrets: Vec<SecretName>,
    /// Of `reads`, the paths whose change reloads the unit instead of
    /// restarting it (NixOS's `X-Reload-Triggers`): declared as
    /// `reads: [#{ path, on_change: "reload" }]`.
    pub reload_triggers: Vec<AbsPath>,
    /// Whether the switch fails when the unit is failed or restarting
    /// after its jobs (the default failed-unit gate); `health: false`
    /// opts out.
    pub health: bool,
}

/// A running instance of a template unit declared in the node
/// (`arch-bitcoind@testnet.service` of `arch-bitcoind@.service`). It has
/// no file of its own: systemd makes it from the template, and archy
/// enables it (the template's `[Install]` links, named for the instance)
/// and starts it. It refers to the template, so a changed template
/// changes every instance's hash; its own `reads` change only its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// The template, `name@.type`.
    pub template: UnitName,
    /// What goes between `@` and `.` (already valid for a unit name).
    pub instance: String,
    /// `None`: as the template says.
    pub on_change: Option<OnChange>,
    pub reads: Vec<AbsPath>,
    pub secrets: Vec<SecretName>,
    /// Whether the switch's failed-unit gate watches it.
    pub health: bool,
}

impl InstanceSpec {
    /// The instance's unit name: `name@instance.type`.
    pub fn unit(&self) -> String {
        self.template
            .as_str()
            .replacen("@.", &format!("@{}.", self.instance), 1)
    }
}

/// A drop-in for a unit, archy's or not: `/etc/systemd/system/UNIT.d/NAME.conf`.
/// archy writes only this file, never the unit's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropinSpec {
    pub unit: UnitName,
    /// The file's name without `.conf`.
    pub name: String,
    pub sections: Vec<UnitSection>,
    pub on_change: OnChange,
    pub reads: Vec<AbsPath>,
    pub secrets: Vec<SecretName>,
}

impl DropinSpec {
    /// Where the drop-in lives.
    pub fn path(&self) -> String {
        format!("/etc/systemd/system/{}.d/{}.conf", self.unit, self.name)
    }
}

/// Where a container's image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageSource {
    /// Pulled by reference: `name:tag`, or `name@sha256:...` when the
    /// description pins a digest (the tag beside a digest is dropped, so
    /// only the digest is hashed).
    Reference(String),
    /// Built from a folder of the node's sources, named by the hash of its
    /// files so an unchanged context is never rebuilt.
    Build { context: String, tree: Digest },
}

impl ImageSource {
    /// The reference podman runs: the author's reference, or for a built
    /// image a local tag named by its context's tree hash, so an unchanged
    /// context is never built again.
    pub fn reference(&self) -> String {
        match self {
            ImageSource::Reference(r) => r.clone(),
            ImageSource::Build { context, tree } => {
                let repo: String = context
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '-'
                        }
                    })
                    .collect();
                format!("localhost/archy/{}:{tree}", repo.trim_matches('-'))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// podman's default bridge.
    Default,
    Host,
    None,
    Named(PodmanName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// `[host_ip:]host_port:container_port[/proto]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountSource {
    Bind(AbsPath),
    Volume(PodmanName),
}

/// `source:target[:options]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: MountSource,
    pub target: AbsPath,
    pub options: Vec<String>,
}

/// `target[:options]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub target: AbsPath,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: PodmanName,
    pub image: ImageSource,
    pub entrypoint: Option<Vec<String>>,
    pub exec: Vec<String>,
    pub network: NetworkMode,
    pub ports: Vec<PortMap>,
    pub volumes: Vec<Mount>,
    pub tmpfs: Vec<Tmpfs>,
    pub env: BTreeMap<String, String>,
    /// Templates over host facts, already resolved by the evaluator.
    pub derived_env: BTreeMap<String, String>,
    /// Variable name to secret name: values are read on the node at
    /// activation and never enter the graph.
    pub secret_env: BTreeMap<String, SecretName>,
    pub user: Option<String>,
    pub memory: Option<Bytes>,
    pub cpus: Option<MilliCpus>,
    pub on_change: OnChange,
    /// Containers this one needs running first; systemd starts them before
    /// it and restarts it when they restart.
    pub requires: Vec<PodmanName>,
    /// The uid (and gid) the container writes its data as: its writable
    /// bind-mounted folders are handed to them before each start.
    pub data_uid: Option<u32>,
    pub data_gid: Option<u32>,
    /// Extra `podman run` arguments, for what no option covers.
    pub podman_args: Vec<String>,
    /// How long the container gets to stop on its own before it is
    /// killed (podman's default is 10 s; bitcoind flushing its cache needs
    /// minutes).
    pub stop_timeout: Option<Millis>,
    /// Whether the switch fails when the container's service is failed or
    /// restarting after its jobs; `health: false` opts out.
    pub health: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: PodmanName,
    pub internal: bool,
    pub subnet: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: PodmanName,
}

/// A secret generated on the node. The graph holds this reference, never a
/// value; bumping `version` makes the next switch regenerate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSpec {
    pub name: SecretName,
    pub length: u32,
    pub owner: Option<AccountName>,
    pub group: Option<AccountName>,
    pub mode: Mode,
    pub version: u32,
    /// Whether a new value may be made when the value on disk is lost:
    /// true when everything that uses it derives from it on the node (an
    /// RPC password whose `rpcauth=` line and clients' configs are written
    /// from it), false when the value itself matters beyond the node (a
    /// wallet's password). A lost secret that is not regenerable is
    /// reported and left for the operator to restore or rotate.
    pub regenerate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthProbe {
    /// The unit is active and not restart-looping.
    Unit(UnitName),
    Http {
        url: String,
        expect: u16,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Cmd(Vec<String>),
    /// The archy binary at this path runs and reads the new generation
    /// (`--version`, then `status --generation N`): the gate of a
    /// generation that brings a new archy. Appended, so earlier probes keep
    /// their encoding.
    Archy(AbsPath),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    pub probe: HealthProbe,
    pub within: Millis,
}

/// The hash software is declared by: blake3 (the store's own digest) or
/// sha256 (what upstream projects publish in their `SHA256SUMS`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentHash {
    Blake3(Digest),
    /// 64 lowercase hex digits, checked by the evaluator.
    Sha256(String),
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentHash::Blake3(d) => write!(f, "blake3:{d}"),
            ContentHash::Sha256(h) => write!(f, "sha256:{h}"),
        }
    }
}

/// How an artifact reaches its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// A symlink into the store, switched by one rename: the object is
    /// root's and read-only (0444, or 0555 for a program).
    Link,
    /// A copy placed by rename: for what a symlink cannot be (a program
    /// with its own owner or mode, one that resolves its own path, a file
    /// whose inode must carry attributes such as file capabilities).
    Copy,
}

/// One file of software by its hash: a binary, a script, a tarball
/// (`artifact(path, #{ source, blake3 })`). Where the bytes come from is
/// not part of the hash (the graph's `sources` says): the same bytes from
/// another mirror are the same software and restart nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSpec {
    pub path: AbsPath,
    pub hash: ContentHash,
    pub mode: Mode,
    pub owner: Option<AccountName>,
    pub group: Option<AccountName>,
    pub place: Placement,
}

impl ArtifactSpec {
    /// Whether the file is a program (any execute bit).
    pub fn executable(&self) -> bool {
        self.mode.bits() & 0o111 != 0
    }

    /// The name its bytes are stored under: the file's name, the sha256
    /// it was declared by (so it can be found again by that), and `+x`
    /// for a program (stored runnable, 0555), so that the same bytes as a
    /// program and as data are two objects with the right mode each.
    pub fn object_name(&self) -> String {
        let base = clean_object_name(self.path.file_name());
        let sha = match &self.hash {
            ContentHash::Sha256(h) => format!(".sha256-{h}"),
            ContentHash::Blake3(_) => String::new(),
        };
        software_object_name(&format!("{base}{sha}"), self.executable())
    }
}

/// The name a file of software (an artifact's, or one of a tree's) is
/// stored under: `base`, with `+x` for a program. Never empty.
pub fn software_object_name(base: &str, executable: bool) -> String {
    let base = if base.is_empty() { "file" } else { base };
    if executable {
        format!("{base}+x")
    } else {
        base.to_string()
    }
}

/// The name every tree manifest is stored under, so that a tree is found
/// from its hash alone.
pub const TREE_OBJECT_NAME: &str = "tree";

/// A directory tree of software (a web UI's files) by the blake3 of its
/// normalized manifest (`tree(path, #{ source, blake3 })`): `path` becomes
/// a symlink to the tree in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSpec {
    pub path: AbsPath,
    pub manifest: Digest,
}

/// Every kind of resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    File(FileSpec),
    Dir(DirSpec),
    User(UserSpec),
    Group(GroupSpec),
    Unit(UnitSpec),
    Container(Box<ContainerSpec>),
    Network(NetworkSpec),
    Volume(VolumeSpec),
    Secret(SecretSpec),
    Health(HealthSpec),
    Instance(InstanceSpec),
    Dropin(DropinSpec),
    // Appended: postcard encodes a variant by its index, so the kinds
    // before keep their encoding (and every existing hash).
    Artifact(ArtifactSpec),
    Tree(TreeSpec),
    App(crate::app::AppSpec),
    Data(crate::data::DataSpec),
}

/// The kinds, in the order the graph lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Group,
    User,
    Dir,
    File,
    Secret,
    Network,
    Volume,
    Unit,
    Container,
    Health,
    Instance,
    Dropin,
    Artifact,
    Tree,
    App,
    Data,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Group,
        Kind::User,
        Kind::Dir,
        Kind::File,
        Kind::Secret,
        Kind::Network,
        Kind::Volume,
        Kind::Unit,
        Kind::Container,
        Kind::Health,
        Kind::Instance,
        Kind::Dropin,
        Kind::Artifact,
        Kind::Tree,
        Kind::App,
        Kind::Data,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Group => "group",
            Kind::User => "user",
            Kind::Dir => "dir",
            Kind::File => "file",
            Kind::Secret => "secret",
            Kind::Network => "network",
            Kind::Volume => "volume",
            Kind::Unit => "unit",
            Kind::Container => "container",
            Kind::Health => "health",
            Kind::Instance => "instance",
            Kind::Dropin => "dropin",
            Kind::Artifact => "artifact",
            Kind::Tree => "tree",
            Kind::App => "app",
            Kind::Data => "data",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource's identity in the graph: its kind and its id (a path or a
/// name). Two resources with the same key are an error.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    pub kind: Kind,
    pub id: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

impl HealthProbe {
    /// A stable id that says what is checked.
    pub fn id(&self) -> String {
        match self {
            HealthProbe::Unit(u) => format!("unit:{u}"),
            HealthProbe::Http { url, .. } => format!("http:{url}"),
            HealthProbe::Tcp { host, port } => format!("tcp:{host}:{port}"),
            HealthProbe::Cmd(argv) => format!("cmd:{}", argv.join(" ")),
            HealthProbe::Archy(path) => format!("archy:{path}"),
        }
    }
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::File(_) => Kind::File,
            Resource::Dir(_) => Kind::Dir,
            Resource::User(_) => Kind::User,
            Resource::Group(_) => Kind::Group,
            Resource::Unit(_) => Kind::Unit,
            Resource::Container(_) => Kind::Container,
            Resource::Network(_) => Kind::Network,
            Resource::Volume(_) => Kind::Volume,
            Resource::Secret(_) => Kind::Secret,
            Resource::Health(_) => Kind::Health,
            Resource::Instance(_) => Kind::Instance,
            Resource::Dropin(_) => Kind::Dropin,
            Resource::Artifact(_) => Kind::Artifact,
            Resource::Tree(_) => Kind::Tree,
            Resource::App(_) => Kind::App,
            Resource::Data(_) => Kind::Data,
        }
    }

    pub fn id(&self) -> String {
        match self {
            Resource::File(f) => f.path.to_string(),
            Resource::Dir(d) => d.path.to_string(),
            Resource::User(u) => u.name.to_string(),
            Resource::Group(g) => g.name.to_string(),
            Resource::Unit(u) => u.name.to_string(),
            Resource::Container(c) => c.name.to_string(),
            Resource::Network(n) => n.name.to_string(),
            Resource::Volume(v) => v.name.to_string(),
            Resource::Secret(s) => s.name.to_string(),
            Resource::Health(h) => h.probe.id(),
            Resource::Instance(i) => i.unit(),
            Resource::Dropin(d) => d.path(),
            Resource::Artifact(a) => a.path.to_string(),
            Resource::Tree(t) => t.path.to_string(),
            Resource::App(a) => a.name.to_string(),
            Resource::Data(d) => d.name.to_string(),
        }
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            kind: self.kind(),
            id: self.id(),
        }
    }

    /// A file-name-safe name for this resource's store object.
    pub fn object_name(&self) -> String {
        let raw = match self {
            Resource::File(f) => f.path.file_name().to_string(),
            Resource::Dir(d) => format!("{}.dir", d.path.file_name()),
            Resource::Health(h) => match &h.probe {
                HealthProbe::Unit(u) => format!("health-{u}"),
                _ => "health".to_string(),
            },
            Resource::Dropin(d) => format!("{}.d-{}.dropin", d.unit, d.name),
            Resource::Artifact(a) => format!("{}.artifact", a.path.file_name()),
            Resource::Tree(t) => format!("{}.tree-resource", t.path.file_name()),
            other => format!("{}.{}", other.id(), other.kind()),
        };
        clean_object_name(&raw)
    }
}

/// `raw` made safe as a store object's name: characters the store refuses
/// become `_`, at most 100 of them, no leading `.` (which would look like
/// a store temp file).
pub fn clean_object_name(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+@=-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    clean.trim_start_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_images_are_tagged_by_their_tree() {
        let tree = Digest::of(b"x");
        let image = ImageSource::Build {
            context: "apps/Bitcoin_UI".into(),
            tree,
        };
        assert_eq!(
            image.reference(),
            format!("localhost/archy/apps-bitcoin-ui:{tree}")
        );
    }
}
