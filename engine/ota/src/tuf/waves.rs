//! A node's place in the fleet's rollout: a stable seed kept in its state
//! dir (`<state>/ota/seed`, made once) gives it a place in [0, 1); a
//! release's wave for it is the first whose share reaches past that place,
//! and opens that long after the release's publication. The place is the
//! same for every release, so the nodes that go first go first every time
//! (a canary group), as in Bottlerocket.

use std::path::Path;

use super::TufError;
use super::meta::{ReleaseMeta, Wave};

/// The node's seed: 16 random bytes in hex, made on first use.
pub fn seed(ota_dir: &Path) -> Result<String, TufError> {
    let path = ota_dir.join("seed");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() == 32 => return Ok(text.trim().to_string()),
        Ok(_) => {} // damaged: a new place is as good as the old one
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(TufError::io("read", &path)(e)),
    }
    std::fs::create_dir_all(ota_dir).map_err(TufError::io("create", ota_dir))?;
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| TufError::Runtime("no random bytes".into()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Written whole then renamed: a crash leaves no half seed.
    let temp = ota_dir.join(".seed.archy-new");
    std::fs::write(&temp, format!("{hex}\n")).map_err(TufError::io("write", &temp))?;
    std::fs::rename(&temp, &path).map_err(TufError::io("write", &path))?;
    Ok(hex)
}

/// The place in [0, 1) the seed gives.
pub fn place(seed: &str) -> f64 {
    let hash = blake3::hash(seed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    // 53 bits: exactly what an f64 holds.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// When a release opens to a node at `place`.
pub fn opens(release: &ReleaseMeta, place: f64) -> jiff::Timestamp {
    let after = wave_of(&release.waves, place).map_or(0, |w| w.after_secs);
    let span = jiff::SignedDuration::from_secs(i64::try_from(after).unwrap_or(i64::MAX));
    release
        .published
        .checked_add(span)
        .unwrap_or(jiff::Timestamp::MAX)
}

/// The wave a node at `place` belongs to (the last one for a place past
/// every share, which a checked rollout never has).
pub fn wave_of(waves: &[Wave], place: f64) -> Option<&Wave> {
    waves
        .iter()
        .find(|w| place < f64::from(w.percent) / 100.0)
        .or(waves.last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = seed(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let b = seed(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        let p = place(&a);
        assert!((0.0..1.0).contains(&p));
    }

    #[test]
    fn a_place_falls_in_the_first_wave_that_reaches_it() {
        let waves = [
            Wave {
                percent: 20,
                after_secs: 0,
            },
            Wave {
                percent: 100,
                after_secs: 3600,
            },
        ];
        assert_eq!(wave_of(&waves, 0.1).map(|w| w.after_secs), Some(0));
        assert_eq!(wave_of(&waves, 0.2).map(|w| w.after_secs), Some(3600));
        assert_eq!(wave_of(&waves, 0.99).map(|w| w.after_secs), Some(3600));
        assert!(wave_of(&[], 0.5).is_none());
    }
}
