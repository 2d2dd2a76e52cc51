//! Checked names and paths. Each is built only through `TryFrom<&str>`, so a
//! value of one of these types has already been validated.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name or path was refused, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NameError {
    pub message: String,
    pub hint: Option<String>,
}

impl NameError {
    fn new(message: impl Into<String>, hint: Option<String>) -> Self {
        NameError {
            message: message.into(),
            hint,
        }
    }
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $check:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                $check(s)?;
                Ok($name(s.to_string()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                $check(&s)?;
                Ok($name(s))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        // So a test or a lookup can compare a checked name with a literal.
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}

string_newtype!(
    /// An absolute, normalized path: starts with `/`, no empty, `.` or `..`
    /// components, no trailing slash (except `/` itself), no NUL.
    AbsPath,
    check_abs_path
);
string_newtype!(
    /// A systemd unit name: `prefix[@instance].type`, templates included.
    UnitName,
    check_unit_name
);
string_newtype!(
    /// A secret's name: a plain file name under the secrets folder.
    SecretName,
    check_secret_name
);
string_newtype!(
    /// A user or group name as `useradd` accepts it.
    AccountName,
    check_account_name
);
string_newtype!(
    /// A podman object name (container, network, volume).
    PodmanName,
    check_podman_name
);

impl AbsPath {
    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &AbsPath) -> bool {
        let (me, dir) = (self.as_str(), other.as_str());
        me == dir || dir == "/" || (me.starts_with(dir) && me.as_bytes()[dir.len()] == b'/')
    }

    /// The last component (`/` for the root).
    pub fn file_name(&self) -> &str {
        self.0
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
    }
}

fn check_abs_path(s: &str) -> Result<(), NameError> {
    if s.contains('\0') {
        return Err(NameError::new("a path cannot contain a NUL byte", None));
    }
    if !s.starts_with('/') {
        return Err(NameError::new(
            format!("path {s:?} is not absolute"),
            Some("write the full path, starting with /".into()),
        ));
    }
    if s == "/" {
        return Ok(());
    }
    let parts: Vec<&str> = s[1..].split('/').collect();
    if parts.contains(&"..") {
        return Err(NameError::new(
            format!("path {s:?} contains '..'"),
            Some("write the path without '..' components".into()),
        ));
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        let normal: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        return Err(NameError::new(
            format!("path {s:?} is not normalized"),
            Some(format!("write it as \"/{}\"", normal.join("/"))),
        ));
    }
    Ok(())
}

/// The unit types archy can write as files. `.device` and `.scope` units
/// cannot be written by anyone: systemd makes them itself.
pub const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
    "slice",
];

fn check_unit_name(s: &str) -> Result<(), NameError> {
    let hint_form = || {
        Some("a unit name looks like \"name.service\", \"name@.service\" (a template) or \"name@instance.service\"".to_string())
    };
    if s.len() > 255 {
        return Err(NameError::new(
            format!("unit name {s:?} is longer than 255 characters"),
            None,
        ));
    }
    let Some((stem, ty)) = s.rsplit_once('.') else {
        return Err(NameError::new(
            format!("unit name {s:?} has no type suffix"),
            hint_form(),
        ));
    };
    if !UNIT_TYPES.contains(&ty) {
        return Err(NameError::new(
            format!("unit name {s:?} has type .{ty}, which archy cannot write"),
            Some(format!("use one of: .{}", UNIT_TYPES.join(", ."))),
        ));
    }
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, Some(i)),
        None => (stem, None),
    };
    let valid_chars = |t: &str| {
        t.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\".contains(c))
    };
    if prefix.is_empty() || !valid_chars(prefix) {
        return Err(NameError::new(
            format!("unit name {s:?} is not valid for systemd"),
            Some("use letters, digits and : - _ . \\ before the type suffix".into()),
        ));
    }
    if let Some(instance) = instance
        && (instance.contains('@') || !valid_chars(instance))
    {
        return Err(NameError::new(
            format!("unit name {s:?} has an invalid instance {instance:?}"),
            hint_form(),
        ));
    }
    Ok(())
}

