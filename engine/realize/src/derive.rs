//! The derivations of secrets computed: a file's `{{secret.NAME | ...}}`
//! placeholders (their syntax and its checks are `archy_graph::derive`'s)
//! filled in at activation from the node's secrets, so that a value never
//! enters the description, the graph or the store.
//!
//! - `sha256`: the hex SHA-256 of the value;
//! - `rpcauth USER`: a bitcoind `rpcauth=` value, `USER:SALT$HMAC`, as
//!   Bitcoin Core's `share/rpcauth/rpcauth.py` makes it, so bitcoind checks
//!   the password without holding it;
//! - `basic USER`: base64 of `USER:VALUE`, the credentials of an HTTP
//!   `Authorization: Basic` header.

use std::fmt::Write as _;

use archy_graph::derive::{Derivation, Piece, PlaceholderError, pieces};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

/// The blake3 `derive_key` context the rpcauth salt is derived under. Part
/// of every rpcauth line archy writes: changing it changes every salt, so
/// every bitcoind restarts once.
const RPCAUTH_SALT_CONTEXT: &str = "archy 2026 bitcoind rpcauth salt";

/// Bytes of salt in an rpcauth line (rpcauth.py's `generate_salt(16)`).
const RPCAUTH_SALT_BYTES: usize = 16;

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The salt of the rpcauth line for `password`: 32 lowercase hex digits,
/// like rpcauth.py's, but derived from the password instead of drawn at
/// random. The line then stays the same from one activation to the next
/// (bitcoind is not restarted by every switch) and changes exactly when the
/// password does. It reveals nothing the HMAC beside it does not.
pub fn rpcauth_salt(password: &[u8]) -> String {
    let key = blake3::derive_key(RPCAUTH_SALT_CONTEXT, password);
    hex(&key[..RPCAUTH_SALT_BYTES])
}

/// rpcauth.py's `password_to_hmac(salt, password)`: hex HMAC-SHA256 keyed
/// with the salt's text (not the bytes it spells in hex) over the password.
pub fn rpcauth_hmac(salt: &str, password: &[u8]) -> String {
    // HMAC takes a key of any length (a long one is hashed first), so this
    // cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(salt.as_bytes())
        .unwrap_or_else(|e| unreachable!("HMAC refused a key: {e}"));
    mac.update(password);
    hex(&mac.finalize().into_bytes())
}

/// The value of bitcoind's `rpcauth=` for `user` and `password`.
pub fn rpcauth(user: &str, password: &[u8]) -> String {
    let salt = rpcauth_salt(password);
    let hmac = rpcauth_hmac(&salt, password);
    format!("{user}:{salt}${hmac}")
}

/// The credentials of `Authorization: Basic`: base64 (standard alphabet,
/// padded) of `user:password`.
pub fn basic(user: &str, password: &[u8]) -> String {
    let mut pair = Vec::with_capacity(user.len() + 1 + password.len());
    pair.extend_from_slice(user.as_bytes());
    pair.push(b':');
    pair.extend_from_slice(password);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
    // The pair holds the password: wipe it like the realizer wipes values.
    pair.fill(0);
    encoded
}

/// What `how` makes of a secret's `value`.
fn derive(how: Derivation<'_>, value: &[u8]) -> String {
    match how {
        Derivation::Value => String::from_utf8_lossy(value).into_owned(),
        Derivation::Sha256 => hex(&Sha256::digest(value)),
        Derivation::Rpcauth { user } => rpcauth(user, value),
        Derivation::Basic { user } => basic(user, value),
    }
}

