//! The plan for a person: grouped, one line an action, with its reason.

use std::fmt::Write as _;

use crate::plan::{ChangeOp, ImageOp, Plan, UnitOp};

fn op_word(op: &ChangeOp) -> &'static str {
    match op {
        ChangeOp::Create => "create",
        ChangeOp::Update => "update",
        ChangeOp::Chmod => "chmod",
        ChangeOp::Remove => "remove",
        ChangeOp::Keep => "keep",
        ChangeOp::Generate => "generate",
        ChangeOp::Refuse => "REFUSE",
        ChangeOp::Adopt => "adopt",
    }
}

/// The plan as text: changes, units, what stays.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        let _ = writeln!(out, "nothing to do: {} resources unchanged", plan.unchanged);
        return out;
    }
    if !plan.images.is_empty() {
        let _ = writeln!(out, "images, before anything else:");
        for i in &plan.images {
            let op = match i.op {
                ImageOp::Pull => "pull",
                ImageOp::Build => "build",
            };
            let _ = writeln!(
                out,
                "  {op:<8} {:<47} for {}",
                i.reference,
                i.containers.join(", ")
            );
        }
    }
    if !plan.clobber.is_empty() {
        let _ = writeln!(
            out,
            "data removed (--clobber), once the app's units are stopped; nothing brings it back, not even a rollback:"
        );
        for c in &plan.clobber {
            let _ = writeln!(out, "  clobber  {} (app {}'s data)", c.path, c.app);
        }
    }
    let data: Vec<_> = plan
        .data
        .iter()
        .filter(|d| d.op != crate::data::DataOp::Record || d.from.is_some())
        .collect();
    if !data.is_empty() {
        let _ = writeln!(out, "data, once its app's units are stopped:");
        for d in data {
            let _ = writeln!(out, "  {d}");
        }
    }
    if !plan.changes.is_empty() {
        let _ = writeln!(out, "changes:");
        for c in &plan.changes {
            let _ = writeln!(
                out,
                "  {:<8} {:<6} {:<40} {}",
                op_word(&c.op),
                c.key.kind.as_str(),
                c.key.id,
                c.reason
            );
        }
    }
    let touched: Vec<_> = plan.units.iter().filter(|u| u.op != UnitOp::Skip).collect();
    if !touched.is_empty() {
        let _ = writeln!(out, "units, in order:");
        for u in touched {
            let by = match &u.with {
                Some(root) => format!(" (systemd restarts it with {root})"),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:<8} {:<47} {}{by}",
                u.op.to_string(),
                u.unit.as_str(),
                u.reason
            );
        }
    }
    let skipped: Vec<_> = plan.units.iter().filter(|u| u.op == UnitOp::Skip).collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "units left alone:");
        for u in skipped {
            let _ = writeln!(out, "  {:<56} {}", u.unit.as_str(), u.reason);
        }
    }
    if !plan.unit_files_changed.is_empty() {
        let _ = writeln!(
            out,
            "unit files written or removed: {} (then systemd reloads)",
            plan.unit_files_changed.len()
        );
    }
    let _ = writeln!(out, "unchanged: {} resources", plan.unchanged);
    out
}
