//! What `archy ota check` and `archy ota status` print: a release and the
//! node's verdict on it, and the node's release record.

use archy_node::NodeError;
use archy_node::ota::{Checked, Needed, OtaStatus};
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
            "release {v} runs (last installed: {} as generation {} at {})",
            i.version, i.generation, i.at
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
            println!("  {} at {}: {}", f.version, f.at, f.reason);
        }
    }
    Ok(())
}
