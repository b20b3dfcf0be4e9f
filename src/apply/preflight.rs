//! The preflight: before a run's first write, the target of each step it starts from is read and
//! must be in the step's starting or finished state; the readings stand in for later reads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::compare::{matches, sides, stale};
use super::runner::Maker;
use super::{ApplyError, Direction, Owners};
use crate::backend::Backend;
use crate::plan::Step;

/// What a run is about to do, shown before asking for confirmation.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// The steps this run is about to write.
    pub to_change: Vec<String>,
    /// The steps whose owners must make them: this run only reads whether they have.
    pub awaiting_owner: Vec<String>,
    pub already_done: usize,
    pub destination: String,
}

/// The preflight of a run whose steps still to take are `pending` (in the run's order): the first
/// step on each target must find it in a known state. Returns the readings, by step, and what
/// the run is about to do.
pub(super) fn preflight(
    backend: &mut dyn Backend,
    pending: &[&Step],
    direction: Direction,
    owners: Owners,
) -> Result<(BTreeMap<String, Reading>, Preview), ApplyError> {
    let mut seen_targets = BTreeSet::new();
    let firsts: Vec<&Step> = pending
        .iter()
        .copied()
        .filter(|s| seen_targets.insert(&s.target))
        .collect();
    let readings = read_firsts(backend, &firsts, direction)?;
    let mut preview = Preview {
        destination: backend.describe(),
        ..Preview::default()
    };
    for step in pending {
        if readings.get(&step.id).is_some_and(|r| r.done) {
            preview.already_done += 1;
        } else if Maker::of(step, owners) == Maker::Owner {
            preview.awaiting_owner.push(step.id.clone());
        } else {
            preview.to_change.push(step.id.clone());
        }
    }
    Ok((readings, preview))
}

/// Reads the target of each of `firsts` (the first step of the run on each target), which must
/// be in the step's starting or finished state; a reading stands in for the step's read before
/// its write. Read in chunks, each stamped with the time it started, so no reading looks younger
/// than it is; a chunk a few batches long keeps the backend's concurrent reads busy.
fn read_firsts(
    backend: &mut dyn Backend,
    firsts: &[&Step],
    direction: Direction,
) -> Result<BTreeMap<String, Reading>, ApplyError> {
    let mut readings = BTreeMap::new();
    for chunk in firsts.chunks(backend.concurrency().max(1) * 4) {
        let taken = Instant::now();
        for (step, observed) in chunk.iter().zip(backend.read_many(chunk)) {
            let observed = observed.map_err(|source| ApplyError::NothingWritten {
                step: format!("step {} (the preflight's read)", step.id),
                source,
            })?;
            let (from, to) = sides(step, direction);
            let done = matches(step, &observed, &to);
            if !done && !matches(step, &observed, &from) {
                return Err(stale(step, &from, &observed, 0));
            }
            readings.insert(
                step.id.clone(),
                Reading {
                    observed: crate::json::CompactJson::new(&observed),
                    taken,
                    done,
                },
            );
        }
    }
    Ok(readings)
}

/// How long a preflight reading of a target whose writes are not conditional (IAM) may stand in
/// for the read right before its write, by default. Older readings, for instance taken before a
/// confirmation prompt that waited, are taken again: a change someone makes to such a target
/// after it was read can be overwritten only within this window.
pub const READING_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// A target as the preflight found it, as compact text until used: a whole plan's IAM documents
/// held as trees would cost several times their size.
pub(super) struct Reading {
    pub(super) observed: crate::json::CompactJson,
    pub(super) taken: Instant,
    /// The target was already in the state the step produces.
    pub(super) done: bool,
}
