//! Steps whose targets have owners ([`crate::ownership`]): a run does not write them, it reads
//! whether the owner has made them. At the end of a phase, the phase's steps still waiting are
//! read again until their owners have made them or the wait is over; then the run goes on, or
//! stops saying what each owner has still to merge (or revert).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::journal::Outcome;
use super::runner::{Maker, Runner};
use super::{ApplyError, Direction, OWNER_POLL};
use crate::ownership::Owner;
use crate::plan::{Phase, Step};

/// The steps of the current phase that wait for their owners, in the run's order.
#[derive(Default)]
pub(super) struct Held<'p> {
    steps: Vec<&'p Step>,
}

impl<'p> Held<'p> {
    pub(super) fn push(&mut self, step: &'p Step) {
        self.steps.push(step);
    }

    /// Waits, up to `wait`, for the owners of the held steps of `phase` to make them, reading
    /// each again every [`OWNER_POLL`]; those made are journaled as their owners' and returned
    /// (in the run's order) for their wave to be verified. Steps still waiting after that stop
    /// the run.
    pub(super) fn settle(
        &mut self,
        run: &mut Runner<'_>,
        phase: Phase,
        direction: Direction,
        wait: Duration,
        out: &mut dyn FnMut(String),
    ) -> Result<Vec<&'p Step>, ApplyError> {
        if self.steps.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        if !wait.is_zero() {
            out(format!(
                "-- waiting up to {} s for the owners of {} {phase} step(s): {}",
                wait.as_secs(),
                self.steps.len(),
                owners_of(&self.steps).join(", ")
            ));
        }
        let mut made = Vec::new();
        loop {
            let mut still = Vec::with_capacity(self.steps.len());
            for step in std::mem::take(&mut self.steps) {
                match run.batch(&[step], direction, Maker::Owner)?.first() {
                    Some((Some(outcome), _)) => {
                        debug_assert_eq!(*outcome, Outcome::ByOwner);
                        out(format!(
                            "{:<16} {step_id}",
                            done_label(direction),
                            step_id = step.id
                        ));
                        made.push(step);
                    }
                    _ => still.push(step),
                }
            }
            self.steps = still;
            let now = Instant::now();
            if self.steps.is_empty() || now >= deadline {
                break;
            }
            std::thread::sleep(OWNER_POLL.min(deadline - now));
        }
        if self.steps.is_empty() {
            return Ok(made);
        }
        Err(ApplyError::AwaitingOwners {
            phase,
            direction,
            changed: run.changed,
            pending: pending_by_owner(&self.steps),
        })
    }
}

/// What a step made by its owner is labelled in the run's output.
pub(super) fn done_label(direction: Direction) -> &'static str {
    match direction {
        Direction::Apply => "done by owner",
        Direction::Rollback => "undone by owner",
    }
}

