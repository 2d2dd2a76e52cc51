//! `archy switch [NODE] [--dry-run] [--adopt]` and `archy rollback [--to N]`:
//! build (or pick) a generation and switch the node to it through the
//! health gate.

use std::path::Path;
use std::time::Duration;

use archy_realize::Realizer;
use archy_switch::journal::{Journal, Phase};
use archy_switch::switch::{Outcome, SwitchError, Switcher, observe};
use archy_systemd::SystemdBus;

use crate::CliError;
use crate::commands::build::{BuildArgs, build_locked};
use crate::commands::diff::{headline, live_graph};
use crate::commands::eval::evaluate_node;
use crate::commands::{ota, store};
use crate::podman::NodePodman;

/// What `archy switch` and `archy rollback` share.
#[derive(Debug, Clone, Copy)]
pub struct SwitchArgs<'a> {
    pub state_dir: &'a Path,
    /// `--root`: realize under this folder, without systemd.
    pub root: Option<&'a Path>,
    pub wait: bool,
    pub adopt: bool,
    pub color: bool,
}

/// Runs `work` with a switcher for the running node: the realizer at `/`,
/// systemd over the bus, podman reached through systemd.
pub(crate) fn on_node<T>(
    store: &archy_store::Store,
    args: SwitchArgs<'_>,
    command: &str,
    work: impl FnOnce(&Switcher<'_>) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let realizer = Realizer::new(Path::new("/"), &archy_store::StateDir::new(args.state_dir));
    let systemd = connect()?;
    let podman = NodePodman::new(Some(&systemd));
    work(&switcher(
        store, &realizer, &systemd, &podman, args, command,
    ))
}

/// Everything a switch is done with.
fn switcher<'a>(
    store: &'a archy_store::Store,
    realizer: &'a Realizer,
    systemd: &'a SystemdBus,
    podman: &'a NodePodman<'a>,
    args: SwitchArgs<'_>,
    command: &str,
) -> Switcher<'a> {
    Switcher {
        store,
        realizer,
        systemd,
        podman,
        adopt: args.adopt,
        command: command.to_string(),
        job_timeout: Duration::from_secs(90),
    }
}

pub(crate) fn connect() -> Result<SystemdBus, CliError> {
    SystemdBus::connect().map_err(|e| CliError::system(e.to_string()))
}

/// Turns a switch's end into what the operator reads and the exit code.
pub(crate) fn report(result: Result<Outcome, SwitchError>) -> Result<(), CliError> {
    match result {
        Ok(Outcome::Switched { to, plan }) => {
            print!("{}", archy_plan::display::render(&plan));
            println!("switched to generation {to}: every health check passed");
            Ok(())
        }
        Ok(Outcome::Unchanged { to }) => {
            println!("generation {to} is already running: nothing to do");
            Ok(())
        }
        Ok(Outcome::RolledBack {
            failed,
            back_to,
            why,
        }) => {
            let back = back_to.map_or("nothing (as before the first switch)".to_string(), |n| {
                format!("generation {n}")
            });
            let mut message = format!("generation {failed} failed and the node is back on {back}:");
            for line in why {
                message.push_str(&format!("\n  {line}"));
            }
            Err(CliError {
                code: 2,
                message,
                hint: None,
                rendered: false,
            })
        }
        Err(e @ SwitchError::Image(_)) => Err(CliError::input(e.to_string()).hint(
            "fix the image reference or its build context (the error above says what failed) and switch again",
        )),
        Err(e @ SwitchError::Refused(_)) => Err(CliError::input(e.to_string()).hint(
            "nothing was changed; move the file away, or pass --adopt to back it up and manage it",
        )),
        Err(e) => Err(CliError::system(e.to_string())),
    }
}

pub fn run(
    node: &Path,
    overrides: &[String],
    dry_run: bool,
    args: SwitchArgs<'_>,
) -> Result<(), CliError> {
    if dry_run {
        // The plan against the current generation, nothing written.
        let evaluation = evaluate_node(node, args.state_dir, overrides, args.color)?;
        let live = live_graph(args.state_dir)?;
        let realizer = Realizer::new(Path::new("/"), &archy_store::StateDir::new(args.state_dir));
        // Only a plan with containers asks podman, through systemd.
        let systemd = connect().ok();
        let podman = NodePodman::new(systemd.as_ref().map(|s| s as _));
        let observed = observe(&realizer, &podman, &evaluation.graph, args.adopt)
            .map_err(|e| CliError::system(e.to_string()))?;
        let plan = archy_plan::plan(live.as_ref().map(|(_, g)| g), &evaluation.graph, &observed);
        print!("{}", headline(live.as_ref(), &evaluation.graph));
        print!("{}", archy_plan::display::render(&plan));
        return Ok(());
    }
    // One lock for building and switching, so nothing runs in between.
    let _lock = store::lock(args.state_dir, "archy switch", args.wait)?;
    let store = store::open(args.state_dir)?;
    let report_build = build_locked(
        BuildArgs {
            node,
            overrides,
            state_dir: args.state_dir,
            wait: args.wait,
            color: args.color,
        },
        &store,
    )?;
    if let Some(root) = args.root {
        return offline(&store, report_build.number(), root, args);
    }
    on_node(&store, args, "archy switch", |switch| {
        recover_first(switch)?;
        report(switch.switch(report_build.number()))
    })
}

