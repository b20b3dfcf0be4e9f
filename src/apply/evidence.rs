//! Evidence before decommission: a role's legacy trust, or a legacy principal's grant, is
//! removed only when CloudTrail shows the legacy path unused and the new one working
//! ([`crate::evidence`]). What the evidence does not clear is held: not written, journaled as
//! held with why, and named when the run stops.

use super::ApplyError;
use super::journal::{Entry, Journal, now};
use crate::backend::Backend;
use crate::evidence::{Judgement, assess};
use crate::plan::{Phase, Plan, Step};

/// What decommission asks of the evidence (`--since`, `--quiet-for`, `--without-evidence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceGate {
    /// Each decommission step waits for its evidence: read over the last `since` seconds, the
    /// legacy path unused for `quiet_for`.
    Required { since: i64, quiet_for: i64 },
    /// `--without-evidence`: decommission proceeds on the plan alone, and the journal says so.
    Waived,
}

/// A decommission step the evidence did not clear, and why.
pub(super) struct Held<'p> {
    pub(super) step: &'p Step,
    pub(super) reason: String,
}

/// Judges the pending decommission steps (of a run that applies them); returns those held.
pub(super) fn held<'p>(
    plan: &'p Plan,
    pending: &[&'p Step],
    gate: EvidenceGate,
    backend: &mut dyn Backend,
) -> Result<Vec<Held<'p>>, ApplyError> {
    let decommissioning: Vec<&Step> = pending
        .iter()
        .copied()
        .filter(|s| s.phase == Phase::Decommission)
        .collect();
    if decommissioning.is_empty() {
        return Ok(Vec::new());
    }
    let EvidenceGate::Required { since, quiet_for } = gate else {
        return Ok(Vec::new());
    };
    let regions = crate::evidence::regions(&plan.cluster.region);
    let roles = crate::evidence::decommissioned_roles(plan);
    let reading = backend
        .trail(&regions, crate::time::now() - since, &roles)
        .map_err(|source| ApplyError::NothingWritten {
            step: "the evidence before decommission (CloudTrail)".into(),
            source,
        })?;
    let judgement = Judgement {
        as_of: reading.as_of,
        since,
        quiet_for,
    };
    let evidence = assess(plan, &reading.trail, judgement, &reading.pods);
    let held: Vec<Held<'p>> = evidence
        .held_steps()
        .into_iter()
        .filter_map(|(id, reason)| {
            let step = decommissioning.iter().find(|s| s.id == id)?;
            Some(Held {
                step,
                reason: reason.to_string(),
            })
        })
        .collect();
    Ok(held)
}

/// Journals what the evidence decided for a run that decommissions: each held step with why, or
/// that the run went ahead without evidence.
pub(super) fn record(
    journal: &mut Journal,
    pending: &[&Step],
    gate: EvidenceGate,
    held: &[Held<'_>],
) -> Result<(), ApplyError> {
    if gate == EvidenceGate::Waived && pending.iter().any(|s| s.phase == Phase::Decommission) {
        journal.append(Entry::WithoutEvidence { time: now() })?;
    }
    for held in held {
        journal.append(Entry::Held {
            step: held.step.id.clone(),
            reason: held.reason.clone(),
            time: now(),
        })?;
    }
    Ok(())
}

/// The held steps, one a line, for the message that stops the run.
pub(super) fn describe(held: &[Held<'_>]) -> String {
    held.iter()
        .map(|h| format!("  {}: {}\n", h.step.id, h.reason))
        .collect()
}
