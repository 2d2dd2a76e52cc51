//! Signing a bundle and checking a bundle's signature against the node's
//! trusted keys. The file is streamed, never loaded whole: minisign hashes
//! it (prehashed Ed25519, the default since minisign 0.8) while the same
//! pass counts its bytes and computes its blake3 for the release details.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use minisign::SignatureBox;

use crate::error::OtaError;
use crate::keys::{SigningKey, TrustedKeys, key_id_of};
use crate::manifest::ReleaseInfo;

/// Signs `path` and returns the `.minisig` text. `trusted_comment` is
/// covered by the signature; it must be one line.
pub fn sign_file(path: &Path, key: &SigningKey, trusted_comment: &str) -> Result<String, OtaError> {
    if trusted_comment.contains(['\n', '\r']) {
        return Err(OtaError::InvalidRequest {
            reason: "a signature's trusted comment must be a single line".to_string(),
        });
    }
    let file = File::open(path).map_err(|e| OtaError::io("open for signing", path, e))?;
    let untrusted = format!("signature from archy release key {}", key.key_id());
    let signature = minisign::sign(
        Some(&key.public),
        &key.secret,
        BufReader::new(file),
        Some(trusted_comment),
        Some(&untrusted),
    )
    .map_err(|e| match e.kind() {
        minisign::ErrorKind::Io => {
            OtaError::io("read for signing", path, io::Error::other(e.to_string()))
        }
        _ => OtaError::InvalidRequest {
            reason: format!(
                "could not sign {} with key {}: {e}",
                path.display(),
                key.key_id()
            ),
        },
    })?;
    Ok(signature.into_string())
}

/// A bundle whose signature checks out, and what it vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub release: ReleaseInfo,
}

/// Checks `bundle` against the `.minisig` text `signature`: a trusted key,
/// a valid signature over the file and the trusted comment, then the
/// release details' size and blake3 against the file itself.
pub fn verify(bundle: &Path, signature: &str, trusted: &TrustedKeys) -> Result<Verified, OtaError> {
    let sig = SignatureBox::from_string(signature).map_err(|e| OtaError::MalformedSignature {
        bundle: bundle.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !sig.is_prehashed() {
        return Err(OtaError::MalformedSignature {
            bundle: bundle.to_path_buf(),
            reason: "it is a legacy (non-prehashed) signature, which archy does not accept; sign with a current minisign".to_string(),
        });
    }
    // The key first: an unknown key is the clearest thing to tell the
    // operator, and there is no point reading the file for it.
    let key_id = key_id_of(sig.keynum());
    let Some(public) = trusted.get(&key_id) else {
        return Err(OtaError::UnknownKey {
            key_id,
            trusted: trusted.ids(),
        });
    };
    let file = File::open(bundle).map_err(|e| OtaError::io("open the bundle", bundle, e))?;
    let mut reader = Tee {
        inner: BufReader::with_capacity(1 << 16, file),
        hasher: blake3::Hasher::new(),
        bytes: 0,
        error: None,
    };
    let checked = minisign::verify(public, &sig, &mut reader, true, false, false);
    if let Some(e) = reader.error.take() {
        return Err(OtaError::io("read the bundle", bundle, e));
    }
    if checked.is_err() {
        // Not trusted yet, but the best hint there is: a length that
        // differs from the announced one means a cut or mangled download.
        let announced = sig
            .trusted_comment()
            .ok()
            .and_then(|c| ReleaseInfo::parse(&c).ok());
        if let Some(info) = announced
            && info.size != reader.bytes
        {
            return Err(OtaError::Truncated {
                path: bundle.to_path_buf(),
                got: reader.bytes,
                expected: info.size,
            });
        }
        return Err(OtaError::BadSignature {
            path: bundle.to_path_buf(),
            key_id,
        });
    }
    let comment = sig
        .trusted_comment()
        .map_err(|e| OtaError::MalformedSignature {
            bundle: bundle.to_path_buf(),
            reason: e.to_string(),
        })?;
    let release = ReleaseInfo::parse(&comment)?;
    let hash = reader.hasher.finalize().to_hex().to_string();
    if release.size != reader.bytes {
        return Err(OtaError::SignedMismatch {
            path: bundle.to_path_buf(),
            what: format!(
                "it has {} bytes, the signature says {}",
                reader.bytes, release.size
            ),
        });
    }
    if release.blake3 != hash {
        return Err(OtaError::SignedMismatch {
            path: bundle.to_path_buf(),
            what: format!(
                "its blake3 is {hash}, the signature says {}",
                release.blake3
            ),
        });
    }
    Ok(Verified { key_id, release })
}

/// Passes the file to minisign while counting and hashing it. minisign
/// turns read errors into its own type, so the real one is kept here.
struct Tee<R> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
    error: Option<io::Error>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                let kind = e.kind();
                self.error = Some(e);
                Err(io::Error::from(kind))
            }
        }
    }
}

impl<R: Read> Seek for Tee<R> {
    // minisign only seeks to echo the data to stdout, which `verify`
    // never asks for; a seek here would desynchronise the hash.
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the bundle is read once, front to back",
        ))
    }
}
