//! Computing a plan: the live generation and the new one in (plus what
//! apply observed on disk), the actions out. Pure.
//!
//! Units follow NixOS's switch-to-configuration: a unit is compared section
//! by section, ignoring cosmetic keys; a changed unit is restarted, or
//! reloaded, or left running, as its resource says; removed units are
//! stopped; new installed units are started. Restart triggers come from
//! the graph: a unit whose referenced file or secret changed has a new
//! hash, and the changed reference is the reason.

use std::collections::{BTreeMap, BTreeSet};

use archy_graph::names::UnitName;
use archy_graph::resource::{ImageSource, OnChange};
use archy_graph::{Graph, Kind, Node, Resource, ResourceKey};
use archy_units::{GraphUnits as _, UnitSource};

use crate::drift::Drift;
use crate::order::{dependency_order, stop_order};
use crate::plan::{Change, ChangeOp, ImageAction, ImageOp, Plan, Reason, UnitAction, UnitOp};
use crate::repair::{drifted, drifted_unit, lost_secrets, merged, stronger};

/// What apply saw on the node before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Target paths (files, unit files) that exist and that archy did not
    /// write.
    pub unowned: BTreeSet<String>,
    /// Secrets of the new generation whose value is missing on disk.
    pub missing_secrets: BTreeSet<String>,
    /// Take over unowned paths (backing them up) instead of refusing.
    pub adopt: bool,
    /// Of `unowned`, the software paths that already hold exactly the
    /// declared bytes (an archy binary installed by hand): taken over
    /// without `--adopt`, since nothing there changes.
    pub identical: BTreeSet<String>,
    /// Image references of the new generation that podman does not have.
    pub missing_images: BTreeSet<String>,
    /// Declared container names taken by a container archy did not make.
    pub foreign_containers: BTreeSet<String>,
    /// Of `foreign_containers`, those that run: adopted as they run
    /// ([`crate::adopt`]), with how they differ from their declaration.
    /// A foreign container that does not run is removed and its unit
    /// started, as nothing is lost by it.
    pub adoptions: BTreeMap<String, crate::Adoption>,
    /// Adopted containers the operator asked to hand over now (`archy
    /// adopt --now`).
    pub hand_over: BTreeSet<String>,
    /// Of `missing_secrets`, those the description imports from an old
    /// node's file (`archy::secret_imports`), and whether that file can
    /// give the value.
    pub imports: BTreeMap<String, Import>,
    /// Containers rootless podman runs (name to the owner's uid): a
    /// declared one is not adoptable by a rootful archy.
    pub rootless: BTreeMap<String, u32>,
    /// How the node differs from the live generation (`archy status`,
    /// `archy reconcile`); empty for a switch, which rewrites what changed
    /// and leaves the rest.
    pub drift: Vec<Drift>,
    /// Units of the live generation that systemd reports not running
    /// (inactive or failed). A unit not listed is taken to run: so it is
    /// when nobody asked systemd (an image built offline).
    pub inactive_units: BTreeSet<UnitName>,
    /// Apps whose data directories the switch removes (`archy switch
    /// --clobber APP`).
    pub clobber: crate::lifecycle::Clobbering,
    /// A rollback: the generation it goes back to ran every unit it wants,
    /// so a changed unit that is down (it failed in the generation that
    /// failed) is started. A switch forward leaves such a unit down.
    pub start_wanted: bool,
    /// The data version each contract's directory is at on the node, by
    /// contract name (none: archy never recorded one).
    pub data: BTreeMap<String, u32>,
    /// The complete snapshots the node keeps, by contract name.
    pub snapshots: BTreeMap<String, Vec<crate::data::SnapshotSeen>>,
    /// What the plan may do with data newer than the new generation's code.
    pub data_mode: crate::data::DataMode,
}

/// A secret's value to be taken from an old node's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The file, on the node.
    pub from: String,
    /// Why it cannot give the value (missing, empty, ...), or `None`.
    pub unusable: Option<String>,
}

/// The order changes are applied in: accounts before the files they own.
/// Software comes after files: a program's config is in place before it.
const CHANGE_KINDS: [Kind; 7] = [
    Kind::Group,
    Kind::User,
    Kind::Dir,
    Kind::Secret,
    Kind::File,
    Kind::Artifact,
    Kind::Tree,
];

