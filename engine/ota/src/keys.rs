//! Release keys in the standard minisign formats, so a publisher can check
//! a bundle with the `minisign` CLI too. The publisher holds a secret key
//! (unencrypted: releases are signed by scripts, not at a prompt); a node
//! holds the public keys it trusts, one or more `*.pub` files in a folder.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, SecretKey, SecretKeyBox};

use crate::error::OtaError;

/// Key files are a few hundred bytes; anything much larger is not one, and
/// reading it whole would let a wrong path eat memory.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A freshly generated key pair, as the text of its two files.
pub struct GeneratedKey {
    /// The minisign `.pub` file text: a comment line and the key.
    pub public: String,
    /// The minisign secret key file text, unencrypted.
    pub secret: String,
    /// 16 uppercase hex digits, as minisign prints them.
    pub key_id: String,
}

impl fmt::Debug for GeneratedKey {
    // Never print the secret: Debug output ends up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Makes a new signing key. `comment` goes into both files' untrusted
/// comment lines (say whose key it is); it must be one line.
pub fn generate(comment: &str) -> Result<GeneratedKey, OtaError> {
    if comment.contains(['\n', '\r']) {
        return Err(OtaError::InvalidRequest {
            reason: "a key comment must be a single line; remove the line breaks".to_string(),
        });
    }
    let KeyPair { pk, sk } =
        KeyPair::generate_unencrypted_keypair().map_err(|e| OtaError::KeyGen {
            reason: e.to_string(),
        })?;
    let key_id = key_id_of(pk.keynum());
    let label = if comment.trim().is_empty() {
        String::new()
    } else {
        format!("{}, ", comment.trim())
    };
    let public = format!(
        "untrusted comment: {label}minisign public key {key_id}\n{}\n",
        pk.to_base64()
    );
    let secret = sk
        .to_box(Some(&format!("{label}minisign secret key {key_id}")))
        .map_err(|e| OtaError::KeyGen {
            reason: e.to_string(),
        })?
        .into_string();
    Ok(GeneratedKey {
        public,
        secret,
        key_id,
    })
}

/// The publisher's key, loaded from a minisign secret key file.
pub struct SigningKey {
    pub(crate) secret: SecretKey,
    pub(crate) public: PublicKey,
    key_id: String,
}

impl fmt::Debug for SigningKey {
    // minisign's own Debug for SecretKey prints the key bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn load(path: &Path) -> Result<Self, OtaError> {
        let text = read_small(path, "read the secret key")?;
        Self::from_text(&text).map_err(|reason| OtaError::SecretKey {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses secret key file text; the error is a reason without key bytes.
    fn from_text(text: &str) -> Result<Self, String> {
        let secret = SecretKeyBox::from_string(text)
            .and_then(SecretKeyBox::into_unencrypted_secret_key)
            .map_err(|e| {
                let e = e.to_string();
                if e.contains("encrypted") {
                    "it is password-protected, and archy signs with an unencrypted key".to_string()
                } else {
                    format!("it cannot be parsed ({e})")
                }
            })?;
        let public = PublicKey::from_secret_key(&secret)
            .map_err(|e| format!("its public half cannot be derived ({e})"))?;
        let key_id = key_id_of(public.keynum());
        Ok(SigningKey {
            secret,
            public,
            key_id,
        })
    }

    pub fn key_id(&self) -> String {
        self.key_id.clone()
    }

    /// The `.pub` file text for this key, to hand to nodes.
    pub fn public_key_text(&self) -> String {
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.key_id,
            self.public.to_base64()
        )
    }
}

/// The public keys a node accepts releases from.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    keys: Vec<(String, PublicKey)>,
}

impl TrustedKeys {
    /// Every `*.pub` file in `dir`, in name order.
    pub fn load(dir: &Path) -> Result<Self, OtaError> {
        let none = |reason: &str| OtaError::NoTrustedKeys {
            dir: dir.to_path_buf(),
            reason: reason.to_string(),
        };
        let listing = match fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(none("the folder does not exist"));
            }
            Err(e) => return Err(OtaError::io("list the trusted keys folder", dir, e)),
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for item in listing {
            let item = item.map_err(|e| OtaError::io("list the trusted keys folder", dir, e))?;
            let path = item.path();
            if path.extension().is_some_and(|ext| ext == "pub") {
                files.push(path);
            }
        }
        files.sort();
        let mut trusted = TrustedKeys { keys: Vec::new() };
        for path in &files {
            let text = read_small(path, "read the trusted key file")?;
            trusted.add_text(&text, &path.display().to_string())?;
        }
        if trusted.keys.is_empty() {
            return Err(none(if files.is_empty() {
                "it holds no .pub file"
            } else {
                "its .pub files hold no key"
            }));
        }
        Ok(trusted)
    }

