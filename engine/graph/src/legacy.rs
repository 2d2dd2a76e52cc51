//! Reading the resources of generations an older archy built.
//!
//! A hash covers a resource's canonical encoding, so a field added to a
//! resource changes the encoding and its domain string
//! ([`ResourceRecord::current_domain`]). Generations built before are still
//! on the node, and the node runs one of them: without them `archy switch`
//! could not plan from the live generation and `archy rollback` could not
//! go back. So each older encoding is read here into today's types (the
//! fields it lacked take the value that means what the older archy did),
//! and the loader hashes the upgraded graph again with today's encoding,
//! so that an unchanged resource compares equal to a fresh evaluation of
//! it and nothing restarts because archy was upgraded.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Digest;
use crate::encode::{DecodeError, ResourceRecord};
use crate::names::{AbsPath, PodmanName, SecretName, UnitName};
use crate::quantity::{Bytes, MilliCpus, Millis};
use crate::resource::{
    self, DirSpec, FileSpec, GroupSpec, HealthSpec, ImageSource, Mount, NetworkMode, NetworkSpec,
    OnChange, PortMap, ResourceKey, SecretSpec, Tmpfs, UnitSection, UserSpec, VolumeSpec,
};

/// The domain string of the encoding before issue 15's fields.
pub const V4: &str = "archy.resource.v4";

/// A record of encoding `V4`, read into today's types. `None` when
/// `domain` is not an encoding this archy can upgrade.
pub fn upgrade(domain: &str, bytes: &[u8]) -> Option<Result<ResourceRecord, DecodeError>> {
    (domain == V4).then(|| {
        postcard::from_bytes::<v4::Record>(bytes)
            .map(|old| ResourceRecord::new(old.resource.into(), old.refs))
            .map_err(|source| DecodeError::new("resource (archy.resource.v4)", source))
    })
}

/// The shapes of encoding v4, field for field, where they differ from
/// today's; the rest are today's types, unchanged since.
mod v4 {
    use super::*;

    #[derive(Debug, Deserialize)]
    pub struct Record {
        #[allow(dead_code)] // read to reach the fields after it
        pub domain: String,
        pub resource: Resource,
        pub refs: Vec<(ResourceKey, Digest)>,
    }

    #[derive(Debug, Deserialize)]
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
    }

    #[derive(Debug, Deserialize)]
    pub struct UnitSpec {
        pub name: UnitName,
        pub sections: Vec<UnitSection>,
        pub on_change: OnChange,
        pub reads: Vec<AbsPath>,
        pub secrets: Vec<SecretName>,
    }

    #[derive(Debug, Deserialize)]
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
        pub derived_env: BTreeMap<String, String>,
        pub secret_env: BTreeMap<String, SecretName>,
        pub user: Option<String>,
        pub memory: Option<Bytes>,
        pub cpus: Option<MilliCpus>,
        pub on_change: OnChange,
        pub requires: Vec<PodmanName>,
        pub data_uid: Option<u32>,
        pub data_gid: Option<u32>,
        pub podman_args: Vec<String>,
        pub stop_timeout: Option<Millis>,
    }

    impl From<Resource> for resource::Resource {
        fn from(r: Resource) -> Self {
            use resource::Resource as Now;
            match r {
                Resource::File(x) => Now::File(x),
                Resource::Dir(x) => Now::Dir(x),
                Resource::User(x) => Now::User(x),
                Resource::Group(x) => Now::Group(x),
                Resource::Unit(u) => Now::Unit(resource::UnitSpec {
                    name: u.name,
                    sections: u.sections,
                    on_change: u.on_change,
                    reads: u.reads,
                    secrets: u.secrets,
                    // v4 had no reload triggers: every read restarted.
                    reload_triggers: Vec::new(),
                    // As a fresh evaluation has it (the default gate).
                    health: true,
                }),
                Resource::Container(c) => Now::Container(Box::new(resource::ContainerSpec {
                    name: c.name,
                    image: c.image,
                    entrypoint: c.entrypoint,
                    exec: c.exec,
                    network: c.network,
                    ports: c.ports,
                    volumes: c.volumes,
                    tmpfs: c.tmpfs,
                    env: c.env,
                    derived_env: c.derived_env,
                    secret_env: c.secret_env,
                    user: c.user,
                    memory: c.memory,
                    cpus: c.cpus,
                    on_change: c.on_change,
                    requires: c.requires,
                    data_uid: c.data_uid,
                    data_gid: c.data_gid,
                    podman_args: c.podman_args,
                    stop_timeout: c.stop_timeout,
                    health: true,
                })),
                Resource::Network(x) => Now::Network(x),
                Resource::Volume(x) => Now::Volume(x),
                Resource::Secret(x) => Now::Secret(x),
                Resource::Health(x) => Now::Health(x),
            }
        }
    }
}