/// Plans the switch from `live` (none on a node archy never switched) to
/// `new`.
pub fn plan(live: Option<&Graph>, new: &Graph, observed: &Observed) -> Plan {
    let mut observed = merged(observed);
    // An adopted container runs its app: its held unit is planned as one
    // that runs, so that a change that would restart it is seen.
    for name in observed.adoptions.keys() {
        if let Ok(unit) = UnitName::try_from(format!("{name}.service").as_str()) {
            observed.inactive_units.remove(&unit);
        }
    }
    let observed = &observed;
    let lost = lost_secrets(new, observed);
    let old: BTreeMap<&ResourceKey, &Node> = live
        .map(|g| g.nodes.iter().map(|n| (&n.key, n)).collect())
        .unwrap_or_default();
    let now: BTreeMap<&ResourceKey, &Node> = new.nodes.iter().map(|n| (&n.key, n)).collect();
    let mut plan = Plan {
        changes: Vec::new(),
        images: images(new, observed),
        unit_files_changed: Vec::new(),
        units: Vec::new(),
        unchanged: 0,
        clobber: Vec::new(),
        data: Vec::new(),
    };
    for kind in CHANGE_KINDS {
        for n in new.nodes.iter().filter(|n| n.key.kind == kind) {
            match old.get(&n.key) {
                None => plan.changes.push(created(n, observed)),
                Some(o) if o.hash == n.hash => {
                    let drifted = || drifted(n, observed, &lost);
                    match secret_missing(n, observed).or_else(drifted) {
                        Some(c) => plan.changes.push(c),
                        None => plan.unchanged += 1,
                    }
                }
                Some(o) => plan.changes.push(
                    same_secret_missing(o, n, observed)
                        .unwrap_or_else(|| changed(o, n, &old, &now)),
                ),
            }
        }
        let gone = live
            .into_iter()
            .flat_map(|g| &g.nodes)
            .filter(|o| o.key.kind == kind);
        for o in gone.filter(|o| !now.contains_key(&o.key)) {
            plan.changes.push(removed(o));
        }
    }
    imported(&now, observed, &mut plan);
    let remade = rederived_files(&old, new, &mut plan);
    for o in live.into_iter().flat_map(|g| &g.nodes) {
        if o.key.kind == Kind::Volume && !now.contains_key(&o.key) {
            plan.changes
                .push(change(o, ChangeOp::Keep, Reason::DataKept));
        }
    }
    plan.data = crate::data::steps(live, new, observed);
    plan_units(live, new, observed, &remade, &mut plan);
    crate::lifecycle::clobber(live, new, observed, &mut plan);
    plan
}

/// A secret made anew (missing on disk) keeps its hash: the files derived
/// from it are written again, and what reads it or them restarts. So does
/// what reads a file or directory that drifted and is written again.
/// Returns those secrets, files and directories.
fn rederived_files(
    old: &BTreeMap<&ResourceKey, &Node>,
    new: &Graph,
    plan: &mut Plan,
) -> BTreeSet<ResourceKey> {
    let mut remade: BTreeSet<ResourceKey> = plan
        .changes
        .iter()
        .filter(|c| {
            let generated = c.key.kind == Kind::Secret && c.op == ChangeOp::Generate;
            let rewritten = matches!(c.reason, Reason::Drifted { .. })
                && matches!(c.op, ChangeOp::Update | ChangeOp::Create);
            generated || rewritten
        })
        .map(|c| c.key.clone())
        .collect();
    let planned: BTreeSet<ResourceKey> = plan.changes.iter().map(|c| c.key.clone()).collect();
    for n in &new.nodes {
        let Resource::File(f) = &n.resource else {
            continue;
        };
        let unchanged =
            old.get(&n.key).is_some_and(|o| o.hash == n.hash) && !planned.contains(&n.key);
        let from = f.derives.iter().find(|s| {
            remade.contains(&ResourceKey {
                kind: Kind::Secret,
                id: s.to_string(),
            })
        });
        if let (true, Some(secret)) = (unchanged, from) {
            plan.unchanged = plan.unchanged.saturating_sub(1);
            plan.changes.push(change(
                n,
                ChangeOp::Update,
                Reason::Metadata {
                    what: format!("derived from secret {secret}, made anew"),
                },
            ));
            remade.insert(n.key.clone());
        }
    }
    remade
}

/// The images to pull or build: those of the new generation's containers
/// that podman does not have.
fn images(new: &Graph, observed: &Observed) -> Vec<ImageAction> {
    let mut out: Vec<ImageAction> = Vec::new();
    for n in &new.nodes {
        let Resource::Container(c) = &n.resource else {
            continue;
        };
        let reference = c.image.reference();
        if !observed.missing_images.contains(&reference) {
            continue;
        }
        match out.iter_mut().find(|a| a.reference == reference) {
            Some(a) => a.containers.push(c.name.to_string()),
            None => out.push(ImageAction {
                reference,
                op: match c.image {
                    ImageSource::Reference(_) => ImageOp::Pull,
                    ImageSource::Build { .. } => ImageOp::Build,
                },
                containers: vec![c.name.to_string()],
            }),
        }
    }
    out
}

pub(crate) fn change(n: &Node, op: ChangeOp, reason: Reason) -> Change {
    Change {
        key: n.key.clone(),
        op,
        reason,
    }
}

fn created(n: &Node, observed: &Observed) -> Change {
    let in_the_way = matches!(n.key.kind, Kind::File | Kind::Artifact | Kind::Tree)
        && observed.unowned.contains(&n.key.id);
    let same = observed.identical.contains(&n.key.id);
    match (in_the_way, observed.adopt || same, n.key.kind) {
        (true, false, _) => change(n, ChangeOp::Refuse, Reason::NotOwned),
        (true, true, _) => change(n, ChangeOp::Create, Reason::Adopted),
        (_, _, Kind::Secret) => change(n, ChangeOp::Generate, Reason::New),
        _ => change(n, ChangeOp::Create, Reason::New),
    }
}

