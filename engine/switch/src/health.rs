//! The health gate's checks: a unit is active and not restart-looping, an
//! HTTP URL answers with the expected status, a TCP port accepts, a command
//! exits 0. Each is polled until it passes or its deadline runs out.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::{Duration, Instant};

use archy_graph::resource::{HealthProbe, HealthSpec};
use archy_systemd::{ServiceManager, UnitName};

/// How often a failing check is tried again.
const POLL: Duration = Duration::from_millis(200);
/// How long a unit must stay active without a restart to count as healthy.
const SETTLE: Duration = Duration::from_secs(2);
/// One attempt's own limit (connect, request).
const ATTEMPT: Duration = Duration::from_secs(5);

/// A unit the generation wants running that died after its jobs: failed,
/// or waiting to be restarted (`auto-restart`), or restarted by systemd
/// while it was watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadUnit {
    pub unit: UnitName,
    /// What systemd says of it.
    pub state: String,
    /// The last lines of its journal (may be empty).
    pub journal: String,
}

impl std::fmt::Display for DeadUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} died after it was started: {}", self.unit, self.state)?;
        if !self.journal.trim().is_empty() {
            write!(f, "\n  journal of {}:", self.unit)?;
            for line in self.journal.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

/// How many journal lines a dead unit's report carries.
const JOURNAL_LINES: u32 = 15;

/// The default failed-unit gate: watches `units` (those the generation
/// wants running) until each has been active without a restart for
/// [`SETTLE`] (a unit that was so before the gate passes at once), and
/// returns those that are failed, in `auto-restart`, or were restarted by
/// systemd meanwhile. A unit that systemd cannot tell about is not judged
/// here (its start job said what there was to say).
pub fn dead_units(units: &[UnitName], systemd: &dyn ServiceManager) -> Vec<DeadUnit> {
    let started = Instant::now();
    let mut dead = Vec::new();
    // Each unit with the restart count first seen (`None`: not seen yet).
    let mut watched: Vec<(UnitName, Option<u32>)> =
        units.iter().map(|u| (u.clone(), None)).collect();
    loop {
        let mut still = Vec::new();
        for (unit, restarts) in watched {
            let Ok(state) = systemd.unit_state(&unit) else {
                continue;
            };
            if let Some(why) = died(&state, restarts) {
                dead.push(report(&unit, why, systemd));
            } else if !(state.is_active() && settled_before(state.active_since_us)) {
                still.push((unit, Some(restarts.unwrap_or(state.n_restarts))));
            }
        }
        watched = still;
        if watched.is_empty() || started.elapsed() >= SETTLE {
            break;
        }
        std::thread::sleep(POLL);
    }
    dead.sort_by(|a, b| a.unit.cmp(&b.unit));
    dead
}

/// Why a unit counts as dead, if it does: failed, waiting to restart, or
/// restarted since `restarts` was seen.
fn died(state: &archy_systemd::UnitState, restarts: Option<u32>) -> Option<String> {
    let shown = format!("{} ({})", state.active_state, state.sub_state);
    if state.active_state == archy_systemd::ActiveState::Failed {
        return Some(shown);
    }
    if state.sub_state == "auto-restart" {
        return Some(format!("{shown}, restarted {} times", state.n_restarts));
    }
    match restarts {
        Some(before) if state.n_restarts > before => Some(format!(
            "{shown}, restarted by systemd {} times while watched",
            state.n_restarts - before
        )),
        _ => None,
    }
}

fn report(unit: &UnitName, state: String, systemd: &dyn ServiceManager) -> DeadUnit {
    DeadUnit {
        unit: unit.clone(),
        state,
        journal: systemd
            .journal_tail(unit, JOURNAL_LINES)
            .unwrap_or_default(),
    }
}

/// A check that did not pass, and why, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    pub check: String,
    pub why: String,
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.why)
    }
}

/// What one attempt found: pass, or why not (the last reason is reported).
type Attempt = Result<(), String>;

