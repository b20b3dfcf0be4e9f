//! SIGKILL at durability points of a live apply, then a resume: it ends as an uninterrupted
//! run ends, on both servers and in the journal.

use crate::harness::{Cluster, DECLARED, PLAN, assert_same_objects};
use crate::support;

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn sigkill_during_a_live_apply_then_resume_ends_as_an_uninterrupted_run() {
    // Resumption is what is tested, not speed: on a machine loaded with three clusters at once
    // (and the other live tests), a wave may take longer than the default 300 s to roll out.
    let apply = [
        "apply",
        "--plan",
        PLAN,
        "--phase",
        "all",
        "--yes",
        "--rollout-timeout",
        "900",
    ];
    let reference = Cluster::start();
    reference.plan();
    reference.ok(&apply);
    let expected_objects = reference.kube.contents(DECLARED);
    let expected_iam = reference.iam_state();
    let steps = support::done_counts(&reference.journal(), "apply").len();
    // Every third durability point (journal appends: before and after each remote write), so
    // kills land before writes, after writes and before journaling them, in every phase,
    // including between a rollout wave's patches and its check. Each point gets a cluster of
    // its own; three run at a time (they mostly wait for controllers).
    let points = std::fs::read_to_string(reference.journal())
        .unwrap()
        .lines()
        .count();
    let kill_at = |point: usize| -> bool {
        let cluster = Cluster::start();
        cluster.plan();
        let output = cluster
            .command(&apply)
            .env("IRSA_MIGRATE_KILL_AT", point.to_string())
            .output()
            .unwrap();
        if !support::killed(&output) {
            return false;
        }
        cluster.ok(&apply);
        assert_same_objects(&expected_objects, &cluster.kube.contents(DECLARED));
        let iam = cluster.iam_state();
        assert!(
            iam == expected_iam,
            "after a kill at point {point}:\n{iam}\nexpected:\n{expected_iam}"
        );
        support::assert_each_step_done_once(
            &cluster.journal(),
            "apply",
            steps,
            &format!("after a kill at point {point}"),
        );
        true
    };
    let chosen: Vec<usize> = (1..=points).step_by(3).collect();
    let mut killed = 0;
    for batch in chosen.chunks(3) {
        killed += std::thread::scope(|scope| {
            let runs: Vec<_> = batch
                .iter()
                .map(|&point| scope.spawn(move || kill_at(point)))
                .collect();
            runs.into_iter()
                .map(|run| run.join().expect("a kill point's run"))
                .filter(|&killed| killed)
                .count()
        });
    }
    eprintln!(
        "killed at {killed} of {points} points (every third) of a {steps}-step run, each resumed"
    );
    assert!(killed * 3 >= 2 * steps, "killed at only {killed} points");
}