/// A missing secret the description imports is taken from its old file;
/// when that file cannot give it, a secret that must not be made anew
/// (`regenerate: false`, a wallet password) refuses the switch, and one
/// that may is generated.
fn imported(now: &BTreeMap<&ResourceKey, &Node>, observed: &Observed, plan: &mut Plan) {
    for c in &mut plan.changes {
        if c.key.kind != Kind::Secret || c.op != ChangeOp::Generate {
            continue;
        }
        let Some(import) = observed.imports.get(&c.key.id) else {
            continue;
        };
        let regenerate = now
            .get(&c.key)
            .is_some_and(|n| matches!(&n.resource, Resource::Secret(s) if s.regenerate));
        let from = import.from.clone();
        match (&import.unusable, regenerate) {
            (None, _) => c.reason = Reason::Imported { from },
            (Some(why), false) => {
                c.op = ChangeOp::Refuse;
                c.reason = Reason::ImportMissing {
                    from,
                    problem: why.clone(),
                };
            }
            (Some(why), true) => {
                c.reason = Reason::ImportMissingGenerated {
                    from,
                    problem: why.clone(),
                };
            }
        }
    }
}

/// A secret the live generation had whose value went missing on disk is
/// generated again when the secret says that is safe (`regenerate`), and
/// otherwise kept missing and reported, so that nothing made from it
/// changes.
fn secret_missing(n: &Node, observed: &Observed) -> Option<Change> {
    let Resource::Secret(s) = &n.resource else {
        return None;
    };
    if !observed.missing_secrets.contains(&n.key.id) {
        return None;
    }
    Some(if s.regenerate {
        change(
            n,
            ChangeOp::Generate,
            Reason::Metadata {
                what: "missing on disk".into(),
            },
        )
    } else {
        change(n, ChangeOp::Keep, Reason::SecretLost)
    })
}

/// A secret whose mode or owner changed and whose value is missing: as
/// [`secret_missing`] (only a new version or length asks for a new value).
fn same_secret_missing(o: &Node, n: &Node, observed: &Observed) -> Option<Change> {
    match (&o.resource, &n.resource) {
        (Resource::Secret(a), Resource::Secret(b))
            if a.version == b.version && a.length == b.length =>
        {
            secret_missing(n, observed)
        }
        _ => None,
    }
}

type Nodes<'a> = BTreeMap<&'a ResourceKey, &'a Node>;

fn changed(o: &Node, n: &Node, old: &Nodes, now: &Nodes) -> Change {
    let rederived = match &n.resource {
        Resource::File(f) => changed_secret(&f.derives, old, now).map(|s| s.to_string()),
        _ => None,
    };
    match (&o.resource, &n.resource) {
        (Resource::File(a), Resource::File(b)) if a.content != b.content => change(
            n,
            ChangeOp::Update,
            Reason::Metadata {
                what: "content changed".into(),
            },
        ),
        // Same text, but a secret it is filled from changed (a new
        // version): written again with the new value, not only chmodded.
        (Resource::File(_), Resource::File(_)) if rederived.is_some() => change(
            n,
            ChangeOp::Update,
            Reason::Metadata {
                what: format!(
                    "derived from secret {}, which changed",
                    rederived.unwrap_or_default()
                ),
            },
        ),
        (Resource::File(a), Resource::File(b)) => {
            let what = metadata_change((a.mode, &a.owner, &a.group), (b.mode, &b.owner, &b.group));
            change(n, ChangeOp::Chmod, Reason::Metadata { what })
        }
        (Resource::Dir(a), Resource::Dir(b)) => {
            let what = metadata_change((a.mode, &a.owner, &a.group), (b.mode, &b.owner, &b.group));
            change(n, ChangeOp::Chmod, Reason::Metadata { what })
        }
        (Resource::Artifact(a), Resource::Artifact(b)) if a.hash != b.hash => change(
            n,
            ChangeOp::Update,
            Reason::Metadata {
                what: format!("new software: {} -> {}", short(&a.hash), short(&b.hash)),
            },
        ),
        (Resource::Tree(a), Resource::Tree(b)) if a.manifest != b.manifest => change(
            n,
            ChangeOp::Update,
            Reason::Metadata {
                what: format!(
                    "new tree: blake3:{} -> blake3:{}",
                    &a.manifest.to_string()[..12],
                    &b.manifest.to_string()[..12]
                ),
            },
        ),
        (Resource::Secret(a), Resource::Secret(b))
            if a.version != b.version || a.length != b.length =>
        {
            let what = format!("version {} -> {}", a.version, b.version);
            change(n, ChangeOp::Generate, Reason::Metadata { what })
        }
        (Resource::Secret(a), Resource::Secret(b)) => {
            let what = metadata_change((a.mode, &a.owner, &a.group), (b.mode, &b.owner, &b.group));
            change(n, ChangeOp::Chmod, Reason::Metadata { what })
        }
        _ => change(
            n,
            ChangeOp::Update,
            Reason::Metadata {
                what: "settings changed".into(),
            },
        ),
    }
}

