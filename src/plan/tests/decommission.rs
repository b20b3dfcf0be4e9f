//! What decommission removes, and what it keeps and reports.

use serde_json::json;

use super::world::ACCOUNT;
use super::*;

/// Regression (issue 15): `PutRolePolicy`/`DeleteRolePolicy` were documented on every role in
/// the plan instead of the node and kiam-server roles.
#[test]
fn the_plans_iam_policy_writes_inline_policies_of_the_legacy_roles_only() {
    let plan = one_workload_with_a_kiam_grant().plan();
    let policies = permissions::aws_apply_policies(&plan);
    let statements = policies[ACCOUNT]["Statement"].as_array().unwrap();
    let legacy = statements
        .iter()
        .find(|s| s["Sid"] == "LegacyGrants")
        .expect("the grants' removal is planned");
    assert_eq!(
        legacy["Action"],
        json!([
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy"
        ])
    );
    assert_eq!(legacy["Resource"], json!([KIAM]));
    assert!(
        statements
            .iter()
            .filter(|s| s["Sid"] != "LegacyGrants")
            .flat_map(|s| s["Action"].as_array().unwrap())
            .all(|a| !matches!(
                a.as_str(),
                Some("iam:GetRolePolicy" | "iam:PutRolePolicy" | "iam:DeleteRolePolicy")
            )),
        "{statements:?}"
    );
}

#[test]
fn grants_are_removed_only_when_nothing_still_needs_the_legacy_path() {
    let mut world = one_workload_with_a_kiam_grant();
    let plan = world.plan();
    let grant = step(&plan, &format!("remove-assume-role-grant:{KIAM}#assume"));
    assert_eq!(
        grant.after.value(),
        Value::Null,
        "the only statement goes, and the inline policy with it"
    );
    // A Job on its own service account stays on the legacy path: grants stay.
    world.service_account("shop", "batch", None).workload(
        "Job",
        "shop",
        "backfill",
        "batch",
        Some("api"),
    );
    let plan = world.plan();
    assert!(
        plan.steps
            .iter()
            .all(|s| s.kind != StepKind::RemoveAssumeRoleGrant)
    );
    assert!(
        plan.steps
            .iter()
            .all(|s| s.kind != StepKind::RemoveLegacyTrust),
        "role api is still used by the Job"
    );
    assert!(
        plan.decommission
            .kept
            .iter()
            .any(|k| k.contains("shop/Job/backfill")),
        "{:?}",
        plan.decommission.kept
    );
}

#[test]
fn decommission_removes_only_the_legacy_paths_grants() {
    // Regression (issue 15): decommission removed sts:AssumeRole on any resource (another
    // cluster's or account's roles, `*`), deleted a conditional policy whole, and left sts:*
    // in place without a word.
    let other_cluster = "arn:aws:iam::999988887777:role/other-cluster-app";
    let world = one_workload_with_kiam_policies(json!([
        {"PolicyName": "assume", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("api")},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": other_cluster},
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "s3:GetObject"], "Resource": arn("api")},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}},
        {"PolicyName": "conditional", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("api"),
             "Condition": {"StringEquals": {"sts:ExternalId": "audit"}}}]}},
        {"PolicyName": "broad", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}},
    ]));
    let plan = world.plan();
    let grant = step(&plan, &format!("remove-assume-role-grant:{KIAM}#assume"));
    assert_eq!(
        grant.after.value(),
        json!({"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": other_cluster},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": arn("api")},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}),
        "only the grant on exactly the migrated role goes"
    );
    let grant_steps: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::RemoveAssumeRoleGrant)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(grant_steps.len(), 1, "{grant_steps:?}");
    let kept = plan.decommission.kept.join("\n");
    for expected in [
        "inline policy assume of arn:aws:iam::111122223333:role/kiam-server: statement 2 allows sts:AssumeRole on arn:aws:iam::999988887777:role/other-cluster-app",
        "statement 4 allows sts:AssumeRole on *",
        "inline policy conditional of arn:aws:iam::111122223333:role/kiam-server: statement 1 allows sts:AssumeRole under a condition",
        "inline policy broad of arn:aws:iam::111122223333:role/kiam-server: statement 1 allows sts:*",
    ] {
        assert!(
            kept.contains(expected),
            "{expected:?} not reported in:\n{kept}"
        );
    }
    assert_eq!(crate::plan::validate::check(&plan), Ok(()));
}

#[test]
fn legacy_trust_under_a_condition_is_kept_and_reported() {
    // Regression (issue 15): a kiam-server trust statement carrying an sts:ExternalId for
    // another purpose was removed with the legacy principal.
    let mut world = World::new();
    world
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some("api"));
    world
        .roles
        .push(json!({"RoleName": "api", "Path": "/", "Arn": arn("api"),
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": KIAM}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": KIAM}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"sts:ExternalId": "audit-export"}}}]}}));
    let plan = world.plan();
    let removal = step(&plan, &format!("remove-legacy-trust:{}", arn("api")));
    let statements = removal.after.value()["Statement"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        statements
            .iter()
            .any(
                |s| s["Condition"]["StringEquals"]["sts:ExternalId"] == "audit-export"
                    && s["Principal"]["AWS"] == KIAM
            ),
        "the conditioned statement stays: {statements:?}"
    );
    assert!(
        !statements
            .iter()
            .any(|s| s["Principal"]["AWS"] == KIAM && s.get("Condition").is_none()),
        "the unconditioned legacy trust goes: {statements:?}"
    );
    assert!(
        plan.decommission
            .kept
            .iter()
            .any(|k| k.contains(&arn("api")) && k.contains("under a condition")),
        "{:?}",
        plan.decommission.kept
    );
    assert_eq!(crate::plan::validate::check(&plan), Ok(()));
}
