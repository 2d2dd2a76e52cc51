//! `archy release init|add|pull|refresh|rotate|list`: the TUF repository
//! a fleet follows. Parsing and printing only; the facade does the work.

use std::path::{Path, PathBuf};

use archy_node::NodeError;
use archy_node::release::repository::{Published, Repository, Role};
use semver::Version;

/// The repository folder and the key folder.
#[derive(Debug, clap::Args)]
pub struct RepoArgs {
    /// The repository folder (serve it as it is: metadata/ and targets/).
    #[arg(long)]
    pub repo: PathBuf,
    /// The folder of the repository's keys (ROLE.key, mode 0600).
    #[arg(long)]
    pub keys: PathBuf,
}

impl RepoArgs {
    fn repository(&self) -> Repository {
        Repository::new(&self.repo, &self.keys)
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

fn published(p: &Published) {
    println!(
        "  root v{}, targets v{}, snapshot v{}, timestamp v{} (expires {}: run `archy release refresh` before)",
        p.root_version,
        p.targets_version,
        p.snapshot_version,
        p.timestamp_version,
        p.timestamp_expires
    );
}

pub fn init(at: &RepoArgs) -> Result<(), NodeError> {
    let repo = at.repository();
    let p = repo.init()?;
    println!("repository {} made", at.repo.display());
    published(&p);
    let root = repo.root()?;
    println!(
        "  keys in {} (mode 0600): move root.key offline; `refresh` needs timestamp.key alone",
        at.keys.display()
    );
    println!(
        "  nodes pin {} (ota.root in node.rhai, written to /etc/archy/trusted-root.json)",
        root.display()
    );
    Ok(())
}

pub fn add(at: &RepoArgs, bundle: &Path, waves: &[String]) -> Result<(), NodeError> {
    let added = at.repository().add(bundle, waves)?;
    let m = &added.meta;
    println!(
        "release {} ({}) added as {} with {} software objects",
        m.version, m.channel, added.target, added.objects
    );
    if m.waves.is_empty() {
        println!("  rolls out to every node at once");
    }
    for w in &m.waves {
        println!(
            "  wave: {}% of the fleet from {} after publication",
            w.percent,
            humantime::format_duration(std::time::Duration::from_secs(w.after_secs))
        );
    }
    published(&added.published);
    Ok(())
}

pub fn pull(at: &RepoArgs, version: &Version) -> Result<(), NodeError> {
    let m = at.repository().pull(version)?;
    println!(
        "release {} ({}) is pulled: nodes that have not taken it never will; nodes that run it go back to the release they ran before",
        m.version, m.channel
    );
    Ok(())
}

pub fn refresh(at: &RepoArgs) -> Result<(), NodeError> {
    let p = at.repository().refresh()?;
    println!("timestamp re-signed");
    published(&p);
    Ok(())
}

pub fn rotate(at: &RepoArgs, role: RoleArg) -> Result<(), NodeError> {
    let role = match role {
        RoleArg::Root => Role::Root,
        RoleArg::Targets => Role::Targets,
        RoleArg::Snapshot => Role::Snapshot,
        RoleArg::Timestamp => Role::Timestamp,
    };
    let p = at.repository().rotate(role)?;
    println!(
        "the {role:?} key is replaced: root v{} lists the new one, signed by the old root key",
        p.root_version
    );
    published(&p);
    Ok(())
}

pub fn list(at: &RepoArgs) -> Result<(), NodeError> {
    let releases = at.repository().releases()?;
    if releases.is_empty() {
        println!("no releases");
    }
    for m in releases {
        let waves: Vec<String> = m
            .waves
            .iter()
            .map(|w| {
                format!(
                    "{}%@{}",
                    w.percent,
                    humantime::format_duration(std::time::Duration::from_secs(w.after_secs))
                )
            })
            .collect();
        println!(
            "{} ({}) published {}{}{}",
            m.version,
            m.channel,
            m.published,
            if waves.is_empty() {
                String::new()
            } else {
                format!(", waves {}", waves.join(" "))
            },
            m.pulled
                .map(|p| format!(", PULLED {p}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
