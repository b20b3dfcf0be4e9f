//! The batch runner: moves steps' targets in a direction (read, compare, write, journal) and
//! counts what this run has sent, so a failure says whether the migration may be part-way.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use super::compare::{matches, sides, stale};
use super::journal::{Action, Entry, Journal, Outcome, now};
use super::preflight::Reading;
use super::{ApplyError, Direction, Mode};
use crate::backend::{Backend, BackendError};
use crate::plan::Step;

/// Who makes a batch's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Maker {
    /// This run writes them.
    Tool,
    /// The targets' owners: the run only reads whether they have.
    Owner,
    /// This run, playing the owners' part in a rehearsal ([`super::Owners::Play`]).
    PlayedOwner,
}

impl Maker {
    /// Who makes `step` in a run that treats owners as `owners`.
    pub(super) fn of(step: &Step, owners: super::Owners) -> Maker {
        match (&step.owner, owners) {
            (None, _) | (Some(_), super::Owners::Patch) => Maker::Tool,
            (Some(_), super::Owners::Await(_)) => Maker::Owner,
            (Some(_), super::Owners::Play) => Maker::PlayedOwner,
        }
    }
}

/// Steps in batches: read, compare, write, journal.
pub(super) struct Runner<'a> {
    pub(super) journal: &'a mut Journal,
    pub(super) backend: &'a mut dyn Backend,
    pub(super) mode: Mode,
    /// Writes made in this run, for error messages.
    pub(super) changed: usize,
    /// Whether this run has sent a write (made or failed): from then on a failure may leave the
    /// migration part-way.
    pub(super) sent: bool,
    /// Step id → the preflight's reading of its target, until the step uses it.
    pub(super) readings: BTreeMap<String, Reading>,
    pub(super) reading_fresh_for: std::time::Duration,
    /// In a dry run, the targets an earlier step of the run would have changed: a later step on
    /// one starts where that step leaves it, which no read can show before anything is written.
    pub(super) would_change: std::collections::BTreeSet<crate::plan::Target>,
}