/// `text` with every placeholder filled from `value(name)`. An error names
/// the secret that has no value, never a value.
pub fn render(
    text: &str,
    mut value: impl FnMut(&str) -> Option<Vec<u8>>,
) -> Result<String, PlaceholderError> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Secret(name, how) => {
                let missing = || PlaceholderError {
                    placeholder: format!("secret.{name}"),
                    message: format!("secret {name} has no value on this node"),
                };
                let v = value(name).ok_or_else(missing)?;
                out.push_str(&derive(how, &v));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn placeholders_are_filled() {
        let t = "user=ui\npass={{secret.ui-pass}}\nhash={{ secret.ui-pass | sha256 }}\nkeep={{other}}\n";
        let out = render(t, |n| (n == "ui-pass").then(|| b"abc".to_vec())).unwrap();
        assert_eq!(
            out,
            "user=ui\npass=abc\nhash=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nkeep={{other}}\n"
        );
    }

    #[test]
    fn bad_placeholders_and_missing_values_are_errors() {
        assert!(render("{{secret.x | md5}}", |_| Some(b"abc".to_vec())).is_err());
        let e = render("{{secret.gone}}", |_| None).unwrap_err();
        assert!(e.message.contains("gone"), "{e:?}");
    }

    /// Independent vectors: Python's
    /// `hmac.new(salt.encode(), password.encode(), hashlib.sha256).hexdigest()`,
    /// which is what rpcauth.py's `password_to_hmac` computes.
    #[test]
    fn rpcauth_hmac_matches_python() {
        let vectors = [
            (
                "0123456789abcdef0123456789abcdef",
                "correct horse battery staple",
                "90ff3ce205bece1c447b777562931b92721a1956552484506bf368ee0278bcd3",
            ),
            (
                "cb77f0957de88ff388cf817ddbc72730",
                "hunter2",
                "542e4a3ac9de158228a4c2684e9356a0d4761d1c8f170a0ef52223f99eca288c",
            ),
            (
                "f00dbabef00dbabef00dbabef00dbabe",
                "aLongerAlphanumericPassword1234567890abcdefXYZ",
                "8359e6afb0cf88564452c83256f38c15324b91aa4ad1de94a17970c1d65728ee",
            ),
        ];
        for (salt, password, want) in vectors {
            assert_eq!(rpcauth_hmac(salt, password.as_bytes()), want, "{salt}");
        }
    }

    /// The salt is the first 16 bytes of blake3's
    /// `derive_key("archy 2026 bitcoind rpcauth salt", password)`, in hex;
    /// the expected values were computed with Python's `blake3` package
    /// (`blake3.blake3(pw, derive_key_context=ctx).digest()[:16].hex()`) and
    /// the HMAC half with Python's `hmac` as above.
    #[test]
    fn rpcauth_lines_are_pinned() {
        let vectors = [
            (
                "s3cretPass",
                "node:967f7c8db97cbbae5df546bb0df4c6b2$a799768c445f68773007e5f9c9e91b000d8b2af4a8b37e0f06864e8d6bc1e4e5",
            ),
            (
                "Kx8vP2qLm9zR4tW7yB1nC5dF",
                "node:93da5977f4791861e593b3e786aae930$f561d196155b6ca2cc78bab6f2274c714ab72a97758f377b9cc5f98e5ff61782",
            ),
        ];
        for (password, want) in vectors {
            assert_eq!(rpcauth("node", password.as_bytes()), want);
        }
        assert_eq!(
            rpcauth_salt(b"s3cretPass"),
            "967f7c8db97cbbae5df546bb0df4c6b2"
        );
        let conf = "rpcauth={{secret.bitcoin-rpc-password | rpcauth node}}\n";
        let out = render(conf, |_| Some(b"s3cretPass".to_vec())).unwrap();
        assert_eq!(
            out,
            "rpcauth=node:967f7c8db97cbbae5df546bb0df4c6b2$a799768c445f68773007e5f9c9e91b000d8b2af4a8b37e0f06864e8d6bc1e4e5\n"
        );
    }

    #[test]
    fn rpcauth_is_stable_and_follows_the_password() {
        let a = rpcauth("node", b"s3cretPass");
        assert_eq!(a, rpcauth("node", b"s3cretPass"));
        // One letter's case changed: another salt, another HMAC.
        let b = rpcauth("node", b"s3cretPasS");
        let salt = |line: &str| line[5..37].to_string();
        assert_ne!(salt(&a), salt(&b));
        assert_eq!(salt(&b), "fb9a4578e3a4d3e2ebe3e5dba6045558");
        assert_eq!(rpcauth_salt(b"s3cretPasS"), salt(&b));
        let salt_a = rpcauth_salt(b"s3cretPass");
        assert!(
            salt_a.len() == 32
                && salt_a
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        // The user is only the label in front.
        assert_eq!(
            rpcauth("lnd", b"s3cretPass")[4..],
            rpcauth("node", b"s3cretPass")[5..]
        );
    }

    /// Python: `base64.b64encode(b"node:abc")`.
    #[test]
    fn basic_credentials_are_base64_of_user_and_password() {
        assert_eq!(basic("node", b"abc"), "bm9kZTphYmM=");
        assert_eq!(basic("node", b"s3cretPass"), "bm9kZTpzM2NyZXRQYXNz");
        let line = "proxy_set_header Authorization \"Basic {{secret.x | basic node}}\";";
        let out = render(line, |_| Some(b"abc".to_vec())).unwrap();
        assert_eq!(
            out,
            "proxy_set_header Authorization \"Basic bm9kZTphYmM=\";"
        );
    }
}
