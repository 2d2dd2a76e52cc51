//! Format versions for the state dir's JSON records (the switch journal,
//! the release record, the ownership record, the rotations, generation
//! records), in one place.
//!
//! A record starts with a header, `"format": N, "written_by": "archy
//! X.Y.Z"`, followed by its own fields. archy updates itself over the air,
//! so a new archy meets records an older one wrote, and (after a rollback of
//! archy itself) an old archy meets a newer one's records:
//!
//! - a record without the header was written before records carried one:
//!   it is format [`FIRST_FORMAT`];
//! - a record of an older format than this archy writes is upgraded by the
//!   record's [`VersionedRecord::upgrade`];
//! - a record of a newer format is refused with [`NewerFormat`], which says
//!   which archy wrote it, rather than misread.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The format of a record written before records named their format.
pub const FIRST_FORMAT: u32 = 1;

/// Who writes records: this archy, as the header names it.
pub const WRITTEN_BY: &str = concat!("archy ", env!("CARGO_PKG_VERSION"));

/// The header's field names. A record has a header only when both are
/// there, a number and a string: a legacy rotations file (a map of secret
/// names to counts) may hold a secret called "format", never a string.
const FORMAT: &str = "format";
const WRITTEN_BY_FIELD: &str = "written_by";

/// A record of the state dir that names its format.
pub trait VersionedRecord: Serialize + DeserializeOwned {
    /// What the record is, for messages: "the switch journal".
    const WHAT: &'static str;
    /// The format this archy writes, and the newest it reads.
    const FORMAT: u32;

    /// The record from the fields of a record of the older `format`
    /// ([`FIRST_FORMAT`] for one without a header). By default the layout
    /// did not change and the fields are read as they are.
    fn upgrade(format: u32, fields: Value) -> Result<Self, serde_json::Error> {
        let _ = format;
        Self::deserialize(fields)
    }
}

/// A record written by a newer archy, in a format this one does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {} has format {format}, written by {written_by}; this archy ({WRITTEN_BY}) reads \
     formats up to {known}: run a newer archy (the record is left as it is)",
    path.display()
)]
pub struct NewerFormat {
    /// What the record is.
    pub what: &'static str,
    /// The record's path.
    pub path: PathBuf,
    /// The format it has.
    pub format: u32,
    /// The archy that wrote it, as its header says.
    pub written_by: String,
    /// The newest format this archy reads.
    pub known: u32,
}

/// Why a record could not be read. The records' own error
/// types turn these into their messages.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file exists but cannot be read.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The file is not JSON, or not this record.
    #[error("{0}")]
    Parse(#[source] serde_json::Error),
    /// A newer archy wrote it.
    #[error(transparent)]
    Newer(#[from] NewerFormat),
}

/// The header a record starts with.
#[derive(Deserialize)]
struct Header {
    format: u32,
    written_by: String,
}

/// A record with its header, as it is written.
#[derive(Serialize)]
struct Headed<'a, T> {
    format: u32,
    written_by: &'static str,
    #[serde(flatten)]
    record: &'a T,
}

/// Reads the record at `path` (the path is for the message only): its
/// format checked, an older one upgraded.
pub fn decode<T: VersionedRecord>(path: &Path, bytes: &[u8]) -> Result<T, RecordError> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(RecordError::Parse)?;
    let record = match value.as_object_mut().and_then(take_header) {
        Some(header) if header.format > T::FORMAT => {
            return Err(NewerFormat {
                what: T::WHAT,
                path: path.to_owned(),
                format: header.format,
                written_by: header.written_by,
                known: T::FORMAT,
            }
            .into());
        }
        Some(header) if header.format == T::FORMAT => T::deserialize(value),
        Some(header) => T::upgrade(header.format, value),
        // Read from the bytes, not the value, so that what is wrong with
        // an old record is said with its line and column, as before.
        None if T::FORMAT == FIRST_FORMAT => serde_json::from_slice(bytes),
        None => T::upgrade(FIRST_FORMAT, value),
    };
    record.map_err(RecordError::Parse)
}

/// Removes the header from `fields` and returns it, if there is one.
fn take_header(fields: &mut Map<String, Value>) -> Option<Header> {
    let header = Header::deserialize(&Value::Object(Map::from_iter(
        [FORMAT, WRITTEN_BY_FIELD]
            .into_iter()
            .filter_map(|name| Some((name.to_owned(), fields.get(name)?.clone()))),
    )))
    .ok()?;
    fields.remove(FORMAT);
    fields.remove(WRITTEN_BY_FIELD);
    Some(header)
}

