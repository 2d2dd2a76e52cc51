//! Which release a node takes from what the repository offers: pure, so
//! that every case (a wave not yet open, a pulled release, a release that
//! failed here before) is a plain test.

use semver::Version;

use super::client::Offered;
use super::waves;

/// What the node knows of itself.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    /// The release it runs.
    pub running: Option<&'a Version>,
    /// Releases it ran before (its generations), newest last.
    pub history: &'a [Version],
    /// Releases that failed here.
    pub failed: &'a [Version],
    /// The channel it follows (None: any).
    pub channel: Option<&'a str>,
    /// This archy's version.
    pub archy: &'a Version,
    /// Its place in the fleet (see [`waves::place`]).
    pub place: f64,
    pub now: jiff::Timestamp,
}

/// What the node does.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// Install this release.
    Take(Offered),
    /// A newer release is there, but this node's wave opens later.
    Wait {
        offered: Offered,
        opens: jiff::Timestamp,
    },
    /// The release it runs was pulled: go back to this one.
    GoBack { pulled: Version, to: Offered },
    /// The release it runs was pulled, and it ran none before it that the
    /// repository still offers.
    PulledNoWayBack { pulled: Version },
    /// Nothing newer for it.
    UpToDate,
}

/// Decides, from the releases (any order) and the node's situation.
pub fn choose(releases: &[Offered], node: &Situation<'_>) -> Choice {
    let mine: Vec<&Offered> = releases
        .iter()
        .filter(|r| node.channel.is_none_or(|c| r.meta.channel == c))
        .collect();
    if let Some(running) = node.running
        && mine
            .iter()
            .any(|r| &r.meta.version == running && r.meta.pulled.is_some())
    {
        let back = node
            .history
            .iter()
            .rev()
            .filter(|v| *v < running && !node.failed.contains(v))
            .find_map(|v| {
                mine.iter()
                    .find(|r| &r.meta.version == v && r.meta.pulled.is_none())
            });
        return match back {
            Some(to) => Choice::GoBack {
                pulled: running.clone(),
                to: (*to).clone(),
            },
            None => Choice::PulledNoWayBack {
                pulled: running.clone(),
            },
        };
    }
    let mut eligible: Vec<&Offered> = mine
        .into_iter()
        .filter(|r| {
            r.meta.pulled.is_none()
                && node.running.is_none_or(|v| r.meta.version > *v)
                && !node.failed.contains(&r.meta.version)
                && r.meta.min_archy <= *node.archy
        })
        .collect();
    eligible.sort_by(|a, b| b.meta.version.cmp(&a.meta.version));
    let Some(newest) = eligible.first() else {
        return Choice::UpToDate;
    };
    if let Some(open) = eligible
        .iter()
        .find(|r| waves::opens(&r.meta, node.place) <= node.now)
    {
        return Choice::Take((*open).clone());
    }
    Choice::Wait {
        offered: (*newest).clone(),
        opens: waves::opens(&newest.meta, node.place),
    }
}