pub fn rollback(to: Option<u64>, args: SwitchArgs<'_>) -> Result<(), CliError> {
    let _lock = store::lock(args.state_dir, "archy rollback", args.wait)?;
    let store = store::open(args.state_dir)?;
    let target = match to {
        Some(n) => n,
        None => store
            .previous()
            .map_err(|e| CliError::system(e.to_string()))?
            .ok_or_else(|| {
                CliError::input("there is no previous generation to roll back to")
                    .hint("pass --to N; see archy generations")
            })?,
    };
    on_node(&store, args, "archy rollback", |switch| {
        recover_first(switch)?;
        report(switch.switch(target))
    })
}

/// A switch interrupted earlier is finished or undone before anything
/// else, so the node is in one generation when the next switch plans.
/// Then the OTA release that switch was for, if any, is settled.
pub(crate) fn recover_first(switch: &Switcher<'_>) -> Result<(), CliError> {
    let phase = interrupted_phase(switch.store.state_dir().path())?;
    match switch.recover() {
        Ok(None) => {}
        Ok(Some(outcome)) => {
            eprintln!("archy: an interrupted switch was found and dealt with first:");
            if let Err(e) = report(Ok(outcome)) {
                eprintln!("{}", e.message);
            }
        }
        Err(e) => {
            return Err(CliError::system(format!(
                "an interrupted switch could not be recovered: {e}"
            )));
        }
    }
    if let Some(line) = ota::settle_pending(switch.store.state_dir().path(), switch.store, phase)? {
        eprintln!("archy: {line}");
    }
    Ok(())
}

/// Where an interrupted switch stopped, from its journal; `None` when no
/// switch was in flight.
fn interrupted_phase(state_dir: &Path) -> Result<Option<Phase>, CliError> {
    Journal::load(&archy_store::StateDir::new(state_dir))
        .map(|j| j.map(|j| j.phase))
        .map_err(|e| CliError::system(e.to_string()))
}

/// `archy --root DIR switch`: realizes generation `built` (just built under
/// the caller's lock): its files, unit files and [Install] links under DIR
/// (building a node image offline).
/// No systemd is involved and no health check runs: the units start at the
/// image's first boot, so the generation stays `built`, not `good`.
fn offline(
    store: &archy_store::Store,
    built: u64,
    root: &Path,
    args: SwitchArgs<'_>,
) -> Result<(), CliError> {
    let load = |n: u64| {
        archy_build::load(store, n)
            .map(|l| l.graph)
            .map_err(|e| CliError::system(format!("cannot load generation {n}: {e}")))
    };
    let live = store
        .current()
        .map_err(|e| CliError::system(e.to_string()))?
        .map(load)
        .transpose()?;
    let new = load(built)?;
    let realizer = Realizer::new(root, &archy_store::StateDir::new(args.state_dir));
    let observed = realizer
        .observe(&new, args.adopt)
        .map_err(|e| CliError::system(e.to_string()))?;
    let plan = archy_plan::plan(live.as_ref(), &new, &observed);
    let refused: Vec<_> = plan.refusals().cloned().collect();
    if !refused.is_empty() {
        return report(Err(SwitchError::Refused(refused)));
    }
    realizer
        .apply_changes(&new, &plan)
        .map_err(|e| CliError::system(e.to_string()))?;
    store
        .set_current(built)
        .map_err(|e| CliError::system(e.to_string()))?;
    print!("{}", archy_plan::display::render(&plan));
    println!(
        "realized generation {} under {} (no systemd here: its units start at the first boot)",
        built,
        root.display()
    );
    let images: std::collections::BTreeSet<String> = new
        .nodes
        .iter()
        .filter_map(|n| match &n.resource {
            archy_graph::Resource::Container(c) => Some(c.image.reference()),
            _ => None,
        })
        .collect();
    if !images.is_empty() {
        // Containers never pull at start (Pull=never): the image must
        // carry them, or a first `archy switch` on the node makes them.
        println!("no podman here: the node needs these images before its containers start:");
        for i in images {
            println!("  {i}");
        }
    }
    Ok(())
}

/// `archy recover`: what the boot-time unit runs. Finishes or undoes an
/// interrupted switch; exit 0 when none was in flight or it was finished,
/// 2 when it was rolled back.
pub fn recover(args: SwitchArgs<'_>) -> Result<(), CliError> {
    // Another archy holds the lock: it is a switch or rollback, which
    // recovers first itself. (The boot unit must not wait for it: a switch
    // that starts the boot unit would wait for the boot unit.)
    let _lock = match archy_store::StateLock::acquire(
        &archy_store::StateDir::new(args.state_dir),
        "archy recover",
        args.wait,
    ) {
        Err(archy_store::StoreError::LockHeld { .. }) => {
            println!("another archy is running and recovers by itself: nothing to do");
            return Ok(());
        }
        other => other.map_err(|e| CliError::system(e.to_string()))?,
    };
    let phase = interrupted_phase(args.state_dir)?;
    let settle = |store: &archy_store::Store| -> Result<(), CliError> {
        // An OTA release whose switch was under way is recorded as
        // installed, failed or to be tried again.
        if let Some(line) = ota::settle_pending(args.state_dir, store, phase)? {
            println!("{line}");
        }
        Ok(())
    };
    if phase.is_none() {
        if archy_store::StateDir::new(args.state_dir)
            .ota_record()
            .exists()
        {
            settle(&store::open(args.state_dir)?)?;
        }
        println!("no interrupted switch: nothing to do");
        return Ok(());
    }
    let store = store::open(args.state_dir)?;
    let recovered = on_node(&store, args, "archy recover", |switch| Ok(switch.recover()))?;
    settle(&store)?;
    match recovered {
        Ok(Some(outcome)) => report(Ok(outcome)),
        Ok(None) => {
            println!("no interrupted switch: nothing to do");
            Ok(())
        }
        Err(e) => report(Err(e)),
    }
}