/// `record` as it is written: pretty JSON, the header first, a final
/// newline.
pub fn encode<T: VersionedRecord>(record: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec_pretty(&Headed {
        format: T::FORMAT,
        written_by: WRITTEN_BY,
        record,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads the record at `path`; `None` when there is no file.
pub fn read<T: VersionedRecord>(path: &Path) -> Result<Option<T>, RecordError> {
    match fs::read(path) {
        Ok(bytes) => decode(path, &bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RecordError::Io(e)),
    }
}

/// Replaces the record at `path` atomically (see [`crate::replace_file`]),
/// created with `mode`. A record that cannot be encoded (which the
/// records' types rule out) is an `InvalidData` error.
pub fn write<T: VersionedRecord>(path: &Path, record: &T, mode: u32) -> io::Result<()> {
    let bytes = encode(record).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    crate::replace_file(path, &bytes, mode)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Counter {
        count: u32,
    }

    impl VersionedRecord for Counter {
        const WHAT: &'static str = "the counter";
        const FORMAT: u32 = 2;

        /// Format 1 called the field `n`.
        fn upgrade(_: u32, fields: Value) -> Result<Self, serde_json::Error> {
            let count = u32::deserialize(&fields["n"])?;
            Ok(Counter { count })
        }
    }

    fn at() -> &'static Path {
        Path::new("/state/counter.json")
    }

    #[test]
    fn a_written_record_names_its_format_and_reads_back() {
        let bytes = encode(&Counter { count: 3 }).expect("encode");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(
            text.starts_with(&format!(
                "{{\n  \"format\": 2,\n  \"written_by\": \"{WRITTEN_BY}\",\n  \"count\": 3"
            )),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        assert_eq!(
            decode::<Counter>(at(), &bytes).expect("decode"),
            Counter { count: 3 }
        );
    }

    #[test]
    fn a_record_without_a_header_is_the_first_format_and_is_upgraded() {
        let counter: Counter = decode(at(), br#"{"n": 5}"#).expect("decode");
        assert_eq!(counter, Counter { count: 5 });
        let counter: Counter = decode(
            at(),
            br#"{"format": 1, "written_by": "archy 0.0.1", "n": 6}"#,
        )
        .expect("v1");
        assert_eq!(counter, Counter { count: 6 });
    }

    #[test]
    fn a_newer_format_is_refused_naming_its_writer() {
        let bytes = br#"{"format": 3, "written_by": "archy 9.1.0", "count": 1, "more": true}"#;
        let err = decode::<Counter>(at(), bytes).expect_err("newer");
        let RecordError::Newer(newer) = &err else {
            panic!("{err:?}")
        };
        assert_eq!((newer.format, newer.known), (3, 2));
        let message = err.to_string();
        assert!(
            message.starts_with(
                "the counter /state/counter.json has format 3, written by archy 9.1.0; this archy"
            ),
            "{message}"
        );
        assert!(message.contains("run a newer archy"), "{message}");
    }

    /// A map of names to numbers, like a legacy rotations file.
    impl VersionedRecord for BTreeMap<String, u32> {
        const WHAT: &'static str = "the map";
        const FORMAT: u32 = 1;
    }

    #[test]
    fn a_map_record_may_hold_a_key_called_format() {
        // A legacy rotations file with a secret named "format".
        let map: BTreeMap<String, u32> =
            decode(at(), br#"{"format": 7, "written_by": 2}"#).expect("decode");
        assert_eq!(map.get("format"), Some(&7));
        assert_eq!(map.get("written_by"), Some(&2));
    }

    #[test]
    fn damaged_and_missing_records() {
        let err = decode::<Counter>(at(), b"{ half").expect_err("damaged");
        assert!(matches!(err, RecordError::Parse(_)), "{err:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("counter.json");
        assert_eq!(read::<Counter>(&path).expect("missing"), None);
        write(&path, &Counter { count: 9 }, 0o600).expect("write");
        assert_eq!(
            read::<Counter>(&path).expect("read"),
            Some(Counter { count: 9 })
        );
    }
}
