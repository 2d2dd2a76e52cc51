//! Every way a release bundle can fail. Each message says what went wrong,
//! where (a path, a URL, an entry of the bundle) and what to do about it,
//! because the reader is an operator looking at a node's log. No message
//! carries file contents or key material.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OtaError {
    /// A filesystem operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The system's random source failed while making a key.
    #[error(
        "could not generate a signing key: {reason}; check that the system's random source works"
    )]
    KeyGen { reason: String },

    /// A secret key file is not one archy can sign with.
    #[error(
        "{} is not a usable minisign secret key: {reason}; create one with `archy release keygen` (or `minisign -G -W`)",
        path.display()
    )]
    SecretKey { path: PathBuf, reason: String },

    /// A public key line could not be read.
    #[error(
        "{origin} is not a minisign public key: {reason}; copy the second line of the publisher's .pub file there"
    )]
    PublicKey { origin: String, reason: String },

    /// The node has no keys to check releases against.
    #[error(
        "no trusted release keys in {}: {reason}; put the release public key (the publisher's minisign .pub file) there",
        dir.display()
    )]
    NoTrustedKeys { dir: PathBuf, reason: String },

    /// The `.minisig` text cannot even be parsed.
    #[error(
        "the signature for {} is not a minisign signature: {reason}; download the .minisig file again",
        bundle.display()
    )]
    MalformedSignature { bundle: PathBuf, reason: String },

    /// The signature is made by a key the node does not trust.
    #[error(
        "the bundle is signed by key {key_id}, which this node does not trust (trusted: {}): add its public key to the node's trusted keys if you trust the publisher",
        list_or_none(trusted)
    )]
    UnknownKey {
        key_id: String,
        trusted: Vec<String>,
    },

    /// The signature does not verify and the file has a different length
    /// from the one the signature announces: most likely a cut download.
    #[error("{}", length_message(path, *got, *expected))]
    Truncated {
        path: PathBuf,
        got: u64,
        expected: u64,
    },

    /// The signature does not verify.
    #[error(
        "the signature of {} by key {key_id} does not match the file: it was altered or the signature belongs to another file; download both again",
        path.display()
    )]
    BadSignature { path: PathBuf, key_id: String },

    /// A trusted comment (or release details given to `pack`) is not the
    /// `archy-release ...` line this crate writes.
    #[error("the release details {comment:?} are not valid: {reason}")]
    ReleaseInfo { comment: String, reason: String },

    /// The signature verifies, yet the file does not match the size or
    /// hash the signature vouches for.
    #[error(
        "{} does not match its signed release details: {what}; download it again",
        path.display()
    )]
    SignedMismatch { path: PathBuf, what: String },

    /// A request to `pack` or `keygen` that cannot be honoured.
    #[error("{reason}")]
    InvalidRequest { reason: String },

    /// Something in a node source folder that a bundle cannot carry.
    #[error("cannot pack {}: {reason}", path.display())]
    InvalidSource { path: PathBuf, reason: String },

    /// The unpack destination is already there.
    #[error(
        "cannot unpack into {}: it already exists; unpack into a fresh path",
        path.display()
    )]
    DestExists { path: PathBuf },

    /// The bundle's manifest is missing, misplaced or invalid.
    #[error(
        "the bundle's manifest is not valid: {reason}; this is not an archy release bundle, do not install it"
    )]
    Manifest { reason: String },

    /// An entry of the bundle that would extract wrongly or unsafely.
    #[error(
        "the bundle's entry {} {}; the bundle is not safe to install, do not install it",
        shown(entry),
        crate::tuf::meta::cut(reason, MAX_SHOWN)
    )]
    UnsafeEntry { entry: String, reason: String },

    /// A file in the bundle that the manifest does not list.
    #[error(
        "the bundle's entry {} is not listed in its manifest; the bundle is not consistent, do not install it",
        shown(entry)
    )]
    NotInManifest { entry: String },

    /// A file whose content differs from what the manifest says.
    #[error(
        "the bundle's file {} {}; the bundle is not consistent, do not install it",
        shown(entry),
        crate::tuf::meta::cut(reason, MAX_SHOWN)
    )]
    ContentMismatch { entry: String, reason: String },

    /// Files the manifest lists that the bundle does not carry.
    #[error("the bundle lacks files its manifest lists: {}; the bundle is not consistent, do not install it", crate::tuf::meta::cut(&missing.join(", "), MAX_SHOWN))]
    MissingFiles { missing: Vec<String> },

    /// A size or count limit was hit (while packing or unpacking).
    #[error("{what} exceeds the limit of {limit}; {hint}")]
    TooLarge {
        what: String,
        limit: u64,
        hint: String,
    },

    /// The tarball itself could not be read (bad gzip, bad tar header).
    #[error("{} is not a readable release bundle: {reason}; download it again", path.display())]
    Corrupt { path: PathBuf, reason: String },

    /// A software object the release lists could not be put into the
    /// store: no source had it, or every copy had other bytes.
    #[error(
        "the release's software object {name} (blake3 {blake3}) could not be fetched ({}); nothing was switched: publish objects/{blake3} beside the bundle on its mirrors, then apply again",
        attempts.iter().map(|(from, why)| format!("{from}: {why}")).collect::<Vec<_>>().join("; ")
    )]
    Object {
        name: String,
        blake3: String,
        attempts: Vec<(String, String)>,
    },

    /// Every source failed; each attempt says why.
    #[error("{}", download_message(attempts))]
    Download { attempts: Vec<(String, String)> },
}

impl OtaError {
    /// Shorthand for the common [`OtaError::Io`] case.
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        OtaError::Io {
            action: action.into(),
            path: path.into(),
            source,
        }
    }
}

fn list_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_string()
    } else {
        ids.join(", ")
    }
}

fn length_message(path: &std::path::Path, got: u64, expected: u64) -> String {
    if got < expected {
        format!(
            "{} looks truncated (got {got} of {expected} bytes): the download was cut short; download it again",
            path.display()
        )
    } else {
        format!(
            "{} has {got} bytes but the signed release has {expected}: the download looks corrupted; download it again",
            path.display()
        )
    }
}

fn download_message(attempts: &[(String, String)]) -> String {
    if attempts.is_empty() {
        return "no download source was given; configure at least one release URL".to_string();
    }
    let tried: Vec<String> = attempts
        .iter()
        .map(|(url, why)| format!("{url}: {why}"))
        .collect();
    format!(
        "every download source failed ({}); check the node's network and the release URLs, then try again (a partial download is kept and resumed)",
        tried.join("; ")
    )
}

/// How much of a name from a bundle a message shows: a hostile entry name
/// can be thousands of bytes, and the operator needs its start and length.
const MAX_SHOWN: usize = 200;

/// An entry name from a bundle, quoted and cut.
fn shown(entry: &str) -> String {
    format!("{:?}", crate::tuf::meta::cut(entry, MAX_SHOWN))
}
