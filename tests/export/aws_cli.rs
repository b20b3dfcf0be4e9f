//! The export's AWS CLI scripts, run with the real AWS CLI against moto seeded with the demo's
//! IAM: each role nobody owns ends with the plan's trust policy, phase after phase, and the
//! eksctl-owned role is left as it was.

use std::path::Path;
use std::process::Command;

use irsa_migrate::plan::{Phase, Plan, Target};

use crate::cli::{PLAN, demo, export};
use crate::support::moto::Moto;

/// Runs an exported script with the AWS CLI of `IRSA_MIGRATE_AWS_CLI` first on PATH.
fn run_script(moto: &Moto, script: &Path) {
    let aws = std::env::var("IRSA_MIGRATE_AWS_CLI")
        .expect("IRSA_MIGRATE_AWS_CLI names the AWS CLI (scripts/test installs it)");
    let path = std::env::join_paths(
        [Path::new(&aws).parent().unwrap().to_path_buf()]
            .into_iter()
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .unwrap();
    let output = Command::new(script)
        .envs(moto.env())
        // AWS CLI v1 reads its region from here (IAM is global, but the CLI still wants one).
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("PATH", path)
        .output()
        .expect("the script runs");
    assert!(
        output.status.success(),
        "{}: {}{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "needs moto_server and the AWS CLI; scripts/test installs them"]
fn the_aws_cli_scripts_give_each_unowned_role_the_plans_trust_and_leave_owned_ones() {
    let dir = demo();
    export(dir.path(), "out", &[]);
    let plan: Plan =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(PLAN)).unwrap()).unwrap();
    let moto = Moto::start();
    moto.seed_demo_iam();
    assert_eq!(moto.providers(), 0);
    for phase in [Phase::Prepare, Phase::Decommission] {
        let dir_name = if phase == Phase::Prepare {
            "1-prepare"
        } else {
            "5-decommission"
        };
        run_script(
            &moto,
            &dir.path().join("out/iam").join(dir_name).join("aws-cli.sh"),
        );
        let mut checked = 0;
        for step in plan.steps.iter().filter(|s| s.phase == phase) {
            let Target::Role { arn, .. } = &step.target else {
                continue;
            };
            let expected = match step.owner {
                None => step.after.value(),
                // Left to its owner: as it was before the phase, untouched by the script.
                Some(_) => step.before.value(),
            };
            assert_eq!(moto.trust(arn.name()), expected, "{}", step.id);
            checked += 1;
        }
        assert!(checked > 3, "{phase}: {checked}");
        // The eksctl-owned role's change is its owner's: here made as eksctl would, for the next
        // phase to start from the plan's state.
        if let Some(owned) = plan
            .steps
            .iter()
            .find(|s| s.phase == phase && s.owner.is_some())
            && let Target::Role { arn, .. } = &owned.target
        {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime
                .block_on(
                    moto.iam(&runtime)
                        .update_assume_role_policy()
                        .role_name(arn.name())
                        .policy_document(owned.after.value().to_string())
                        .send(),
                )
                .unwrap();
        }
    }
    assert_eq!(
        moto.providers(),
        1,
        "the script created the cluster's OIDC provider"
    );
}
