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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::meta::{ReleaseMeta, Wave};

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap_or_else(|e| panic!("{e}"))
    }

    fn offered(version: &str, channel: &str, waves: &[Wave], pulled: bool) -> Offered {
        Offered {
            target: format!("archy-{version}.tar.gz"),
            length: 1,
            meta: ReleaseMeta {
                version: Version::parse(version).unwrap_or_else(|e| panic!("{e}")),
                channel: channel.to_string(),
                min_archy: Version::new(0, 1, 0),
                published: at(0),
                waves: waves.to_vec(),
                pulled: pulled.then(|| at(10)),
            },
        }
    }

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    struct Node {
        running: Option<Version>,
        history: Vec<Version>,
        failed: Vec<Version>,
        archy: Version,
    }

    impl Node {
        fn on(running: Option<&str>, history: &[&str]) -> Node {
            Node {
                running: running.map(v),
                history: history.iter().map(|h| v(h)).collect(),
                failed: Vec::new(),
                archy: v("0.1.0"),
            }
        }

        fn choose(&self, releases: &[Offered], place: f64, now: i64) -> Choice {
            choose(
                releases,
                &Situation {
                    running: self.running.as_ref(),
                    history: &self.history,
                    failed: &self.failed,
                    channel: Some("stable"),
                    archy: &self.archy,
                    place,
                    now: at(now),
                },
            )
        }
    }

    const TWO_WAVES: [Wave; 2] = [
        Wave {
            percent: 20,
            after_secs: 0,
        },
        Wave {
            percent: 100,
            after_secs: 3600,
        },
    ];

    #[test]
    fn a_node_takes_a_release_when_its_wave_opens() {
        let releases = [offered("1.0.0", "stable", &TWO_WAVES, false)];
        let node = Node::on(None, &[]);
        assert_eq!(
            node.choose(&releases, 0.1, 1),
            Choice::Take(releases[0].clone())
        );
        assert_eq!(
            node.choose(&releases, 0.5, 1),
            Choice::Wait {
                offered: releases[0].clone(),
                opens: at(3600)
            }
        );
        assert_eq!(
            node.choose(&releases, 0.5, 3600),
            Choice::Take(releases[0].clone())
        );
    }

    #[test]
    fn an_open_older_release_is_taken_while_a_newer_one_waits() {
        let releases = [
            offered("1.0.0", "stable", &[], false),
            offered("1.1.0", "stable", &TWO_WAVES, false),
        ];
        let node = Node::on(None, &[]);
        assert_eq!(
            node.choose(&releases, 0.5, 1),
            Choice::Take(releases[0].clone())
        );
    }

    #[test]
    fn other_channels_failed_and_pulled_releases_are_never_taken() {
        let node = Node {
            failed: vec![v("1.2.0")],
            ..Node::on(Some("1.0.0"), &["1.0.0"])
        };
        let releases = [
            offered("1.0.0", "stable", &[], false),
            offered("1.1.0", "stable", &[], true),
            offered("1.2.0", "stable", &[], false),
            offered("1.3.0", "beta", &[], false),
        ];
        assert_eq!(node.choose(&releases, 0.5, 1), Choice::UpToDate);
    }

    #[test]
    fn a_node_on_a_pulled_release_goes_back_to_the_one_it_ran_before() {
        let releases = [
            offered("1.0.0", "stable", &[], false),
            offered("1.1.0", "stable", &[], false),
            offered("2.0.0", "stable", &[], true),
        ];
        let node = Node::on(Some("2.0.0"), &["1.0.0", "1.1.0", "2.0.0"]);
        assert_eq!(
            node.choose(&releases, 0.5, 1),
            Choice::GoBack {
                pulled: v("2.0.0"),
                to: releases[1].clone()
            }
        );
        // Provisioned on it: nothing to go back to.
        let fresh = Node::on(Some("2.0.0"), &["2.0.0"]);
        assert_eq!(
            fresh.choose(&releases, 0.5, 1),
            Choice::PulledNoWayBack { pulled: v("2.0.0") }
        );
    }
}