/// A declared hash, shortened for the plan: `blake3:0123456789ab`.
fn short(hash: &archy_graph::resource::ContentHash) -> String {
    let text = hash.to_string();
    let (algo, hex) = text.split_once(':').unwrap_or(("", &text));
    format!("{algo}:{}", &hex[..hex.len().min(12)])
}

/// The first of `derives` whose hash differs between the generations.
fn changed_secret<'s>(
    derives: &'s [archy_graph::names::SecretName],
    old: &Nodes,
    now: &Nodes,
) -> Option<&'s archy_graph::names::SecretName> {
    derives.iter().find(|s| {
        let key = ResourceKey {
            kind: Kind::Secret,
            id: s.to_string(),
        };
        old.get(&key).map(|n| n.hash) != now.get(&key).map(|n| n.hash)
    })
}

type Meta<'a> = (
    archy_graph::names::Mode,
    &'a Option<archy_graph::names::AccountName>,
    &'a Option<archy_graph::names::AccountName>,
);

/// "mode 0644 -> 0640, owner root -> app".
fn metadata_change(a: Meta, b: Meta) -> String {
    let name = |o: &Option<archy_graph::names::AccountName>| {
        o.as_ref()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "root".into())
    };
    let mut parts = Vec::new();
    if a.0 != b.0 {
        parts.push(format!("mode {} -> {}", a.0, b.0));
    }
    if a.1 != b.1 {
        parts.push(format!("owner {} -> {}", name(a.1), name(b.1)));
    }
    if a.2 != b.2 {
        parts.push(format!("group {} -> {}", name(a.2), name(b.2)));
    }
    parts.join(", ")
}

fn removed(o: &Node) -> Change {
    let disposable = matches!(&o.resource, Resource::Dir(d) if d.disposable);
    match o.key.kind {
        Kind::File | Kind::Artifact | Kind::Tree => change(o, ChangeOp::Remove, Reason::Removed),
        Kind::Dir if disposable => change(o, ChangeOp::Remove, Reason::Removed),
        // Directories, secrets and accounts hold data or own files: a
        // switch never deletes them.
        _ => change(o, ChangeOp::Keep, Reason::DataKept),
    }
}

/// The references whose hash differs between the generations (or that
/// are new to the unit), in the unit's order.
pub(crate) fn changed_references<'n>(
    o: &Node,
    n: &'n Node,
    live: &Graph,
    new: &Graph,
) -> Vec<&'n ResourceKey> {
    n.refs
        .iter()
        .filter(|r| {
            let before = live.get(r).map(|x| x.hash);
            let after = new.get(r).map(|x| x.hash);
            before != after || !o.refs.contains(r)
        })
        .collect()
}

/// What to name as the change behind the reference `r`: `r` itself, or,
/// for a unit (an instance's template) whose text is the same and that
/// changed only through what it reads (a new binary in ExecStart=), that
/// file, so the plan says `reads /usr/local/bin/validator, which changed`.
fn what_changed(r: &ResourceKey, live: &Graph, new: &Graph) -> String {
    if r.kind == Kind::Unit
        && let (Some(o), Some(n)) = (live.get(r), new.get(r))
        && o.resource == n.resource
        && let Some(deeper) = changed_references(o, n, live, new).first()
    {
        return deeper.id.clone();
    }
    r.id.clone()
}

