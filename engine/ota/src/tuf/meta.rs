//! archy's own signed details of a release target, kept in the target's
//! `custom` field of `targets.json` under the key `archy`: what the node
//! decides with before it downloads a byte of the bundle.

use semver::Version;
use serde::{Deserialize, Serialize};

/// The `custom` key of a release target.
pub const CUSTOM_KEY: &str = "archy";

/// A release as its targets metadata describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseMeta {
    pub version: Version,
    pub channel: String,
    pub min_archy: Version,
    /// When it was published (RFC 3339): the waves count from it.
    pub published: jiff::Timestamp,
    /// How it rolls out; empty: to every node at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
    /// When it was pulled (`archy release pull`): no node takes it any
    /// more, and a node running it goes back to its previous release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled: Option<jiff::Timestamp>,
}

/// One wave of a rollout: the nodes whose place in the fleet is below
/// `percent` (cumulative) take the release once `after_secs` have passed
/// since its publication. (Whole numbers: TUF's canonical JSON has no
/// floating point.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    pub percent: u8,
    pub after_secs: u64,
}

impl Wave {
    /// Parses `SHARE%@DELAY`, e.g. `20%@0s` or `100%@1d`.
    pub fn parse(text: &str) -> Result<Wave, String> {
        let bad = || {
            format!(
                "the wave {text:?} is not SHARE%@DELAY (such as 20%@0s or 100%@24h): a share of the fleet and the time after publication it opens"
            )
        };
        let (share, after) = text.split_once('@').ok_or_else(bad)?;
        let share: u8 = share
            .trim()
            .strip_suffix('%')
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        if !(1..=100).contains(&share) {
            return Err(format!(
                "the wave {text:?} has a share of {share}%: use more than 0% and at most 100%"
            ));
        }
        let after = humantime::parse_duration(after.trim()).map_err(|_| bad())?;
        Ok(Wave {
            percent: share,
            after_secs: after.as_secs(),
        })
    }

    /// Waves must widen and open later one after the other, and the last
    /// one reach the whole fleet, or some nodes would never take it.
    pub fn check_all(waves: &[Wave]) -> Result<(), String> {
        for pair in waves.windows(2) {
            if pair[1].percent <= pair[0].percent || pair[1].after_secs < pair[0].after_secs {
                return Err(
                    "each wave must reach a larger share of the fleet than the one before, no sooner"
                        .to_string(),
                );
            }
        }
        match waves.last() {
            Some(last) if last.percent < 100 => Err(format!(
                "the last wave reaches {}% of the fleet; it must reach 100%",
                last.percent
            )),
            _ => Ok(()),
        }
    }
}

/// A name no longer than `max` bytes for a message: an untrusted name
/// (a tar entry, a target, a reason from elsewhere) can be thousands of
/// bytes long, and an operator needs its start and its length.
pub fn cut(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let mut end = max;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &name[..end], name.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_parse_and_must_reach_the_whole_fleet() {
        let a = Wave::parse("20%@0s").unwrap_or_else(|e| panic!("{e}"));
        let b = Wave::parse("100%@1day").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a,
            Wave {
                percent: 20,
                after_secs: 0
            }
        );
        assert_eq!(b.after_secs, 86_400);
        assert!(Wave::check_all(&[a, b]).is_ok());
        assert!(Wave::check_all(&[a]).is_err());
        assert!(Wave::check_all(&[b, a]).is_err());
        assert!(Wave::parse("20@1h").is_err());
        assert!(Wave::parse("0%@1h").is_err());
    }

    #[test]
    fn long_names_are_cut_with_their_length() {
        let long = "x".repeat(3000);
        let cut = cut(&long, 64);
        assert!(cut.len() < 100, "{cut}");
        assert!(cut.ends_with("(3000 bytes)"));
        assert_eq!(super::cut("short", 64), "short");
        // Never in the middle of a character.
        assert!(super::cut(&"é".repeat(100), 5).starts_with("éé…"));
    }
}