    /// Keys from text in the `.pub` format (several may be concatenated).
    pub fn from_text(text: &str) -> Result<Self, OtaError> {
        let mut trusted = TrustedKeys { keys: Vec::new() };
        trusted.add_text(text, "the key text")?;
        if trusted.keys.is_empty() {
            return Err(OtaError::PublicKey {
                origin: "the key text".to_string(),
                reason: "it holds no key line".to_string(),
            });
        }
        Ok(trusted)
    }

    fn add_text(&mut self, text: &str, origin: &str) -> Result<(), OtaError> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with("untrusted comment:") {
                continue;
            }
            let key = parse_public(line).map_err(|reason| OtaError::PublicKey {
                origin: format!("line {} of {origin}", n + 1),
                reason,
            })?;
            let id = key_id_of(key.keynum());
            if !self.keys.iter().any(|(known, _)| *known == id) {
                self.keys.push((id, key));
            }
        }
        Ok(())
    }

    /// The key ids, in the order the keys were found.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|(id, _)| id.clone()).collect()
    }

    pub(crate) fn get(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, key)| key)
    }
}

fn parse_public(line: &str) -> Result<PublicKey, String> {
    let key = PublicKey::from_base64(line).map_err(|e| e.to_string())?;
    // minisign's parser takes any two algorithm bytes; only Ed25519 ("Ed")
    // keys exist, so anything else is a paste of something else.
    if key.to_bytes().get(..2) != Some(b"Ed".as_slice()) {
        return Err("it is not an Ed25519 minisign key".to_string());
    }
    Ok(key)
}

/// minisign prints key ids as the 8 key-number bytes read little-endian.
pub(crate) fn key_id_of(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    for (dst, src) in bytes.iter_mut().zip(keynum) {
        *dst = *src;
    }
    format!("{:016X}", u64::from_le_bytes(bytes))
}

fn read_small(path: &Path, action: &str) -> Result<String, OtaError> {
    let file = fs::File::open(path).map_err(|e| OtaError::io(action, path, e))?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| OtaError::io(action, path, e))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(OtaError::io(
            action,
            path,
            std::io::Error::other(format!(
                "it is larger than {MAX_KEY_FILE} bytes, which no key file is; check the path"
            )),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips() {
        let generated = generate("test").expect("generate");
        assert_eq!(generated.key_id.len(), 16);
        let key = SigningKey::from_text(&generated.secret).expect("load secret");
        assert_eq!(key.key_id(), generated.key_id);
        let trusted = TrustedKeys::from_text(&generated.public).expect("load public");
        assert_eq!(trusted.ids(), vec![generated.key_id.clone()]);
        assert!(generated.public.contains(&generated.key_id));
        assert!(!format!("{key:?}").contains(&generated.secret));
    }

    #[test]
    fn garbage_public_key_names_its_line() {
        let err = TrustedKeys::from_text("untrusted comment: x\nnot-a-key\n").expect_err("bad");
        assert!(matches!(err, OtaError::PublicKey { ref origin, .. } if origin.contains("line 2")));
    }
}
