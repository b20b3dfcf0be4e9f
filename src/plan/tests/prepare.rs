//! Trust statements and OIDC providers.

use serde_json::json;

use super::world::{ACCOUNT, ISSUER};
use super::*;

#[test]
fn trust_statements_are_exact_and_merged_per_role() {
    let plan = World::new()
        .namespace("a", ".*")
        .namespace("b", ".*")
        .service_account("a", "x", None)
        .service_account("b", "y", None)
        .workload("Deployment", "a", "x", "x", Some("shared"))
        .workload("Deployment", "b", "y", "y", Some("shared"))
        .role("shared", true, 0)
        .plan();
    let trust = step(&plan, &format!("update-role-trust:{}", arn("shared")));
    let after = trust.after.value();
    let statements = after["Statement"].as_array().unwrap();
    assert_eq!(
        statements.len(),
        2,
        "one statement for both service accounts"
    );
    assert_eq!(
        statements[0],
        trust.before.value()["Statement"][0],
        "the legacy statement is kept as it was"
    );
    let equals = &statements[1]["Condition"]["StringEquals"];
    assert_eq!(
        equals[format!("{ISSUER}:sub")],
        json!(["system:serviceaccount:a:x", "system:serviceaccount:b:y"])
    );
    assert_eq!(equals[format!("{ISSUER}:aud")], "sts.amazonaws.com");
    assert_eq!(
        statements[1]["Condition"].as_object().unwrap().len(),
        1,
        "StringEquals only"
    );
    let remove = step(&plan, &format!("remove-legacy-trust:{}", arn("shared")));
    assert_eq!(
        remove.before, trust.after,
        "decommission starts from prepare's result"
    );
    assert_eq!(
        remove.after.value()["Statement"]
            .as_array()
            .unwrap()
            .as_slice(),
        &statements[1..]
    );
}

#[test]
fn an_oversized_trust_policy_is_a_finding_never_a_wildcard() {
    let world = {
        let mut w = World::new();
        w.namespace("shop", ".*")
            .service_account("shop", "api", None)
            .workload("Deployment", "shop", "api", "api", Some("big"))
            .role("big", true, 16);
        w
    };
    let inventory = world.inventory();
    let before_len = trust::length(&inventory.iam.roles[arn("big").as_str()].trust_policy());
    assert!(
        before_len < 2048 && before_len + 450 > 2048,
        "fixture sized to cross the limit: {before_len}"
    );
    let plan = plan(&inventory, "test", &Settings::default()).unwrap();
    assert!(plan.bindings.is_empty());
    assert_eq!(skipped(&plan, "api"), Some(Code::TrustPolicyTooLarge));
    let finding = plan
        .findings
        .iter()
        .find(|f| f.code == Code::TrustPolicyTooLarge)
        .expect("finding");
    assert!(
        finding.message.contains("2048") && finding.message.contains(&before_len.to_string()),
        "{}",
        finding.message
    );
    assert!(
        !serde_json::to_string(&plan.steps)
            .unwrap()
            .contains("StringLike")
    );
    // A raised quota lets it through.
    let raised = super::plan(
        &inventory,
        "test",
        &Settings {
            trust_policy_limit: 4096,
            ..Settings::default()
        },
    )
    .unwrap();
    assert_eq!(raised.bindings.len(), 1);
    assert!(matches!(
        super::plan(
            &inventory,
            "test",
            &Settings {
                trust_policy_limit: 4097,
                ..Settings::default()
            }
        ),
        Err(PlanError::LimitOutOfRange(4097))
    ));
}

#[test]
fn a_missing_provider_is_created_and_an_existing_one_is_not() {
    let mut world = one_workload();
    let plan = world.plan();
    let create = step(
        &plan,
        &format!("create-oidc-provider:arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"),
    );
    assert_eq!(
        create.after.value()["ClientIDList"],
        json!(["sts.amazonaws.com"])
    );
    assert_eq!(create.phase, Phase::Prepare);
    world.provider(ACCOUNT);
    assert!(
        world
            .plan()
            .steps
            .iter()
            .all(|s| s.kind != StepKind::CreateOidcProvider)
    );
}

#[test]
fn roles_in_another_account_are_changed_there_with_its_own_provider() {
    let foreign = "arn:aws:iam::444455556666:role/reports";
    let plan = World::new()
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some(foreign))
        .foreign_role(foreign)
        .provider(ACCOUNT)
        .plan();
    let trust = step(&plan, &format!("update-role-trust:{foreign}"));
    assert_eq!(trust.target.account(), Some("444455556666"));
    let federated = &trust.after.value()["Statement"][1]["Principal"]["Federated"];
    assert_eq!(
        federated,
        &json!(format!("arn:aws:iam::444455556666:oidc-provider/{ISSUER}"))
    );
    step(
        &plan,
        &format!("create-oidc-provider:arn:aws:iam::444455556666:oidc-provider/{ISSUER}"),
    );
    let note = plan
        .accounts
        .iter()
        .find(|a| a.account == "444455556666")
        .expect("account note");
    assert!(
        note.credentials.contains("--account-profile 444455556666="),
        "{}",
        note.credentials
    );
}
