//! Plans written by an older archy, read by this one: the one place that
//! knows their shape. A switch journal (`<state>/switch.json`) embeds the
//! plan of the switch in flight, so an archy updated while a switch was
//! interrupted must still recover it.
//!
//! Before plans carried each unit file with its unit ([`UnitFile`]),
//! `unit_files_changed` was a list of paths. Such a path is mapped back to
//! its unit here, and only here, by the naming `archy-graph` owns: a file
//! in `/etc/systemd/system` is named as its unit; a Quadlet file
//! `NAME.container`, `.network` or `.volume` makes the unit of the podman
//! resource `NAME` of that kind.

use archy_graph::graph::generated_unit;
use archy_graph::names::UnitName;
use archy_graph::{Kind, ResourceKey};
use archy_units::UnitFile;
use archy_units::quadlet::QUADLET_DIR;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// One entry of `unit_files_changed`, in either shape.
#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Current(UnitFile),
    /// An older archy's: the path alone.
    Path(String),
}

/// `unit_files_changed` as this archy writes it, or as an older one did.
pub(crate) fn unit_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UnitFile>, D::Error> {
    Vec::<Entry>::deserialize(d)?
        .into_iter()
        .map(|entry| match entry {
            Entry::Current(file) => Ok(file),
            Entry::Path(path) => unit_file_at(&path).ok_or_else(|| {
                D::Error::custom(format!(
                    "{path:?} is not the path of a unit or Quadlet file"
                ))
            }),
        })
        .collect()
}

/// The unit file at `path`, an older plan's entry.
fn unit_file_at(path: &str) -> Option<UnitFile> {
    let (dir, file) = path.rsplit_once('/')?;
    let unit = if dir == QUADLET_DIR {
        let (name, suffix) = file.rsplit_once('.')?;
        let kind = match suffix {
            "container" => Kind::Container,
            "network" => Kind::Network,
            "volume" => Kind::Volume,
            _ => return None,
        };
        generated_unit(&ResourceKey {
            kind,
            id: name.to_string(),
        })?
    } else {
        UnitName::try_from(file).ok()?
    };
    Some(UnitFile {
        unit,
        path: path.to_string(),
    })
}