fn check_secret_name(s: &str) -> Result<(), NameError> {
    let hint = || {
        Some("use letters, digits, '-', '_' and '.', not starting with a dot, at most 128 characters".to_string())
    };
    if s.is_empty() || s.len() > 128 {
        return Err(NameError::new(
            format!("secret name {s:?} must be 1 to 128 characters"),
            hint(),
        ));
    }
    if s.contains('/') || s.contains("..") || s.starts_with('.') {
        return Err(NameError::new(
            format!("secret name {s:?} must be a plain name (no '/', no '..', no leading dot)"),
            hint(),
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(NameError::new(
            format!("secret name {s:?} has a character that is not allowed"),
            hint(),
        ));
    }
    Ok(())
}

fn check_account_name(s: &str) -> Result<(), NameError> {
    let ok_first = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let ok_rest = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
    if s.len() > 32 || !ok_first || !ok_rest {
        return Err(NameError::new(
            format!("account name {s:?} is not valid"),
            Some("start with a lowercase letter or '_', then lowercase letters, digits, '_' or '-', at most 32 characters".into()),
        ));
    }
    Ok(())
}

fn check_podman_name(s: &str) -> Result<(), NameError> {
    let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if s.len() > 128 || !ok_first || !ok_rest {
        return Err(NameError::new(
            format!("name {s:?} is not valid for podman"),
            Some("start with a letter or digit, then letters, digits, '_', '.' or '-'".into()),
        ));
    }
    Ok(())
}

string_newtype!(
    /// An app's name (`bitcoind`, `lnd-ui`): letters, digits, `-` and `_`.
    AppName,
    check_app_name
);

fn check_app_name(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    if !ok {
        return Err(NameError::new(
            format!("app name {s:?} is not valid"),
            Some("use letters, digits, '-' and '_' (at most 64)".into()),
        ));
    }
    Ok(())
}

impl UnitName {
    /// The type suffix: `service`, `timer`, ...
    pub fn unit_type(&self) -> &str {
        self.0.rsplit_once('.').map(|(_, t)| t).unwrap_or("")
    }

    /// True for `foo@.service`.
    pub fn is_template(&self) -> bool {
        self.0.contains("@.")
    }
}

/// A Unix permission mode (at most 0o7777). The canonical encoding carries
/// the number; JSON the octal text people read (`"0640"`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mode(u32);

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Mode::try_from(s.as_str()).map_err(serde::de::Error::custom)
        } else {
            Mode::try_from(u32::deserialize(d)?).map_err(serde::de::Error::custom)
        }
    }
}

impl Mode {
    pub const FILE: Mode = Mode(0o644);
    pub const DIR: Mode = Mode(0o755);
    pub const SECRET: Mode = Mode(0o600);
    /// A program in the store: read and run by all, written by none.
    pub const PROGRAM: Mode = Mode(0o555);

    pub fn bits(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Mode {
    type Error = NameError;
    fn try_from(v: u32) -> Result<Self, NameError> {
        if v > 0o7777 {
            return Err(NameError::new(
                format!("mode {v:o} is larger than 7777"),
                Some("write modes in octal, like 0o644 or \"0644\"".into()),
            ));
        }
        Ok(Mode(v))
    }
}

impl TryFrom<&str> for Mode {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, NameError> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        let v = u32::from_str_radix(digits, 8).map_err(|_| {
            NameError::new(
                format!("mode {s:?} is not an octal number"),
                Some("write modes in octal, like 0o644 or \"0644\"".into()),
            )
        })?;
        Mode::try_from(v)
    }
}

impl From<Mode> for u32 {
    fn from(m: Mode) -> u32 {
        m.0
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(AbsPath::try_from("/etc/app.conf").is_ok());
        assert!(AbsPath::try_from("/").is_ok());
        assert!(AbsPath::try_from("etc/x").is_err());
        assert!(AbsPath::try_from("/etc/../x").is_err());
        let e = AbsPath::try_from("/etc//x/").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("write it as \"/etc/x\""));
        assert!(AbsPath::try_from("/etc/./x").is_err());
        let p = AbsPath::try_from("/etc/nginx/nginx.conf").unwrap();
        assert!(p.is_within(&AbsPath::try_from("/etc/nginx").unwrap()));
        assert!(!p.is_within(&AbsPath::try_from("/etc/ngin").unwrap()));
        assert!(p.is_within(&AbsPath::try_from("/").unwrap()));
        assert_eq!(p.file_name(), "nginx.conf");
    }

    #[test]
    fn unit_names() {
        for ok in [
            "a.service",
            "foo@.service",
            "foo@bar.service",
            "var-lib-x.mount",
            "x.timer",
            "getty@tty1.service",
            "a\\x2db.service",
        ] {
            assert!(UnitName::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a",
            ".service",
            "a.device",
            "a.scope",
            "a b.service",
            "a@b@c.service",
            "@.service",
        ] {
            assert!(UnitName::try_from(bad).is_err(), "{bad}");
        }
        let t = UnitName::try_from("foo@.service").unwrap();
        assert!(t.is_template());
        assert_eq!(t.unit_type(), "service");
    }

    #[test]
    fn secret_names() {
        assert!(SecretName::try_from("rpc-password").is_ok());
        assert!(SecretName::try_from("a.b_c").is_ok());
        for bad in ["", "a/b", "..", "a..b", ".hidden", "a b"] {
            assert!(SecretName::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::try_from("0644").unwrap().bits(), 0o644);
        assert_eq!(Mode::try_from("0o600").unwrap().bits(), 0o600);
        assert!(Mode::try_from("999").is_err());
        assert!(Mode::try_from(0o17777).is_err());
        assert_eq!(Mode::try_from(0o755).unwrap().to_string(), "0755");
    }
}