impl Runner<'_> {
    /// A backend failure of `step`, as far as this run has got.
    pub(super) fn failed(&self, step: &str, source: BackendError) -> ApplyError {
        if self.sent {
            ApplyError::Backend {
                step: step.to_string(),
                changed: self.changed,
                source,
            }
        } else {
            ApplyError::NothingWritten {
                step: format!("step {step}"),
                source,
            }
        }
    }

    /// Appends to the journal; a failure after a write is reported as such.
    fn record(&mut self, entry: Entry) -> Result<(), ApplyError> {
        let (sent, changed) = (self.sent, self.changed);
        self.journal.append(entry).map_err(|source| {
            if sent {
                ApplyError::JournalAfterWrite { changed, source }
            } else {
                ApplyError::Journal(source)
            }
        })
    }

    /// Moves the steps' targets (distinct ones) in `direction`, journaled: all read, compared,
    /// then written together, as `maker` makes them. Each step's outcome (none: the step waits
    /// for its owner, its target still where the step starts) and the batch's time in
    /// milliseconds.
    pub(super) fn batch(
        &mut self,
        steps: &[&Step],
        direction: Direction,
        maker: Maker,
    ) -> Result<Vec<(Option<Outcome>, u64)>, ApplyError> {
        let started = Instant::now();
        let action = match direction {
            Direction::Apply => Action::Apply,
            Direction::Rollback => Action::Rollback,
        };
        let execute = self.mode == Mode::Execute;
        let (done, written) = match maker {
            Maker::Tool => (Outcome::AlreadyDone, Some(Outcome::Changed)),
            Maker::Owner => (Outcome::ByOwner, None),
            // A dry run playing the owners would write as any other.
            Maker::PlayedOwner if !execute => (Outcome::ByOwner, Some(Outcome::Changed)),
            Maker::PlayedOwner => (Outcome::ByOwner, Some(Outcome::ByOwner)),
        };
        let mut outcomes = Vec::with_capacity(steps.len());
        let mut writes: Vec<(&Step, Value, Value)> = Vec::new();
        for (step, observed) in steps.iter().zip(self.observe(steps)) {
            let observed = observed.map_err(|source| self.failed(&step.id, source))?;
            let (from, to) = sides(step, direction);
            let observed = if self.would_change.contains(&step.target) {
                from.clone()
            } else {
                observed
            };
            if matches(step, &observed, &to) {
                outcomes.push(Some(done));
            } else if matches(step, &observed, &from) {
                outcomes.push(written);
                if !execute {
                    self.would_change.insert(step.target.clone());
                }
                if written.is_some() {
                    writes.push((*step, from, to));
                }
            } else {
                if execute {
                    self.record(Entry::Start {
                        step: step.id.clone(),
                        action,
                        time: now(),
                    })?;
                    self.record(Entry::Failed {
                        step: step.id.clone(),
                        action,
                        reason: "stale state".into(),
                        time: now(),
                    })?;
                }
                return Err(stale(step, &from, &observed, self.changed));
            }
        }
        if execute {
            for (step, _) in steps.iter().zip(&outcomes).filter(|(_, o)| o.is_some()) {
                self.record(Entry::Start {
                    step: step.id.clone(),
                    action,
                    time: now(),
                })?;
            }
            let writes: Vec<(&Step, &Value, &Value)> = writes
                .iter()
                .map(|(step, from, to)| (*step, from, to))
                .collect();
            let results = self.backend.write_many(&writes);
            // A write the peer refused, or refused as concurrent, was not made; any other
            // outcome (made, or no answer) may have changed the target.
            self.sent |= results
                .iter()
                .any(|r| !matches!(r, Err(e) if e.kind().is_refusal()));
            let mut failures = BTreeMap::new();
            for ((step, from, _), result) in writes.iter().zip(results) {
                match result {
                    Err(source) => {
                        failures.insert(step.id.clone(), (*from, source));
                    }
                    Ok(()) => self.changed += 1,
                }
            }
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let mut first_error = None;
            for (step, outcome) in steps.iter().zip(&outcomes) {
                let Some(outcome) = outcome else { continue };
                match failures.remove(&step.id) {
                    Some((from, source)) => {
                        let (reason, error) = match source {
                            BackendError::Concurrent { observed, .. } => (
                                "changed concurrently".to_string(),
                                stale(step, from, &observed, self.changed),
                            ),
                            source => (source.to_string(), self.failed(&step.id, source)),
                        };
                        self.record(Entry::Failed {
                            step: step.id.clone(),
                            action,
                            reason,
                            time: now(),
                        })?;
                        first_error.get_or_insert(error);
                    }
                    None => {
                        self.record(Entry::Done {
                            step: step.id.clone(),
                            action,
                            outcome: *outcome,
                            elapsed_ms,
                            time: now(),
                        })?;
                    }
                }
            }
            if let Some(error) = first_error {
                return Err(error);
            }
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(outcomes.into_iter().map(|o| (o, elapsed_ms)).collect())
    }

    /// Each step's target as it is now, in the order of `steps`: the preflight's reading where it
    /// may stand in (the target's writes are conditional, or the reading is recent), else read
    /// again. A reading serves once: a later step on the target reads what the earlier wrote.
    fn observe(&mut self, steps: &[&Step]) -> Vec<Result<Value, BackendError>> {
        let mut observed: Vec<Option<Result<Value, BackendError>>> = steps
            .iter()
            .map(|step| {
                let reading = self.readings.remove(&step.id)?;
                let usable = self.backend.conditional_writes(&step.target)
                    || reading.taken.elapsed() < self.reading_fresh_for;
                usable.then(|| Ok(reading.observed.value()))
            })
            .collect();
        let unread: Vec<usize> = (0..steps.len())
            .filter(|&i| observed[i].is_none())
            .collect();
        let to_read: Vec<&Step> = unread.iter().map(|&i| steps[i]).collect();
        for (i, result) in unread.into_iter().zip(self.backend.read_many(&to_read)) {
            observed[i] = Some(result);
        }
        observed.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests;
