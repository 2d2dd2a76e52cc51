//! A release's software on the node: which objects of its signed manifest
//! the store lacks, and fetching them from beside the bundle (the folder of
//! a bundle file, or the folders of the bundle's URLs) before the build,
//! which then finds every artifact and tree in the store.

use std::io::IsTerminal as _;
use std::time::Duration;

use archy_ota::OtaError;
use archy_ota::download::FetchOptions;
use archy_ota::manifest::Manifest;
use archy_ota::objects::{self, Fetched, Needed, ObjectSource};

use super::obtain::{Bundle, BundleSource};
use crate::Session;

/// Where the objects of `bundle` are: beside the copy that served it
/// first, then beside the other URLs of the source.
pub(crate) fn source_of(bundle: &Bundle, source: &BundleSource) -> ObjectSource {
    let others: Vec<String> = std::iter::once(source.bundle.clone())
        .chain(source.mirrors.iter().cloned())
        .collect();
    ObjectSource::of_bundle(&bundle.from, &others)
}

impl Session<'_> {
    /// The objects of `manifest` this node's store lacks.
    pub(crate) fn software_needed(&self, manifest: &Manifest) -> Result<Needed, OtaError> {
        objects::needed(&self.store, manifest)
    }

    /// Fetches what [`Session::software_needed`] found into the store.
    pub(crate) fn fetch_software(
        &self,
        needed: &Needed,
        from: &ObjectSource,
    ) -> Result<Fetched, OtaError> {
        let downloads = self.state_dir().ota_downloads().join("objects");
        objects::fetch(
            &self.store,
            needed,
            from,
            &downloads,
            &FetchOptions {
                progress: std::io::stderr().is_terminal(),
                // Each object's own size, from the manifest, bounds it.
                max_bytes: u64::MAX,
                timeout: Duration::from_secs(60),
            },
        )
    }
}
