//! Batches, reads and failures of the runner, through rehearsal backends that count what they
//! are asked or fail on demand.

use serde_json::Value;

use crate::apply::journal::Journal;
use crate::apply::tests::{demo_plan, options, run_with, run_with_options};
use crate::apply::{ApplyError, Direction, RunOptions, Selection};
use crate::backend::rehearsal::Rehearsal;
use crate::backend::{Backend, BackendError};
use crate::plan::{Phase, Step, Target};

/// A rehearsal that takes IAM steps in batches and records what it is asked: reads, and what
/// each batch wrote. It can play someone else editing a target once its reads reach a count.
struct Batched {
    inner: Rehearsal,
    reads: usize,
    batches: Vec<Vec<crate::plan::StepKind>>,
    /// After this many reads: move the step's target from its `before` to this document.
    interference: Option<(usize, Step, Value)>,
}

impl Batched {
    fn open(dir: &std::path::Path) -> Batched {
        Batched {
            inner: Rehearsal::open(&dir.join("rehearsal"), &dir.join("snapshot")).unwrap(),
            reads: 0,
            batches: Vec::new(),
            interference: None,
        }
    }
}

impl Backend for Batched {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn concurrency(&self) -> usize {
        4
    }
    fn read(&mut self, step: &Step) -> Result<Value, BackendError> {
        let observed = self.inner.read(step);
        self.reads += 1;
        if let Some((_, target, edit)) = self.interference.take_if(|(n, ..)| *n == self.reads) {
            self.inner.write(&target, &target.before.value(), &edit)?;
        }
        observed
    }
    fn write(&mut self, step: &Step, from: &Value, to: &Value) -> Result<(), BackendError> {
        self.inner.write(step, from, to)
    }
    fn write_many(&mut self, moves: &[(&Step, &Value, &Value)]) -> Vec<Result<(), BackendError>> {
        self.batches
            .push(moves.iter().map(|(s, _, _)| s.kind).collect());
        moves
            .iter()
            .map(|(step, from, to)| self.inner.write(step, from, to))
            .collect()
    }
}

#[test]
fn batches_hold_one_kind_and_the_provider_exists_before_any_trust_names_it() {
    use crate::plan::StepKind::{CreateOidcProvider, UpdateRoleTrust};
    let (plan, dir) = demo_plan();
    let mut backend = Batched::open(dir.path());
    let mut journal = Journal::open(&dir.path().join("journal.jsonl")).unwrap();
    for direction in [Direction::Apply, Direction::Rollback] {
        backend.batches.clear();
        let summary = run_with(&plan, &mut journal, &mut backend, direction).unwrap();
        assert_eq!(summary.changed + summary.by_owner, plan.steps.len());
        let batches = &backend.batches;
        assert!(batches.iter().any(|b| b.len() > 1), "{batches:?}");
        assert!(
            batches.iter().all(|b| b.iter().all(|k| *k == b[0])),
            "{batches:?}"
        );
        let position = |kind| batches.iter().position(|b| b[0] == kind).unwrap();
        match direction {
            Direction::Apply => assert!(position(CreateOidcProvider) < position(UpdateRoleTrust)),
            Direction::Rollback => {
                assert!(position(UpdateRoleTrust) < position(CreateOidcProvider))
            }
        }
    }
}

#[test]
fn each_step_reads_its_target_once_the_preflight_reading_standing_in_for_the_first() {
    let (plan, dir) = demo_plan();
    let mut backend = Batched::open(dir.path());
    let mut journal = Journal::open(&dir.path().join("journal.jsonl")).unwrap();
    for direction in [Direction::Apply, Direction::Rollback] {
        backend.reads = 0;
        let summary = run_with(&plan, &mut journal, &mut backend, direction).unwrap();
        assert_eq!(summary.changed + summary.by_owner, plan.steps.len());
        // One read per step: the first step on a target uses the preflight's reading, a later
        // one reads what the earlier step wrote.
        assert_eq!(backend.reads, plan.steps.len(), "{direction:?}");
    }
}

