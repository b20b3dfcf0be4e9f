//! The engine on generated inventories, through the rehearsal backend.

use proptest::prelude::*;

use super::*;
use crate::backend::rehearsal::Rehearsal;
use crate::inventory::snapshot::{load_dir, write_dir};
use crate::plan::tests::properties::{build, spec};
use crate::plan::{Settings, plan};

fn options(direction: Direction) -> RunOptions {
    RunOptions {
        direction,
        mode: Mode::Execute,
        selection: Selection::default(),
        wave_size: 3,
        rollout: Default::default(),
        reading_fresh_for: READING_FRESH_FOR,
    }
}

fn run_all(
    plan: &Plan,
    dir: &std::path::Path,
    direction: Direction,
) -> Result<Summary, ApplyError> {
    let mut backend = Rehearsal::open(&dir.join("rehearsal"), &dir.join("snapshot"))
        .map_err(ApplyError::from_backend)?;
    let mut journal = Journal::open(&dir.join("rehearsal/journal.jsonl"))?;
    run_with(plan, &mut journal, &mut backend, direction)
}

/// Runs every step of `plan` through `backend`, confirmed, output discarded.
fn run_with(
    plan: &Plan,
    journal: &mut Journal,
    backend: &mut dyn Backend,
    direction: Direction,
) -> Result<Summary, ApplyError> {
    run(
        plan,
        "sha256:test",
        journal,
        backend,
        &options(direction),
        &mut |_| true,
        &mut |_| {},
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn apply_all_then_rollback_all_restores_the_inventory_and_apply_is_idempotent(spec in spec()) {
        let original = build(&spec).inventory();
        let plan = plan(&original, "p", &Settings::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_dir(&original, &dir.path().join("snapshot")).unwrap();
        let hidden = crate::progress::Silent;

        let first = run_all(&plan, dir.path(), Direction::Apply).unwrap();
        prop_assert_eq!(first.changed, plan.steps.len());
        let applied = load_dir(&dir.path().join("rehearsal"), &hidden).unwrap();
        // A second run changes nothing and leaves the same state.
        let second = run_all(&plan, dir.path(), Direction::Apply).unwrap();
        prop_assert_eq!(second.changed, 0);
        prop_assert_eq!(load_dir(&dir.path().join("rehearsal"), &hidden).unwrap(), applied.clone());
        // Re-planning the applied state finds nothing left to migrate for the bound workloads.
        let again = crate::plan::plan(&applied, "p", &Settings::default()).unwrap();
        prop_assert!(again.bindings.is_empty(), "{:?}", again.bindings);

        run_all(&plan, dir.path(), Direction::Rollback).unwrap();
        let restored = load_dir(&dir.path().join("rehearsal"), &hidden).unwrap();
        prop_assert_eq!(restored, original);
    }
}

#[test]
fn a_changed_target_stops_the_run_before_anything_is_written() {
    let mut world = crate::plan::tests::World::new();
    world
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some("api"))
        .role("api", true, 0);
    let original = world.inventory();
    let plan = plan(&original, "p", &Settings::default()).unwrap();
    // Someone annotates the service account by hand after planning.
    let mut changed = original.clone();
    let key = ("shop".to_string(), "api".to_string());
    changed
        .service_accounts
        .get_mut(&key)
        .unwrap()
        .metadata
        .annotations
        .insert(
            "eks.amazonaws.com/role-arn".into(),
            "arn:aws:iam::111122223333:role/other".into(),
        );
    let dir = tempfile::tempdir().unwrap();
    write_dir(&changed, &dir.path().join("snapshot")).unwrap();
    let before = crate::inventory::snapshot::render_files(&changed);
    let error = run_all(&plan, dir.path(), Direction::Apply).unwrap_err();
    match &error {
        ApplyError::Stale {
            step,
            diff,
            written,
            ..
        } => {
            assert_eq!(step, "annotate-service-account:shop/ServiceAccount/api");
            assert!(
                diff.contains(
                    "+    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/other"
                ),
                "{diff}"
            );
            assert!(written.contains("nothing was written"), "{written}");
        }
        other => panic!("expected a stale-state stop, got {other}"),
    }
    let after = load_dir(&dir.path().join("rehearsal"), &crate::progress::Silent).unwrap();
    assert_eq!(
        crate::inventory::snapshot::render_files(&after),
        before,
        "nothing was written"
    );
    assert!(
        !dir.path().join("rehearsal/journal.jsonl").exists(),
        "nothing was journaled"
    );
}

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

/// The demo's plan, and a directory holding the demo as the snapshot a rehearsal starts from.
fn demo_plan() -> (Plan, tempfile::TempDir) {
    let inventory = crate::inventory::demo::inventory().unwrap();
    let plan = plan(&inventory, "p", &Settings::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_dir(&inventory, &dir.path().join("snapshot")).unwrap();
    (plan, dir)
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
        assert_eq!(summary.changed, plan.steps.len());
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
        assert_eq!(summary.changed, plan.steps.len());
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
    let error = run(
        &plan,
        "sha256:test",
        &mut journal,
        &mut backend,
        &options,
        &mut |_| true,
        &mut |_| {},
    )
    .unwrap_err();
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
        run(
            &plan,
            "sha256:test",
            &mut journal,
            backend,
            &options,
            &mut |_| true,
            &mut |_| {},
        )
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
