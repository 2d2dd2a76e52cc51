//! Secrets imported from a node archy did not make: the old first-boot
//! script kept its values (the RPC password, lnd's wallet password) in
//! files of its own, and a value that leaves the node (a wallet password)
//! must survive the move. The node description maps secrets to those files
//! (`secret(NAME, #{ import: PATH })` or `archy::secret_imports(#{ NAME:
//! PATH })`, which write [`IMPORTS_PATH`]); read from the generation's
//! graph, never the disk, so the mapping is part of the generation's hash.
//!
//! A secret whose value archy does not have yet is then taken from its file
//! instead of being generated; the file is left where it was. Values never
//! reach a log or an error.

use std::collections::BTreeMap;
use std::path::Path;

use archy_graph::{Graph, Resource};

/// Where the node description's secret imports are written.
pub const IMPORTS_PATH: &str = archy_graph::SECRET_IMPORTS_PATH;

/// The secrets `graph` imports: name to the path of the old file.
pub fn declared(graph: &Graph) -> BTreeMap<String, String> {
    graph
        .nodes
        .iter()
        .find_map(|n| match &n.resource {
            Resource::File(f) if f.path.as_str() == IMPORTS_PATH => graph.blobs.get(&f.content),
            _ => None,
        })
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// Why an import's file cannot give a value (a phrase), or `None` when it
/// can.
pub fn unusable(host_path: &Path) -> Option<String> {
    match std::fs::metadata(host_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("it does not exist".into()),
        Err(e) => Some(format!("it cannot be read ({})", e.kind())),
        Ok(m) if !m.is_file() => Some("it is not a file".into()),
        Ok(m) if m.len() == 0 => Some("it is empty".into()),
        Ok(_) => None,
    }
}

/// The value in `host_path`, without the line end a shell's `echo` adds
/// (archy's own values have none, and every file derived from the secret
/// puts it in a line). Empty (once the line end is gone) is refused.
pub(crate) fn read(host_path: &Path) -> std::io::Result<Vec<u8>> {
    let mut value = std::fs::read(host_path)?;
    while value.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        value.pop();
    }
    if value.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file holds no value",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_read_without_its_line_end_and_empty_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "hunter2\n").unwrap();
        assert_eq!(read(&file).unwrap(), b"hunter2");
        assert_eq!(unusable(&file), None);
        std::fs::write(&file, "\n").unwrap();
        assert!(read(&file).is_err());
        std::fs::write(&file, "").unwrap();
        assert_eq!(unusable(&file).as_deref(), Some("it is empty"));
        assert_eq!(
            unusable(&dir.path().join("none")).as_deref(),
            Some("it does not exist")
        );
        assert_eq!(unusable(dir.path()).as_deref(), Some("it is not a file"));
    }
}