#[test]
fn an_iam_target_read_too_long_ago_is_read_again_and_a_change_since_is_not_overwritten() {
    let (plan, dir) = demo_plan();
    let prepare: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Prepare)
        .collect();
    assert!(prepare.len() > 4, "more steps than one batch");
    // Right after the preflight has read every target, someone rewrites the last role's trust.
    let victim = (*prepare.last().unwrap()).clone();
    let edit = serde_json::json!({"Version": "2012-10-17", "Statement": []});
    let mut backend = Batched::open(dir.path());
    backend.interference = Some((prepare.len(), victim.clone(), edit.clone()));
    let mut journal = Journal::open(&dir.path().join("journal.jsonl")).unwrap();
    let options = RunOptions {
        selection: Selection {
            phases: vec![Phase::Prepare],
            namespaces: Vec::new(),
            include_cluster_wide: false,
        },
        // Every reading is already too old when the step comes to write.
        reading_fresh_for: std::time::Duration::ZERO,
        ..options(Direction::Apply)
    };
    let error = run_with_options(&plan, &mut journal, &mut backend, &options).unwrap_err();
    match &error {
        ApplyError::Stale { step, written, .. } => {
            assert_eq!(step, &victim.id);
            assert!(written.contains("change(s) in this run"), "{written}");
        }
        other => panic!("expected a stale-state stop, got {other}"),
    }
    assert!(backend.reads > prepare.len(), "targets were read again");
    assert_eq!(
        backend.inner.read(&victim).unwrap(),
        edit,
        "the edit stands"
    );
}

/// A rehearsal whose N-th read or N-th write fails.
struct Failing {
    inner: Rehearsal,
    reads: usize,
    writes: usize,
    fail_read: Option<usize>,
    fail_write: Option<usize>,
    /// The failing write is answered with a refusal (a 403), not lost.
    refuses: bool,
}

impl Failing {
    fn open(dir: &std::path::Path, fail_read: Option<usize>, fail_write: Option<usize>) -> Failing {
        Failing {
            inner: Rehearsal::open(&dir.join("rehearsal"), &dir.join("snapshot")).unwrap(),
            reads: 0,
            writes: 0,
            fail_read,
            fail_write,
            refuses: false,
        }
    }

    fn refusing(self) -> Failing {
        Failing {
            refuses: true,
            ..self
        }
    }

    fn injected(target: &Target) -> BackendError {
        BackendError::Target {
            target: target.to_string(),
            message: "injected failure".into(),
        }
    }
}

impl Backend for Failing {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read(&mut self, step: &Step) -> Result<Value, BackendError> {
        self.reads += 1;
        if self.fail_read == Some(self.reads) {
            return Err(Failing::injected(&step.target));
        }
        self.inner.read(step)
    }
    fn write(&mut self, step: &Step, from: &Value, to: &Value) -> Result<(), BackendError> {
        self.writes += 1;
        if self.fail_write == Some(self.writes) {
            if self.refuses {
                return Err(BackendError::Aws {
                    target: step.target.to_string(),
                    source: crate::aws::AwsError::Call {
                        operation: "iam:UpdateAssumeRolePolicy",
                        kind: crate::call_error::ErrorKind::Denied,
                        source: "forbidden".into(),
                    },
                });
            }
            return Err(Failing::injected(&step.target));
        }
        self.inner.write(step, from, to)
    }
}

/// Exit 4 ("resume, or roll back") is for a run that has sent writes; a failure before its
/// first write is told apart, so the CLI does not advise rolling back what never changed.
#[test]
fn a_failure_is_after_writes_only_once_the_run_has_sent_one() {
    let (plan, dir) = demo_plan();
    let prepare = plan
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Prepare)
        .count();
    let apply = |backend: &mut Failing| {
        let mut journal = Journal::open(&dir.path().join("rehearsal/journal.jsonl")).unwrap();
        let options = RunOptions {
            selection: Selection {
                phases: vec![Phase::Prepare],
                ..Selection::default()
            },
            ..options(Direction::Apply)
        };
        run_with_options(&plan, &mut journal, backend, &options)
    };
    // The preflight reads each of the phase's targets first.
    match apply(&mut Failing::open(dir.path(), Some(2), None)) {
        Err(ApplyError::NothingWritten { step, .. }) => {
            assert!(step.contains("the preflight's read"), "{step}")
        }
        other => panic!("expected NothingWritten, got {other:?}"),
    }
    // The first write is refused: the peer answered, nothing was written.
    match apply(&mut Failing::open(dir.path(), None, Some(1)).refusing()) {
        Err(ApplyError::NothingWritten { step, .. }) => {
            assert!(step.starts_with("step "), "{step}")
        }
        other => panic!("expected NothingWritten, got {other:?}"),
    }
    // The first write fails without an answer: sent, so possibly part-way.
    match apply(&mut Failing::open(dir.path(), None, Some(1))) {
        Err(ApplyError::Backend { changed: 0, .. }) => {}
        other => panic!("expected Backend after 0 changes, got {other:?}"),
    }
    // A later write fails, after changes.
    let _ = std::fs::remove_dir_all(dir.path().join("rehearsal"));
    match apply(&mut Failing::open(dir.path(), None, Some(3))) {
        Err(ApplyError::Backend { changed, .. }) => assert!(changed >= 1, "{changed}"),
        other => panic!("expected Backend, got {other:?}"),
    }
    assert!(prepare > 3);
}
