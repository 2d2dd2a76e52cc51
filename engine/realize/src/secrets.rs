//! Secret values: drawn from the system's random source, written straight
//! to their file, never held in anything that prints.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsops;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The largest multiple of 62 that fits a byte: bytes at or above it are
/// drawn again, so every character is equally likely.
const ACCEPT_BELOW: u8 = 248;

/// `length` random alphanumeric characters. The buffer is wiped before it
/// is dropped.
fn generate(name: &str, length: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(length);
    let mut pool = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut pool).map_err(|e| Error::Random {
            name: name.to_string(),
            detail: e.to_string(),
        })?;
        for &b in &pool {
            if b < ACCEPT_BELOW && out.len() < length {
                out.push(ALPHABET[usize::from(b % 62)]);
            }
        }
    }
    pool.fill(0);
    Ok(out)
}

/// Generates a fresh value for secret `name` and writes it atomically to
/// `path` with this mode and owner. Returns nothing about the value.
pub(crate) fn write_new(
    name: &str,
    path: &Path,
    length: usize,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let mut value = generate(name, length)?;
    let written = fsops::write_file(path, &value, mode, uid, gid);
    value.fill(0);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_alphanumeric_of_the_length() {
        let a = generate("t", 100).unwrap();
        let b = generate("t", 100).unwrap();
        assert_eq!(a.len(), 100);
        assert!(a.iter().all(u8::is_ascii_alphanumeric));
        assert_ne!(a, b);
        assert!(generate("t", 0).unwrap().is_empty());
    }
}