/// The owners of `steps`, each once, in order of first appearance.
fn owners_of(steps: &[&Step]) -> Vec<String> {
    let mut owners: Vec<String> = Vec::new();
    for owner in steps.iter().filter_map(|s| s.owner.as_ref()) {
        let owner = owner.to_string();
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    owners
}

/// The steps, by owner: each owner, where its change is made, and its steps.
fn pending_by_owner(steps: &[&Step]) -> String {
    let mut by_owner: BTreeMap<&Owner, Vec<&Step>> = BTreeMap::new();
    for step in steps {
        if let Some(owner) = &step.owner {
            by_owner.entry(owner).or_default().push(step);
        }
    }
    let mut text = String::new();
    for (owner, steps) in by_owner {
        text.push_str(&format!("  {owner}, in {}:\n", owner.where_to_change()));
        for step in steps {
            text.push_str(&format!("    {}: {}\n", step.id, step.description));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::apply::journal::{Entry, Journal, StepState};
    use crate::apply::tests::{demo_plan, options, run_with_options};
    use crate::apply::{Owners, RunOptions, Selection, Summary};
    use crate::backend::rehearsal::Rehearsal;
    use crate::backend::{Backend, BackendError};
    use crate::plan::Plan;

    /// A rehearsal whose owner of `step` makes it (writes `to`) when its target is read for the
    /// `at`-th time.
    struct OwnerAt {
        inner: Rehearsal,
        step: Step,
        to: Value,
        at: usize,
        reads: usize,
    }

    impl Backend for OwnerAt {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn read(&mut self, step: &Step) -> Result<Value, BackendError> {
            if step.target == self.step.target {
                self.reads += 1;
                if self.reads == self.at {
                    let before = self.step.before.value();
                    self.inner
                        .write(&self.step.clone(), &before, &self.to.clone())?;
                }
            }
            self.inner.read(step)
        }
        fn write(&mut self, step: &Step, from: &Value, to: &Value) -> Result<(), BackendError> {
            assert!(
                step.target != self.step.target,
                "the owner's target is never written"
            );
            self.inner.write(step, from, to)
        }
    }

    /// The demo's prepare phase, awaiting owners for up to `wait`; the eksctl-owned role's trust
    /// is made by its owner as its target is read for the `at`-th time, as `to` says.
    fn prepare(
        at: usize,
        to: impl Fn(&Step) -> Value,
        wait: Duration,
    ) -> (
        Plan,
        Step,
        Journal,
        Result<Summary, ApplyError>,
        tempfile::TempDir,
    ) {
        let (plan, dir) = demo_plan();
        let owned = plan
            .steps
            .iter()
            .find(|s| s.phase == Phase::Prepare && s.owner.is_some())
            .expect("the demo has an eksctl-owned role")
            .clone();
        let mut backend = OwnerAt {
            inner: Rehearsal::open(&dir.path().join("rehearsal"), &dir.path().join("snapshot"))
                .unwrap(),
            to: to(&owned),
            step: owned.clone(),
            at,
            reads: 0,
        };
        let mut journal = Journal::open(&dir.path().join("journal.jsonl")).unwrap();
        let options = RunOptions {
            selection: Selection {
                phases: vec![Phase::Prepare],
                ..Selection::default()
            },
            owners: Owners::Await(wait),
            ..options(Direction::Apply)
        };
        let result = run_with_options(&plan, &mut journal, &mut backend, &options);
        (plan, owned, journal, result, dir)
    }

    #[test]
    fn an_owned_step_is_not_written_and_its_phase_stops_until_its_owner_has_made_it() {
        let (plan, owned, journal, result, _dir) =
            prepare(usize::MAX, |s| s.after.value(), Duration::ZERO);
        match result {
            Err(ApplyError::AwaitingOwners {
                phase,
                changed,
                pending,
                ..
            }) => {
                assert_eq!((phase, changed), (Phase::Prepare, 6));
                assert!(pending.contains("eksctl (cluster demo)"), "{pending}");
                assert_eq!(pending.lines().filter(|l| l.starts_with("    ")).count(), 1);
                assert!(pending.contains(&owned.id), "{pending}");
            }
            other => panic!("expected the run to wait for eksctl, got {other:?}"),
        }
        // Every other step of the phase is done; the owned one is not started.
        let states = journal.states();
        for step in plan.steps.iter().filter(|s| s.phase == Phase::Prepare) {
            let expected = if step.id == owned.id {
                None
            } else {
                Some(StepState::Applied)
            };
            assert_eq!(states.get(&step.id).copied(), expected, "{}", step.id);
        }
    }

    #[test]
    fn the_owners_change_once_live_is_journaled_as_theirs_and_waiting_finds_it() {
        // Made before the run reads it: done by its owner at once.
        let (_, owned, journal, result, _dir) = prepare(1, |s| s.after.value(), Duration::ZERO);
        let summary = result.unwrap();
        assert_eq!((summary.by_owner, summary.awaiting_owner), (1, 0));
        assert!(journal.entries().iter().any(|e| matches!(e,
            Entry::Done { step, outcome: Outcome::ByOwner, .. } if *step == owned.id)));
        // Made while the run waits (after the preflight's read and the end of the phase's): the
        // read a poll later finds it.
        let (_, _, _, result, _dir) = prepare(3, |s| s.after.value(), Duration::from_secs(1));
        let summary = result.unwrap();
        assert_eq!((summary.by_owner, summary.awaiting_owner), (1, 0));
    }

    #[test]
    fn an_owner_that_made_another_change_stops_the_run_with_the_difference() {
        let (_, owned, _, result, _dir) = prepare(
            1,
            |_| serde_json::json!({"Version": "2012-10-17", "Statement": []}),
            Duration::ZERO,
        );
        match result {
            Err(ApplyError::Stale { step, .. }) => assert_eq!(step, owned.id),
            other => panic!("expected a stale-state stop, got {other:?}"),
        }
    }

    #[test]
    fn pending_steps_are_listed_under_their_owner_with_where_the_change_is_made() {
        let (plan, _dir) = demo_plan();
        let owned: Vec<&Step> = plan.steps.iter().filter(|s| s.owner.is_some()).collect();
        let text = pending_by_owner(&owned);
        for step in &owned {
            assert!(text.contains(&format!("    {}: ", step.id)), "{text}");
        }
        assert!(
            text.contains("  Helm release payments/payments, in the release's chart values"),
            "{text}"
        );
        let headings = text.lines().filter(|l| !l.starts_with("    ")).count();
        assert_eq!(owners_of(&owned).len(), headings);
    }
}
