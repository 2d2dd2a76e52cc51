//! Containers that rootless podman runs (the old fleet ran some as UID
//! 1000, with subordinate UIDs from 100000): a rootful archy cannot adopt
//! them, since its Quadlet units make rootful containers and would fight
//! them over their names' ports and data. They are found through their
//! `conmon` (every podman container has one, running as the container's
//! owner, its name on its command line), from `/proc`: rootless podman
//! keeps its state under the user's home and /run/user, which a rootful
//! podman never lists.

use std::collections::BTreeMap;
use std::path::Path;

/// The containers whose `conmon` runs as another user than root, under
/// `proc` (the node's `/proc`): name to the user's uid. Unreadable entries
/// (a process that ended meanwhile) are passed over.
pub fn rootless_containers(proc: &Path) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(proc) else {
        return out;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let numeric = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !numeric {
            continue;
        }
        let is_conmon =
            std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == "conmon");
        if !is_conmon {
            continue;
        }
        let Some(uid) = std::fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|s| real_uid(&s))
        else {
            continue;
        };
        if uid == 0 {
            continue;
        }
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        if let Some(name) = container_name(&cmdline) {
            out.insert(name, uid);
        }
    }
    out
}

/// The real uid on the `Uid:` line of `/proc/PID/status`.
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// The container name conmon was given (`-n NAME` or `--name NAME`) in its
/// NUL-separated command line.
fn container_name(cmdline: &[u8]) -> Option<String> {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.iter().enumerate().find_map(|(i, a)| match *a {
        b"-n" | b"--name" => args
            .get(i + 1)
            .and_then(|n| std::str::from_utf8(n).ok())
            .map(str::to_owned),
        _ => a
            .strip_prefix(b"--name=")
            .and_then(|n| std::str::from_utf8(n).ok())
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(proc: &Path, pid: u32, comm: &str, uid: u32, cmdline: &[&str]) {
        let dir = proc.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
        std::fs::write(
            dir.join("status"),
            format!("Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("cmdline"), cmdline.join("\0") + "\0").unwrap();
    }

    #[test]
    fn conmons_of_other_users_name_rootless_containers() {
        let proc = tempfile::tempdir().unwrap();
        let p = proc.path();
        process(
            p,
            10,
            "conmon",
            1000,
            &[
                "/usr/bin/conmon",
                "--api-version",
                "1",
                "-c",
                "abc",
                "-n",
                "electrumx",
            ],
        );
        process(
            p,
            11,
            "conmon",
            0,
            &["/usr/bin/conmon", "-n", "bitcoin-knots"],
        );
        process(
            p,
            12,
            "conmon",
            1001,
            &["/usr/bin/conmon", "--name=archy-lnd-ui"],
        );
        process(p, 13, "sleep", 1000, &["sleep", "-n", "x"]);
        std::fs::create_dir_all(p.join("self")).unwrap();
        assert_eq!(
            rootless_containers(p),
            BTreeMap::from([
                ("archy-lnd-ui".to_owned(), 1001),
                ("electrumx".to_owned(), 1000)
            ])
        );
        assert!(rootless_containers(&p.join("none")).is_empty());
    }
}
