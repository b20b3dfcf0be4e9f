//! The engine as a whole on generated inventories and the demo, through the rehearsal backend;
//! the helpers the other modules' tests run it with.

use proptest::prelude::*;

use super::journal::Journal;
use super::{
    ApplyError, Direction, EvidenceGate, Mode, Owners, READING_FRESH_FOR, RunOptions, Selection,
    Summary, run,
};
use crate::backend::Backend;
use crate::backend::rehearsal::Rehearsal;
use crate::inventory::snapshot::{Layout, load_dir, write_dir};
use crate::plan::tests::properties::{build, spec};
use crate::plan::{Plan, Settings, plan};
use crate::progress::Silent;

pub(super) fn options(direction: Direction) -> RunOptions {
    RunOptions {
        direction,
        mode: Mode::Execute,
        selection: Selection::default(),
        wave_size: 3,
        rollout: Default::default(),
        reading_fresh_for: READING_FRESH_FOR,
        // The rehearsal plays the owners' part: every step is made, as the whole flow is.
        owners: Owners::Play,
        // The demo's snapshot holds no CloudTrail; tests of the evidence ask for it.
        evidence: EvidenceGate::Waived,
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
pub(super) fn run_with(
    plan: &Plan,
    journal: &mut Journal,
    backend: &mut dyn Backend,
    direction: Direction,
) -> Result<Summary, ApplyError> {
    run_with_options(plan, journal, backend, &options(direction))
}

/// Runs `plan` through `backend` as `options` say, confirmed, output discarded.
pub(super) fn run_with_options(
    plan: &Plan,
    journal: &mut Journal,
    backend: &mut dyn Backend,
    options: &RunOptions,
) -> Result<Summary, ApplyError> {
    run(
        plan,
        "sha256:test",
        journal,
        backend,
        options,
        &mut |_| true,
        &mut |_| {},
        &Silent,
    )
}

/// The demo's plan, and a directory holding the demo as the snapshot a rehearsal starts from.
pub(super) fn demo_plan() -> (Plan, tempfile::TempDir) {
    let inventory = crate::inventory::demo::inventory().unwrap();
    let plan = plan(&inventory, "p", &Settings::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        &inventory,
        &dir.path().join("snapshot"),
        Layout::PerNamespace,
    )
    .unwrap();
    (plan, dir)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn apply_all_then_rollback_all_restores_the_inventory_and_apply_is_idempotent(spec in spec()) {
        let original = build(&spec).inventory();
        let plan = plan(&original, "p", &Settings::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_dir(&original, &dir.path().join("snapshot"), Layout::PerNamespace).unwrap();
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
    write_dir(&changed, &dir.path().join("snapshot"), Layout::PerNamespace).unwrap();
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

#[test]
fn a_dry_run_of_every_phase_takes_each_target_as_the_earlier_steps_would_leave_it() {
    let (plan, dir) = demo_plan();
    let mut backend = Rehearsal::open(&dir.path().join("rehearsal"), &dir.path().join("snapshot"))
        .map_err(ApplyError::from_backend)
        .unwrap();
    let mut journal = Journal::open(&dir.path().join("rehearsal/journal.jsonl")).unwrap();
    let options = RunOptions {
        mode: Mode::DryRun,
        ..options(Direction::Apply)
    };
    // Decommission's trust edits start where prepare's leave the same roles: a read alone would
    // find them as planned and call them changed by someone else.
    let summary = run_with_options(&plan, &mut journal, &mut backend, &options).unwrap();
    assert_eq!(summary.changed, plan.steps.len());
    assert!(journal.entries().is_empty());
    let hidden = crate::progress::Silent;
    assert_eq!(
        load_dir(&dir.path().join("rehearsal"), &hidden).unwrap(),
        load_dir(&dir.path().join("snapshot"), &hidden).unwrap(),
        "nothing was written"
    );
}
