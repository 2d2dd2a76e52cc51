//! What `archy ota check` and `archy ota status` print: a release and the
//! node's verdict on it, and the node's release record.

use archy_node::NodeError;
use archy_node::ota::cut;
use archy_node::ota::{Checked, Choice, Needed, OtaStatus, RepoChecked};
use serde_json::json;

pub fn checked(c: &Checked, as_json: bool) {
    let r = &c.release;
    if as_json {
        let value = json!({
            "version": r.version.to_string(),
            "channel": r.channel,
            "min_archy": r.min_archy.to_string(),
            "size": r.size,
            "blake3": r.blake3,
            "key": r.key,
            "from": r.from,
            "running": c.running.as_ref().map(ToString::to_string),
            "would_apply": c.would_apply,
            "held": c.held,
            "verdict": c.verdict,
            "software": c.software.as_ref().map(|n| json!({
                "objects": n.listed,
                "missing_objects": n.missing.len(),
                "download_files": n.files,
                "download_bytes": n.bytes,
            })),
        });
        println!("{value:#}");
        return;
    }
    println!(
        "release {} ({}, {} bytes), signed by trusted key {}, from {}",
        r.version, r.channel, r.size, r.key, r.from
    );
    match &c.running {
        Some(v) => println!("this node runs release {v}"),
        None => println!("this node runs no release yet"),
    }
    if let Some(needed) = &c.software {
        println!("{}", software(needed));
    }
    println!("{}", c.verdict);
}

/// `archy ota check --repo`: the repository's offer and the node's verdict.
pub fn repo_checked(c: &RepoChecked, as_json: bool) {
    let (version, opens) = match &c.choice {
        Choice::Take(o) => (Some(&o.meta.version), None),
        Choice::Wait { offered, opens } => (Some(&offered.meta.version), Some(opens.to_string())),
        Choice::GoBack { to, .. } => (Some(&to.meta.version), None),
        Choice::PulledNoWayBack { .. } | Choice::UpToDate => (None, None),
    };
    let action = match &c.choice {
        Choice::Take(_) => "apply",
        Choice::Wait { .. } => "wait",
        Choice::GoBack { .. } => "go-back",
        Choice::PulledNoWayBack { .. } => "stay",
        Choice::UpToDate => "none",
    };
    if as_json {
        let value = json!({
            "running": c.running.as_ref().map(ToString::to_string),
            "releases": c.releases,
            "channel": c.channel,
            "action": action,
            "version": version.map(ToString::to_string),
            "wave_opens": opens,
            "place": c.place,
            "fetched_bytes": c.fetched,
            "held": c.held,
            "verdict": c.verdict(),
        });
        println!("{value:#}");
        return;
    }
    match &c.running {
        Some(v) => println!("this node runs release {v}"),
        None => println!("this node runs no release yet"),
    }
    println!(
        "the repository lists {} releases{} ({} fetched)",
        c.releases,
        c.channel
            .as_ref()
            .map(|ch| format!("; this node follows {ch}"))
            .unwrap_or_default(),
        crate::commands::human_bytes(c.fetched)
    );
    println!("{}", c.verdict());
    if c.held {
        println!("updates are held: the timer applies nothing until `archy ota unhold`");
    }
}

/// What a release's software costs this node: `software: 40 objects, 1
/// missing (1 file, 5.0 MiB to download)`.
pub fn software(n: &Needed) -> String {
    if n.listed == 0 {
        return "software: none".to_string();
    }
    if n.missing.is_empty() {
        return format!(
            "software: {} objects, all in the store (nothing to download)",
            n.listed
        );
    }
    format!(
        "software: {} objects, {} missing ({} {}, {} to download)",
        n.listed,
        n.missing.len(),
        n.files,
        if n.files == 1 { "file" } else { "files" },
        crate::commands::human_bytes(n.bytes)
    )
}

pub fn status(s: &OtaStatus, as_json: bool) -> Result<(), NodeError> {
    let state = &s.state;
    if as_json {
        let mut value = serde_json::to_value(state).map_err(|source| NodeError::Json {
            what: "the release record",
            source,
        })?;
        value["running"] = json!(state.running(s.current).map(|v| v.to_string()));
        value["current_generation"] = json!(s.current);
        println!("{value:#}");
        return Ok(());
    }
    match (state.running(s.current), &state.installed) {
        (Some(v), Some(i)) => println!(
            "release {} runs (last installed: {} as generation {} at {})",
            cut(&v.to_string(), 80),
            cut(&i.version.to_string(), 80),
            i.generation,
            i.at
        ),
        _ => println!("no release installed"),
    }
    if let Some(p) = &state.pending {
        println!("pending: release {} since {}", p.version, p.started);
    }
    if let Some(h) = &state.hold {
        println!("updates held since {}: {}", h.at, h.reason);
    }
    if !state.failed.is_empty() {
        println!("failed (never tried again):");
        for f in &state.failed {
            // The reason may quote a hostile bundle's names: cut them.
            println!(
                "  {} at {}: {}",
                cut(&f.version.to_string(), 80),
                f.at,
                cut(&f.reason, 300)
            );
        }
    }
    Ok(())
}