/// Runs every check at once, each until it passes or its own deadline
/// runs out, and returns those that failed, in the order given. At once,
/// because the checks wait on different services: the gate then takes as
/// long as its slowest check, not the sum of them all, which is what a bad
/// release costs before it is rolled back.
pub fn check_all(specs: &[&HealthSpec], systemd: &dyn ServiceManager) -> Vec<Unhealthy> {
    check_all_in(specs, systemd, &SwitchContext::default())
}

/// [`check_all`], in the switch to `ctx.generation`.
pub fn check_all_in(
    specs: &[&HealthSpec],
    systemd: &dyn ServiceManager,
    ctx: &SwitchContext,
) -> Vec<Unhealthy> {
    std::thread::scope(|scope| {
        let running: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || check_in(spec, systemd, ctx)))
            .collect();
        running
            .into_iter()
            .zip(specs)
            .filter_map(|(thread, spec)| match thread.join() {
                Ok(result) => result.err(),
                Err(_) => Some(Unhealthy {
                    check: spec.probe.id(),
                    why: "the check itself crashed".to_string(),
                }),
            })
            .collect()
    })
}

/// What an archy check needs to know of the switch: which generation the
/// new binary must read, and where.
#[derive(Debug, Clone, Default)]
pub struct SwitchContext {
    pub generation: u64,
    pub state_dir: std::path::PathBuf,
}

/// Runs one check until it passes or `spec.within` runs out.
pub fn check(spec: &HealthSpec, systemd: &dyn ServiceManager) -> Result<(), Unhealthy> {
    check_in(spec, systemd, &SwitchContext::default())
}

