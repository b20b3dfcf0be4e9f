//! One run per migration at a time: the directory's lock, its holder's record, a killed holder,
//! and pairs of runs started together.

use std::path::Path;
use std::process::Command;

use crate::support::{assert_each_step_done_once, killed, run_in, stderr, stdout};
use crate::workspace::{
    APPLY_ALL, ROLLBACK_ALL, assert_same_state, demo_workspace, killed_at, rehearsal, rehearse,
    state,
};

/// `apply` and `rollback` of one migration at once lost rehearsal files and applied steps twice
/// (issue 12): a run holding the directory's lock makes any other exit 3 at once, naming it.
#[test]
fn a_run_while_another_holds_the_migration_lock_exits_3_naming_the_holder_and_changes_nothing() {
    let dir = demo_workspace();
    let path = dir.path().join("migrations/demo/.lock");
    let mut held = std::fs::File::create(&path).unwrap();
    held.try_lock().expect("the test takes the free lock");
    std::io::Write::write_all(
        &mut held,
        br#"{"pid":4242,"host":"ci-runner-7","started":"2026-01-02T03:04:05Z","command":"irsa-migrate apply --phase all"}"#,
    )
    .unwrap();
    for (command, args) in [
        ("apply", &["--phase", "all", "--yes"][..]),
        ("apply", &["--phase", "prepare", "--dry-run"][..]),
        ("rollback", &["--all", "--yes"][..]),
    ] {
        let output = rehearse(dir.path(), command, args);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{command} {args:?}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        assert!(
            err.contains("migrations/demo/.lock is held by pid 4242 on ci-runner-7, started 2026-01-02T03:04:05Z (`irsa-migrate apply --phase all`)"),
            "{err}"
        );
        assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    }
    assert!(!rehearsal(dir.path()).exists(), "nothing was written");
    drop(held);
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A holder killed with SIGKILL (no clean-up runs) leaves its record but not its lock.
#[test]
fn a_killed_holder_never_blocks_the_next_run() {
    let dir = demo_workspace();
    let child = killed_at(dir.path(), APPLY_ALL, 5)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(killed(&child.wait_with_output().unwrap()));
    let record = std::fs::read_to_string(dir.path().join("migrations/demo/.lock")).unwrap();
    assert!(record.contains(&format!("\"pid\":{pid}")), "{record}");
    let output = rehearse(dir.path(), "apply", &["--phase", "all", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Starts `args` twice at once in `dir`; returns both outputs and pids.
fn run_pair(dir: &Path, args: &[&str]) -> [(u32, std::process::Output); 2] {
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    [first, second].map(|child| (child.id(), child.wait_with_output().unwrap()))
}

/// Checks a pair of identical runs: either they overlapped, and exactly one ran while the other
/// exited 3 naming it, or they did not, and the second found everything done. Returns whether
/// they overlapped.
fn check_pair(pair: &[(u32, std::process::Output); 2], done: &str, again: &str) -> bool {
    let codes = [pair[0].1.status.code(), pair[1].1.status.code()];
    let context = format!(
        "codes {codes:?}\nfirst: {}{}\nsecond: {}{}",
        stdout(&pair[0].1),
        stderr(&pair[0].1),
        stdout(&pair[1].1),
        stderr(&pair[1].1)
    );
    match codes {
        [Some(0), Some(3)] | [Some(3), Some(0)] => {
            let (ran, refused) = if codes[0] == Some(0) {
                (&pair[0], &pair[1])
            } else {
                (&pair[1], &pair[0])
            };
            assert!(stdout(&ran.1).ends_with(done), "{context}");
            assert!(
                stderr(&refused.1).contains(&format!("is held by pid {} on ", ran.0)),
                "the refused run names the one that ran: {context}"
            );
            assert!(stdout(&refused.1).is_empty(), "{context}");
            true
        }
        [Some(0), Some(0)] => {
            let mut tails = [stdout(&pair[0].1), stdout(&pair[1].1)];
            tails.sort_by_key(|t| t.ends_with(again));
            assert!(
                tails[0].ends_with(done) && tails[1].ends_with(again),
                "both ran; only one may have changed anything: {context}"
            );
            false
        }
        _ => panic!("unexpected exit codes: {context}"),
    }
}

/// Concurrent pairs of the same apply, then of the same rollback: exactly one of each pair runs,
/// the other exits 3; the journal and the rehearsal end exactly as after one run of each.
#[test]
fn concurrent_pairs_of_runs_on_one_migration_run_one_and_refuse_the_other() {
    let reference = demo_workspace();
    assert_eq!(
        rehearse(
            reference.path(),
            "apply",
            &["--phase", "prepare", "--dry-run"]
        )
        .status
        .code(),
        Some(0)
    );
    let untouched = state(reference.path());
    assert_eq!(run_in(reference.path(), APPLY_ALL).status.code(), Some(0));
    let applied = state(reference.path());

    let pairs = 8;
    let mut overlapped = 0;
    for round in 0..pairs {
        let dir = demo_workspace();
        let journal = rehearsal(dir.path()).join("journal.jsonl");
        let context = format!("pair {round}");
        overlapped += usize::from(check_pair(
            &run_pair(dir.path(), APPLY_ALL),
            "27 changed, 0 already in place, 0 skipped, 8 made by their owners\n",
            "0 changed, 0 already in place, 35 skipped\n",
        ));
        assert_same_state(&state(dir.path()), &applied, &context);
        assert_each_step_done_once(&journal, "apply", 35, &context);
        overlapped += usize::from(check_pair(
            &run_pair(dir.path(), ROLLBACK_ALL),
            "27 changed, 0 already in place, 0 skipped, 8 made by their owners\n",
            "0 changed, 0 already in place, 0 skipped\n",
        ));
        assert_same_state(&state(dir.path()), &untouched, &context);
        assert_each_step_done_once(&journal, "rollback", 35, &context);
    }
    // Two runs started together overlap (a run takes far longer than taking the lock); were
    // none refused, this test would have checked nothing.
    assert!(overlapped > 0, "no pair of runs overlapped");
}
