//! Exact parsing of the quantities node authors write: byte sizes, CPU
//! shares and durations. Anything that is not exactly understood is refused,
//! never read as 0 or "unlimited".

use serde::{Deserialize, Serialize};

/// A quantity that could not be parsed, with the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QuantityError {
    pub message: String,
    pub hint: String,
}

/// A byte count, parsed from `512k` (SI, ×1000), `128Mi` (IEC, ×1024) or
/// plain digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bytes(pub u64);

const SIZE_HINT: &str = "write a whole number of bytes with an optional suffix: k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024), like \"512Mi\" or \"2G\"";

impl TryFrom<&str> for Bytes {
    type Error = QuantityError;
    fn try_from(s: &str) -> Result<Self, QuantityError> {
        let bad = |why: &str| QuantityError {
            message: format!("size {s:?} {why}"),
            hint: SIZE_HINT.to_string(),
        };
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, suffix) = s.split_at(split);
        if digits.is_empty() {
            return Err(bad("does not start with a number"));
        }
        let factor: u64 = match suffix {
            "" => 1,
            "k" => 1_000,
            "M" => 1_000_000,
            "G" => 1_000_000_000,
            "T" => 1_000_000_000_000,
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            "Ti" => 1 << 40,
            "K" => {
                return Err(bad(
                    "uses K, which is ambiguous (write k for 1000 or Ki for 1024)",
                ));
            }
            _ if suffix.starts_with('.') => return Err(bad("has a fraction")),
            _ => return Err(bad("has an unknown suffix")),
        };
        let n: u64 = digits.parse().map_err(|_| bad("is too large"))?;
        let total = n.checked_mul(factor).ok_or_else(|| bad("is too large"))?;
        Bytes::try_from(total).map_err(|_| bad("is zero"))
    }
}

impl TryFrom<u64> for Bytes {
    type Error = QuantityError;
    fn try_from(n: u64) -> Result<Self, QuantityError> {
        if n == 0 {
            return Err(QuantityError {
                message: "a size of 0 bytes is not a limit".into(),
                hint: SIZE_HINT.to_string(),
            });
        }
        Ok(Bytes(n))
    }
}

/// CPU time as thousandths of a CPU (`1.5` → 1500), kept as an integer so
/// that the canonical encoding has no floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MilliCpus(pub u32);

const CPU_HINT: &str =
    "write a number of CPUs greater than 0 with at most three decimals, like 0.5 or \"2\"";

impl TryFrom<&str> for MilliCpus {
    type Error = QuantityError;
    fn try_from(s: &str) -> Result<Self, QuantityError> {
        let bad = || QuantityError {
            message: format!("cpus {s:?} is not a number of CPUs"),
            hint: CPU_HINT.to_string(),
        };
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 {
            return Err(bad());
        }
        let whole: u32 = whole.parse().map_err(|_| bad())?;
        let frac: u32 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
        let millis = whole
            .checked_mul(1000)
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(bad)?;
        if millis == 0 {
            return Err(bad());
        }
        Ok(MilliCpus(millis))
    }
}

/// A deadline in milliseconds, parsed from `30s`, `2m`, `1m 30s`, `500ms` or
/// (from Rhai, where the evaluator converts it) a whole number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Millis(pub u64);

impl TryFrom<&str> for Millis {
    type Error = QuantityError;
    fn try_from(s: &str) -> Result<Self, QuantityError> {
        let d = humantime::parse_duration(s).map_err(|e| QuantityError {
            message: format!("duration {s:?} is not understood: {e}"),
            hint: "write a duration like \"30s\", \"2m\" or \"500ms\"".into(),
        })?;
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return Err(QuantityError {
                message: format!("duration {s:?} is zero"),
                hint: "a deadline must be longer than 0".into(),
            });
        }
        Ok(Millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_exact() {
        let b = |s: &str| Bytes::try_from(s).map(|b| b.0);
        assert_eq!(b("128Mi"), Ok(128 * 1024 * 1024));
        assert_eq!(b("1G"), Ok(1_000_000_000));
        assert_eq!(b("512k"), Ok(512_000));
        assert_eq!(b("4096"), Ok(4096));
        assert_eq!(b("2Ti"), Ok(2 << 40));
        for bad in [
            "",
            "M",
            "1.5G",
            "12 M",
            "1K",
            "1MB",
            "1g",
            "0",
            "0Mi",
            "-1",
            "99999999999T",
        ] {
            assert!(b(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn cpus_exact() {
        let c = |s: &str| MilliCpus::try_from(s).map(|c| c.0);
        assert_eq!(c("1.5"), Ok(1500));
        assert_eq!(c("2"), Ok(2000));
        assert_eq!(c("0.25"), Ok(250));
        for bad in ["0", "0.0", "1.2345", "", ".5", "a", "-1"] {
            assert!(c(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn durations() {
        let d = |s: &str| Millis::try_from(s).map(|m| m.0);
        assert_eq!(d("30s"), Ok(30_000));
        assert_eq!(d("2m"), Ok(120_000));
        assert_eq!(d("500ms"), Ok(500));
        assert!(d("soon").is_err());
        assert!(d("0s").is_err());
    }
}