/// [`check`], in the switch to `ctx.generation`.
pub fn check_in(
    spec: &HealthSpec,
    systemd: &dyn ServiceManager,
    ctx: &SwitchContext,
) -> Result<(), Unhealthy> {
    let deadline = Instant::now() + Duration::from_millis(spec.within.0);
    let mut unit_watch = UnitWatch::default();
    loop {
        let attempt = match &spec.probe {
            HealthProbe::Unit(unit) => unit_watch.attempt(unit, systemd),
            HealthProbe::Http { url, expect } => http(url, *expect),
            HealthProbe::Tcp { host, port } => tcp(host, *port),
            HealthProbe::Cmd(argv) => cmd(argv),
            HealthProbe::Archy(binary) => archy(binary.as_str(), ctx),
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(why) if Instant::now() + POLL >= deadline => {
                return Err(Unhealthy {
                    check: spec.probe.id(),
                    why: format!("{why} (gave up after {} ms)", spec.within.0),
                });
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// A unit passes once it has been active, with no restart, for [`SETTLE`].
#[derive(Debug, Default)]
struct UnitWatch {
    since: Option<(Instant, u32)>,
}

impl UnitWatch {
    fn attempt(&mut self, unit: &UnitName, systemd: &dyn ServiceManager) -> Attempt {
        let state = systemd.unit_state(unit).map_err(|e| e.to_string())?;
        if !state.is_active() {
            self.since = None;
            return Err(format!(
                "{unit} is {} ({})",
                state.active_state, state.sub_state
            ));
        }
        if self.since.is_none() && settled_before(state.active_since_us) {
            // Active without a restart for longer than the window already
            // (a unit the switch did not touch, typically): no need to
            // watch it for another window.
            return Ok(());
        }
        match self.since {
            Some((start, restarts)) if restarts == state.n_restarts => {
                if start.elapsed() >= SETTLE {
                    Ok(())
                } else {
                    Err(format!("{unit} is active, settling"))
                }
            }
            Some((_, restarts)) => {
                self.since = Some((Instant::now(), state.n_restarts));
                Err(format!(
                    "{unit} keeps restarting ({} restarts so far)",
                    state.n_restarts.max(restarts)
                ))
            }
            None => {
                self.since = Some((Instant::now(), state.n_restarts));
                Err(format!("{unit} is active, settling"))
            }
        }
    }
}

/// Whether a unit that became active at `since_us` (CLOCK_MONOTONIC, as
/// systemd reports it; 0 when unknown) has been so for [`SETTLE`] by now.
fn settled_before(since_us: u64) -> bool {
    if since_us == 0 {
        return false;
    }
    monotonic_us().saturating_sub(since_us) >= SETTLE.as_micros() as u64
}

/// CLOCK_MONOTONIC now, in microseconds: the clock of systemd's
/// `*TimestampMonotonic` properties.
fn monotonic_us() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (now.tv_sec as u64) * 1_000_000 + (now.tv_nsec as u64) / 1_000
}

fn http(url: &str, expect: u16) -> Attempt {
    if url.starts_with("https://") {
        return Err(
            "https health checks are not supported; probe the service's plain HTTP port".into(),
        );
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(ATTEMPT))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) if response.status().as_u16() == expect => Ok(()),
        Ok(response) => Err(format!(
            "answered {}, expected {expect}",
            response.status().as_u16()
        )),
        Err(e) => Err(format!("no answer: {e}")),
    }
}

fn tcp(host: &str, port: u16) -> Attempt {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, ATTEMPT) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// A new archy binary works: it says its version, and it reads the
/// generation being switched to (`status` exits 0, or 4 for a node that
/// differs from it: the binary ran either way). A crash, a missing
/// library or an exit 1 fails it.
fn archy(binary: &str, ctx: &SwitchContext) -> Attempt {
    let started = Instant::now();
    let result = archy_runs(binary, ctx);
    tracing::info!(
        target: "archy::timing",
        "new archy checked: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    result
}

fn archy_runs(binary: &str, ctx: &SwitchContext) -> Attempt {
    cmd(&[binary.to_string(), "--version".to_string()])?;
    let out = Command::new(binary)
        .arg("--state-dir")
        .arg(&ctx.state_dir)
        .args(["status", "--generation", &ctx.generation.to_string()])
        .output()
        .map_err(|e| format!("cannot run {binary}: {e}"))?;
    match out.status.code() {
        Some(0 | 4) => Ok(()),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("").trim();
            Err(format!(
                "{binary} status --generation {} exited with {}{}",
                ctx.generation,
                out.status,
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ))
        }
    }
}

fn cmd(argv: &[String]) -> Attempt {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("").trim();
    Err(format!(
        "exited with {}{}",
        out.status,
        if last.is_empty() {
            String::new()
        } else {
            format!(": {last}")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use archy_graph::quantity::Millis;
    use archy_systemd::fake::FakeServiceManager;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn spec(probe: HealthProbe, ms: u64) -> HealthSpec {
        HealthSpec {
            probe,
            within: Millis(ms),
        }
    }

    #[test]
    fn commands_pass_and_fail_with_a_reason() {
        let fake = FakeServiceManager::new();
        assert!(check(&spec(HealthProbe::Cmd(vec!["true".into()]), 1000), &fake).is_ok());
        let e = check(&spec(HealthProbe::Cmd(vec!["false".into()]), 300), &fake).unwrap_err();
        assert!(e.why.contains("exited with"), "{e}");
        assert_eq!(e.check, "cmd:false");
    }

    #[test]
    fn tcp_passes_when_a_port_listens() {
        let fake = FakeServiceManager::new();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let probe = HealthProbe::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        assert!(check(&spec(probe, 1000), &fake).is_ok());
        drop(listener);
        let probe = HealthProbe::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let e = check(&spec(probe, 300), &fake).unwrap_err();
        assert!(e.why.contains("refused"), "{e}");
    }

    /// A one-shot HTTP server on loopback answering `status`.
    fn serve(status: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(8) {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        port
    }

    #[test]
    fn http_checks_the_status() {
        let fake = FakeServiceManager::new();
        let port = serve(200);
        let ok = HealthProbe::Http {
            url: format!("http://127.0.0.1:{port}/"),
            expect: 200,
        };
        assert!(check(&spec(ok, 2000), &fake).is_ok());
        let port = serve(503);
        let bad = HealthProbe::Http {
            url: format!("http://127.0.0.1:{port}/"),
            expect: 200,
        };
        let e = check(&spec(bad, 300), &fake).unwrap_err();
        assert!(e.why.contains("answered 503, expected 200"), "{e}");
    }

    #[test]
    fn a_unit_active_for_longer_than_the_window_passes_at_once() {
        let fake = FakeServiceManager::new();
        let now_us = monotonic_us();
        let unit = |name: &str, since_us: u64| {
            fake.set_unit(
                name,
                archy_systemd::UnitState {
                    active_since_us: since_us,
                    ..archy_systemd::fake::active(7)
                },
            );
            HealthProbe::Unit(archy_graph::names::UnitName::try_from(name).unwrap())
        };
        let old = unit("old.service", now_us.saturating_sub(10_000_000));
        let started = Instant::now();
        assert!(check(&spec(old, 5000), &fake).is_ok());
        assert!(started.elapsed() < SETTLE, "{:?}", started.elapsed());
        // Just started: watched for the whole window.
        let fresh = unit("fresh.service", now_us);
        let started = Instant::now();
        assert!(check(&spec(fresh, 5000), &fake).is_ok());
        assert!(started.elapsed() >= SETTLE, "{:?}", started.elapsed());
    }

    #[test]
    fn an_inactive_unit_fails_with_its_state() {
        let fake = FakeServiceManager::new();
        fake.set_unit("a.service", archy_systemd::fake::inactive());
        let probe = HealthProbe::Unit(archy_graph::names::UnitName::try_from("a.service").unwrap());
        let e = check(&spec(probe, 300), &fake).unwrap_err();
        assert!(e.why.contains("a.service is inactive"), "{e}");
    }

    #[test]
    fn an_active_unit_passes_after_settling() {
        let fake = FakeServiceManager::new();
        fake.set_unit("a.service", archy_systemd::fake::active(42));
        let probe = HealthProbe::Unit(archy_graph::names::UnitName::try_from("a.service").unwrap());
        assert!(check(&spec(probe, 5000), &fake).is_ok());
    }

    #[test]
    fn a_dead_unit_fails_with_its_state_and_journal() {
        let fake = FakeServiceManager::new();
        let name = |n: &str| UnitName::try_from(n).unwrap();
        fake.set_unit(
            "failed.service",
            archy_systemd::UnitState {
                active_state: archy_systemd::ActiveState::Failed,
                sub_state: "failed".into(),
                ..archy_systemd::fake::inactive()
            },
        );
        fake.set_journal("failed.service", "failed.service: exited with status 1");
        fake.set_unit(
            "looping.service",
            archy_systemd::UnitState {
                active_state: archy_systemd::ActiveState::Activating,
                sub_state: "auto-restart".into(),
                n_restarts: 3,
                ..archy_systemd::fake::inactive()
            },
        );
        let old = monotonic_us().saturating_sub(10_000_000);
        fake.set_unit(
            "fine.service",
            archy_systemd::UnitState {
                active_since_us: old,
                ..archy_systemd::fake::active(7)
            },
        );
        let started = Instant::now();
        let dead = dead_units(
            &[
                name("fine.service"),
                name("looping.service"),
                name("failed.service"),
            ],
            &fake,
        );
        // Nothing left to watch: no settling.
        assert!(started.elapsed() < SETTLE, "{:?}", started.elapsed());
        let units: Vec<&str> = dead.iter().map(|d| d.unit.as_str()).collect();
        assert_eq!(units, ["failed.service", "looping.service"]);
        let text = dead[0].to_string();
        assert!(
            text.contains("failed.service died after it was started: failed (failed)"),
            "{text}"
        );
        assert!(text.contains("exited with status 1"), "{text}");
        assert!(dead[1].to_string().contains("auto-restart"), "{}", dead[1]);
    }

    #[test]
    fn a_fresh_unit_is_watched_for_the_window() {
        let fake = FakeServiceManager::new();
        fake.set_unit(
            "fresh.service",
            archy_systemd::UnitState {
                active_since_us: monotonic_us(),
                ..archy_systemd::fake::active(7)
            },
        );
        let started = Instant::now();
        let dead = dead_units(&[UnitName::try_from("fresh.service").unwrap()], &fake);
        assert!(dead.is_empty(), "{dead:?}");
        assert!(
            started.elapsed() >= SETTLE - POLL,
            "{:?}",
            started.elapsed()
        );
    }
}