/// Whether `r` is a file or directory at or below one of `triggers`.
fn is_reload_trigger(r: &ResourceKey, triggers: &[archy_graph::names::AbsPath]) -> bool {
    matches!(r.kind, Kind::File | Kind::Dir | Kind::Artifact | Kind::Tree)
        && triggers.iter().any(|t| {
            let t = t.as_str().trim_end_matches('/');
            r.id == t
                || r.id
                    .strip_prefix(t)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// What a switch does to one unit: its job (or none) and why, and for a
/// `stop-start` unit, that it is stopped with its old definition before
/// the files are written.
struct UnitDecision {
    op: UnitOp,
    reason: Reason,
    stop_first: bool,
}

impl UnitDecision {
    fn new(op: UnitOp, reason: Reason) -> Self {
        UnitDecision {
            op,
            reason,
            stop_first: false,
        }
    }
}

/// What a unit that is in both generations needs, and why. NixOS's
/// switch-to-configuration semantics: only what runs is restarted (a
/// changed unit that does not run stays down, but a rollback starts it
/// when the generation it returns to wants it running); targets are
/// started, never restarted; slices are never restarted; units that refuse
/// manual jobs get none; a mount whose only change is its options is
/// remounted; a change of only reload-trigger files reloads.
fn changed_unit(
    before: &UnitSource,
    after: &UnitSource,
    live: &Graph,
    new: &Graph,
    observed: &Observed,
) -> UnitDecision {
    let sections = after.changed_sections(before);
    let running: Vec<String> = sections
        .iter()
        .filter(|s| *s != "Install")
        .cloned()
        .collect();
    let references = changed_references(before.node, after.node, live, new);
    let reason = match (running.is_empty(), references.first()) {
        (false, _) => Reason::UnitChanged {
            sections: running.clone(),
        },
        (true, Some(r)) => Reason::Reads {
            what: what_changed(r, live, new),
        },
        (true, None) if sections.is_empty() => Reason::Cosmetic,
        (true, None) => Reason::InstallOnly,
    };
    let restart_worthy = matches!(reason, Reason::UnitChanged { .. } | Reason::Reads { .. });
    let skip = |reason| UnitDecision::new(UnitOp::Skip, reason);
    if !restart_worthy {
        return skip(reason);
    }
    let unit_type = after.unit.unit_type();
    if after.is_template() {
        return skip(Reason::Template);
    }
    if unit_type == "slice" {
        return skip(Reason::Slice);
    }
    if observed.inactive_units.contains(&after.unit) {
        let wanted = after.installed() && !after.refuses_manual_start();
        // A rollback restarts rather than starts: "not running" was seen
        // when the rollback planned, and a unit that was coming up then
        // (a restart the interrupted switch asked for, which systemd
        // finished after archy died) would take a start as done while it
        // runs with the failed generation's files (a bind-mounted file
        // keeps the old inode). A restart of a unit that is down starts it.
        let op = if unit_type == "target" || after.refuses_manual_stop() {
            UnitOp::Start
        } else {
            UnitOp::Restart
        };
        return if wanted && observed.start_wanted {
            UnitDecision::new(op, reason)
        } else {
            skip(Reason::NotRunning)
        };
    }
    if unit_type == "target" {
        // Restarting a target restarts what is bound to it; a start pulls
        // in what it newly wants and leaves the rest running.
        return if after.refuses_manual_start() {
            skip(Reason::RefusesManualStart)
        } else {
            UnitDecision::new(UnitOp::Start, reason)
        };
    }
    if after.refuses_manual_stop() {
        return skip(Reason::RefusesManualStop);
    }
    if after.refuses_manual_start() {
        return skip(Reason::RefusesManualStart);
    }
    let running_service = (unit_type == "socket")
        .then(|| socket_service(after))
        .flatten()
        .filter(|s| !observed.inactive_units.contains(s));
    if let Some(service) = running_service {
        return skip(Reason::SocketInUse { service });
    }
    if references.is_empty() && after.only_mount_options_changed(before) {
        // A remount: what a tmpfs holds survives it, not a restart.
        return UnitDecision::new(UnitOp::Reload, reason);
    }
    let triggers = after.reload_triggers();
    if running.is_empty() && references.iter().all(|r| is_reload_trigger(r, triggers)) {
        return UnitDecision::new(UnitOp::Reload, reason);
    }
    match after.on_change {
        OnChange::Keep => skip(Reason::KeptRunning),
        OnChange::Reload => UnitDecision::new(UnitOp::Reload, reason),
        OnChange::Restart => UnitDecision::new(UnitOp::Restart, reason),
        // Only a service has an ExecStop= worth running with the old
        // definition; anything else restarts.
        OnChange::StopStart if unit_type == "service" => UnitDecision {
            op: UnitOp::Start,
            reason,
            stop_first: true,
        },
        OnChange::StopStart => UnitDecision::new(UnitOp::Restart, reason),
    }
}

/// The service a socket activates: its `Service=`, or the service of the
/// same name.
fn socket_service(socket: &UnitSource) -> Option<UnitName> {
    let named = archy_units::units::section_values(&socket.sections, "Socket", "Service");
    match named.last() {
        Some(s) => UnitName::try_from(*s).ok(),
        None => {
            let base = socket.unit.as_str().strip_suffix(".socket")?;
            UnitName::try_from(format!("{base}.service").as_str()).ok()
        }
    }
}

/// An adopted container's held unit that systemd would restart along with
/// a unit it needs (see `follow_restarts`) does not run, so systemd would
/// not: the app restarts anyway, so it is handed over, with a job of its
/// own; one that differs stays held.
fn hand_over_followers(sources: &[UnitSource], observed: &Observed, actions: &mut [UnitAction]) {
    for a in actions.iter_mut().filter(|a| a.with.is_some()) {
        let adoption = sources
            .iter()
            .find(|u| u.unit == a.unit && u.node.key.kind == Kind::Container)
            .and_then(|u| observed.adoptions.get(&u.node.key.id));
        let Some(adoption) = adoption else {
            continue;
        };
        a.with = None;
        if adoption.mode() == crate::AdoptMode::Differs {
            a.op = UnitOp::Skip;
            a.reason = Reason::HandOverPending {
                mode: adoption.mode(),
            };
        } else {
            a.op = UnitOp::Start;
            a.reason = Reason::HandOver {
                because: Box::new(a.reason.clone()),
            };
        }
    }
}

/// What happens to the unit of an adopted container that the plan would
/// otherwise `op`: the hand-over when the switch restarts it anyway (a
/// unit the live generation had) or the operator asked for it, and the
/// container is safe to hand over; else it stays held.
fn held(
    a: &crate::Adoption,
    container: &str,
    in_live: bool,
    op: UnitOp,
    reason: Reason,
    observed: &Observed,
) -> (UnitOp, Reason) {
    let safe = a.mode() != crate::AdoptMode::Differs;
    if safe && observed.hand_over.contains(container) {
        return (UnitOp::Start, Reason::HandOverAsked);
    }
    let restarts = in_live && matches!(op, UnitOp::Restart | UnitOp::Start);
    if safe && restarts {
        return (
            UnitOp::Start,
            Reason::HandOver {
                because: Box::new(reason),
            },
        );
    }
    (UnitOp::Skip, Reason::HandOverPending { mode: a.mode() })
}

/// What a unit that is new in this generation needs.
fn new_unit(u: &UnitSource) -> (UnitOp, Reason) {
    if u.is_template() {
        (UnitOp::Skip, Reason::Template)
    } else if !u.installed() {
        (UnitOp::Skip, Reason::NotInstalled)
    } else if u.refuses_manual_start() {
        (UnitOp::Skip, Reason::RefusesManualStart)
    } else {
        (UnitOp::Start, Reason::New)
    }
}

fn plan_units(
    live: Option<&Graph>,
    new: &Graph,
    observed: &Observed,
    remade: &BTreeSet<ResourceKey>,
    plan: &mut Plan,
) {
    // Drop-ins are planned on their own (crate::instances), for the unit
    // they belong to.
    let (live_dropins, live_sources): (Vec<UnitSource>, Vec<UnitSource>) = live
        .map(|g| g.unit_sources())
        .unwrap_or_default()
        .into_iter()
        .partition(|u| u.is_dropin());
    let before: BTreeMap<&UnitName, &UnitSource> =
        live_sources.iter().map(|u| (&u.unit, u)).collect();
    let (dropins, sources): (Vec<UnitSource>, Vec<UnitSource>) =
        new.unit_sources().into_iter().partition(|u| u.is_dropin());
    let mut actions: Vec<UnitAction> = Vec::new();
    // `stop-start` units: stopped before the files, started after.
    let mut stop_first: Vec<UnitName> = Vec::new();
    for u in &sources {
        let old = before.get(&u.unit).copied();
        let foreign = u.node.key.kind == Kind::Container
            && observed.foreign_containers.contains(&u.node.key.id);
        let adoption = foreign
            .then(|| observed.adoptions.get(&u.node.key.id))
            .flatten();
        match adoption {
            Some(a) if !a.held => plan.changes.push(change(
                u.node,
                ChangeOp::Adopt,
                Reason::Adopting {
                    mode: a.mode(),
                    differences: a.listed(),
                },
            )),
            Some(_) => {}
            None if foreign => {
                plan.changes
                    .push(change(u.node, ChangeOp::Adopt, Reason::ForeignContainer));
            }
            None => {}
        }
        if u.node.key.kind == Kind::Container
            && let Some(uid) = observed.rootless.get(&u.node.key.id)
        {
            plan.changes.push(change(
                u.node,
                ChangeOp::Refuse,
                Reason::Rootless { uid: *uid },
            ));
            continue;
        }
        // An adopted container in the way stays: its unit is planned as
        // any other, then held (below).
        let replaced = foreign && adoption.is_none();
        let reread = u.node.refs.iter().find(|r| remade.contains(r));
        let drift: Vec<&Drift> = observed
            .drift
            .iter()
            .filter(|d| d.unit().as_ref() == Some(&u.unit))
            .filter(|d| !matches!(d, Drift::UnitFile { path, .. } if *path != u.path))
            .collect();
        let (op, reason) = match (old, live) {
            // A unit whose app stopped or started again has the same
            // hash, but not the same [Install]: its file is rewritten.
            (Some(o), _) if o.node.hash == u.node.hash && o.sections == u.sections && !replaced => {
                let rewrite = drift
                    .iter()
                    .any(|d| matches!(d, Drift::UnitFile { .. } | Drift::Disabled { .. }));
                if rewrite {
                    plan.unit_files_changed.push(u.file());
                }
                let reread = reread.map(|what| match u.on_change {
                    _ if u.is_template() => (UnitOp::Skip, Reason::Template),
                    _ if observed.inactive_units.contains(&u.unit) => {
                        (UnitOp::Skip, Reason::NotRunning)
                    }
                    OnChange::Keep => (UnitOp::Skip, Reason::KeptRunning),
                    OnChange::Reload => (
                        UnitOp::Reload,
                        Reason::Reads {
                            what: what.id.clone(),
                        },
                    ),
                    OnChange::Restart | OnChange::StopStart => (
                        UnitOp::Restart,
                        Reason::Reads {
                            what: what.id.clone(),
                        },
                    ),
                });
                let asked = adoption.is_some() && observed.hand_over.contains(&u.node.key.id);
                match (drifted_unit(u, &drift), reread) {
                    (None, None) if asked => (UnitOp::Skip, Reason::HandOverAsked),
                    (None, None) => {
                        plan.unchanged += 1;
                        continue;
                    }
                    (None, Some(r)) => r,
                    (Some(d), None) => d,
                    // One job does both; its reason is the one that asked
                    // for that job.
                    (Some(d), Some(r)) if stronger(d.0, r.0) == d.0 => d,
                    (Some(_), Some(r)) => r,
                }
            }
            (Some(o), Some(live)) => {
                if o.sections != u.sections || o.path != u.path {
                    plan.unit_files_changed.push(u.file());
                }
                let d = changed_unit(o, u, live, new, observed);
                if d.stop_first {
                    stop_first.push(u.unit.clone());
                }
                (d.op, d.reason)
            }
            _ => {
                if observed.unowned.contains(&u.path) && !observed.adopt {
                    plan.changes.push(Change {
                        key: ResourceKey {
                            kind: Kind::Unit,
                            id: u.unit.to_string(),
                        },
                        op: ChangeOp::Refuse,
                        reason: Reason::NotOwned,
                    });
                    continue;
                }
                plan.unit_files_changed.push(u.file());
                new_unit(u)
            }
        };
        // The container in the way goes; its unit starts in its place.
        let (op, reason) = match adoption {
            None if foreign => (UnitOp::Start, Reason::ForeignContainer),
            None => (op, reason),
            Some(a) => held(a, &u.node.key.id, old.is_some(), op, reason, observed),
        };
        actions.push(UnitAction {
            unit: u.unit.clone(),
            op,
            reason,
            with: None,
        });
    }
    let now: BTreeSet<&UnitName> = sources.iter().map(|u| &u.unit).collect();
    let mut stops = Vec::new();
    for (unit, o) in &before {
        if now.contains(unit) {
            continue;
        }
        plan.unit_files_changed.push(o.file());
        if o.refuses_manual_stop() {
            // systemd would refuse the stop; it runs until it stops itself.
            actions.push(UnitAction {
                unit: (*unit).clone(),
                op: UnitOp::Skip,
                reason: Reason::RefusesManualStop,
                with: None,
            });
        } else if !o.is_template() && !observed.inactive_units.contains(*unit) {
            // Only what runs is stopped (a removed oneshot that ran and
            // exited needs no job).
            stops.push((*unit).clone());
        }
    }
    crate::instances::plan_dropins(
        live,
        new,
        &live_dropins,
        &dropins,
        &sources,
        observed,
        remade,
        &stops,
        plan,
        &mut actions,
    );
    stop_sockets_first(
        &live_sources,
        &sources,
        &mut stop_first,
        observed,
        &mut actions,
    );
    plan.unit_files_changed.sort_by(|a, b| a.path.cmp(&b.path));
    plan.unit_files_changed.dedup_by(|a, b| a.path == b.path);
    follow_restarts(&sources, observed, &mut actions);
    start_what_stops_with(&sources, &stop_first, observed, &mut actions);
    crate::lifecycle::start_restarted_apps(&live_sources, &sources, observed, &mut actions);
    crate::lifecycle::stop_stopped_apps(
        &live_sources,
        &sources,
        observed,
        &mut actions,
        &mut stops,
        &mut stop_first,
    );
    crate::data::stop_for_data(
        new,
        &plan.data,
        &sources,
        observed,
        &mut actions,
        &mut stops,
        &mut stop_first,
    );
    hand_over_followers(&sources, observed, &mut actions);
    let by_op = |op: UnitOp| -> Vec<UnitName> {
        actions
            .iter()
            .filter(|a| a.op == op)
            .map(|a| a.unit.clone())
            .collect()
    };
    let activates = |u: &UnitName| {
        actions
            .iter()
            .any(|a| &a.unit == u && matches!(a.reason, Reason::Activates { .. }))
    };
    if live.is_some() {
        let all_stops: Vec<UnitName> = stops.iter().chain(&stop_first).cloned().collect();
        // A socket goes before the service it activates (see
        // `stop_sockets_first`); otherwise, dependents first.
        let mut order = stop_order(&live_sources, &all_stops);
        order.sort_by_key(|u| !activates(u));
        for unit in order {
            // A stop-start unit's stop carries the reason of its change.
            let reason = match actions
                .iter()
                .find(|a| a.unit == unit && stop_first.contains(&unit))
            {
                Some(a) => a.reason.clone(),
                None => crate::lifecycle::stop_reason(&sources, &unit).unwrap_or(Reason::Removed),
            };
            plan.units.push(UnitAction {
                unit,
                op: UnitOp::Stop,
                reason,
                with: None,
            });
        }
    }
    for op in [UnitOp::Reload, UnitOp::Restart, UnitOp::Start] {
        let mut order = dependency_order(&sources, &by_op(op));
        // A socket that was stopped first listens again before its
        // service starts, so the service is handed its socket.
        order.sort_by_key(|u| !activates(u));
        for unit in order {
            if let Some(a) = actions.iter().find(|a| a.unit == unit) {
                plan.units.push(a.clone());
            }
        }
    }
    plan.units
        .extend(actions.iter().filter(|a| a.op == UnitOp::Skip).cloned());
}

/// A running socket that activates a `stop-start` service is stopped
/// before it and started after the new files: with the socket listening, a
/// client connecting between the service's stop and the daemon-reload
/// would start the service again with its old definition, and the start
/// after the files would then find it running. (NixOS stops such a socket
/// with its service for the same reason.)
fn stop_sockets_first(
    live_sources: &[UnitSource],
    sources: &[UnitSource],
    stop_first: &mut Vec<UnitName>,
    observed: &Observed,
    actions: &mut Vec<UnitAction>,
) {
    let services: Vec<UnitName> = stop_first
        .iter()
        .filter(|u| u.as_str().ends_with(".service"))
        .cloned()
        .collect();
    let sockets: Vec<&UnitSource> = live_sources
        .iter()
        .filter(|s| {
            s.unit.as_str().ends_with(".socket")
                && !observed.inactive_units.contains(&s.unit)
                && !stop_first.contains(&s.unit)
                && sources.iter().any(|n| n.unit == s.unit)
        })
        .collect();
    for socket in sockets {
        let Some(service) = socket_service(socket).filter(|s| services.contains(s)) else {
            continue;
        };
        stop_first.push(socket.unit.clone());
        let action = UnitAction {
            unit: socket.unit.clone(),
            op: UnitOp::Start,
            reason: Reason::Activates { service },
            with: None,
        };
        match actions.iter_mut().find(|a| a.unit == socket.unit) {
            Some(a) => *a = action,
            None => actions.push(action),
        }
    }
}

/// systemd stops a unit along with one it `Requires=` (or is bound to, or
/// part of): when a `stop-start` unit is stopped, those that run stop
/// with it, and nothing would start them again. Each gets a start after
/// the files (a restart planned for it becomes that start, since a restart
/// of a stopped unit is not carried out).
fn start_what_stops_with(
    sources: &[UnitSource],
    stop_first: &[UnitName],
    observed: &Observed,
    actions: &mut Vec<UnitAction>,
) {
    let mut stopped: BTreeSet<UnitName> = stop_first.iter().cloned().collect();
    loop {
        let mut grew = false;
        for u in sources {
            if stopped.contains(&u.unit)
                || u.is_template()
                || observed.inactive_units.contains(&u.unit)
            {
                continue;
            }
            let Some(dep) = u.restarted_with().into_iter().find(|d| stopped.contains(d)) else {
                continue;
            };
            stopped.insert(u.unit.clone());
            grew = true;
            match actions.iter_mut().find(|a| a.unit == u.unit) {
                Some(a) if a.op == UnitOp::Restart || a.op == UnitOp::Reload => {
                    a.op = UnitOp::Start;
                    a.with = None;
                }
                Some(a) if a.op == UnitOp::Skip => {
                    a.op = UnitOp::Start;
                    a.reason = Reason::Follows { unit: dep };
                }
                Some(_) => {}
                None => actions.push(UnitAction {
                    unit: u.unit.clone(),
                    op: UnitOp::Start,
                    reason: Reason::Follows { unit: dep },
                    with: None,
                }),
            }
        }
        if !grew {
            return;
        }
    }
}

/// systemd restarts a unit along with one it `Requires=`: such units are
/// planned as restarts carried by that one (transitively), and get no job
/// of their own, so each restarts exactly once.
fn follow_restarts(sources: &[UnitSource], observed: &Observed, actions: &mut Vec<UnitAction>) {
    loop {
        let restarting: BTreeMap<UnitName, UnitName> = actions
            .iter()
            .filter(|a| a.op == UnitOp::Restart)
            .map(|a| {
                (
                    a.unit.clone(),
                    a.with.clone().unwrap_or_else(|| a.unit.clone()),
                )
            })
            .collect();
        let mut changed = false;
        // systemd carries a restart over only to units that run.
        for u in sources
            .iter()
            .filter(|u| !observed.inactive_units.contains(&u.unit))
        {
            let Some(cause) = u
                .restarted_with()
                .into_iter()
                .find_map(|dep| restarting.get(&dep).map(|root| (dep, root.clone())))
            else {
                continue;
            };
            let (dep, root) = cause;
            match actions.iter_mut().find(|a| a.unit == u.unit) {
                Some(a) if a.op == UnitOp::Restart && a.with.is_some() => {}
                // A reload of a unit systemd restarts anyway is not needed.
                Some(a) if matches!(a.op, UnitOp::Restart | UnitOp::Skip | UnitOp::Reload) => {
                    if a.op == UnitOp::Skip && matches!(a.reason, Reason::Template) {
                        continue;
                    }
                    if a.op == UnitOp::Skip {
                        a.reason = Reason::Follows { unit: dep };
                    }
                    a.op = UnitOp::Restart;
                    a.with = Some(root);
                    changed = true;
                }
                Some(_) => {}
                None if !u.is_template() => {
                    actions.push(UnitAction {
                        unit: u.unit.clone(),
                        op: UnitOp::Restart,
                        reason: Reason::Follows { unit: dep },
                        with: Some(root),
                    });
                    changed = true;
                }
                None => {}
            }
        }
        if !changed {
            return;
        }
    }
}
