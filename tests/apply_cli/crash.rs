//! SIGKILL at every durability point of apply and rollback, then a resume: each ends exactly as
//! an uninterrupted run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::{assert_each_step_done_once, killed, run_in, stderr};
use crate::workspace::{
    APPLY_ALL, PLAN, ROLLBACK_ALL, assert_same_state, demo_workspace, killed_at, rehearsal, state,
};

/// Runs the binary with `IRSA_MIGRATE_KILL_AT=point`; true when it was killed by SIGKILL.
fn run_killed_at(dir: &Path, args: &[&str], point: usize) -> bool {
    killed(&killed_at(dir, args, point).output().unwrap())
}

/// Runs `command` in fresh workspaces prepared by `prepare`, killing it at its 1st, 2nd, ...
/// durability point until a run completes; after each kill, runs it again and checks that the
/// state equals `expected` and that every step is journaled as done exactly once for `action`.
/// Returns how many points were killed at.
fn kill_at_every_point_then_resume(
    command: &[&str],
    prepare: &dyn Fn(&Path),
    expected: &BTreeMap<PathBuf, String>,
    action: &str,
) -> usize {
    let steps = 35;
    let mut points = 0;
    for point in 1.. {
        let dir = demo_workspace();
        prepare(dir.path());
        if !run_killed_at(dir.path(), command, point) {
            break;
        }
        points += 1;
        let resumed = run_in(dir.path(), command);
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "{action} resumed after a kill at point {point}: {}",
            stderr(&resumed)
        );
        assert_same_state(
            &state(dir.path()),
            expected,
            &format!("after a kill at point {point} of {action} and a resume"),
        );
        assert_each_step_done_once(
            &rehearsal(dir.path()).join("journal.jsonl"),
            action,
            steps,
            &format!("after a kill at point {point} of {action} and a resume"),
        );
    }
    assert!(
        points >= 3 * steps,
        "{action} was killed at only {points} points"
    );
    points
}

#[test]
fn sigkill_at_every_point_of_apply_and_rollback_then_resume_ends_exactly_as_uninterrupted() {
    let dry_run = [
        "apply",
        "--plan",
        PLAN,
        "--rehearse",
        "--phase",
        "prepare",
        "--dry-run",
    ];
    let reference = demo_workspace();
    assert_eq!(
        run_in(reference.path(), &dry_run).status.code(),
        Some(0),
        "a dry run creates the rehearsal"
    );
    let untouched = state(reference.path());
    assert_eq!(run_in(reference.path(), APPLY_ALL).status.code(), Some(0));
    let applied = state(reference.path());

    kill_at_every_point_then_resume(APPLY_ALL, &|_| {}, &applied, "apply");
    let apply_first = |dir: &Path| assert_eq!(run_in(dir, APPLY_ALL).status.code(), Some(0));
    kill_at_every_point_then_resume(ROLLBACK_ALL, &apply_first, &untouched, "rollback");
}
