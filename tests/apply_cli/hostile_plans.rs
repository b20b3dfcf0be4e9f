//! Plans edited to do harm (paths out of the rehearsal, trust for another role or everyone, an
//! added binding to cluster-admin, a step in the wrong phase): refused, nothing written.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{self, stderr};
use crate::workspace::{PLAN, demo_workspace, journal_entries, rehearsal, rehearse};

/// Edits the demo plan in `dir` through `edit`, which gets the steps array.
fn edit_plan(dir: &Path, edit: impl FnOnce(&mut Vec<Value>)) {
    edit_document(dir, |plan| edit(plan["steps"].as_array_mut().unwrap()));
}

/// Edits the whole demo plan document in `dir`.
fn edit_document(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join(PLAN);
    let mut plan: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut plan);
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
}

fn step_mut<'a>(steps: &'a mut [Value], id: &str) -> &'a mut Value {
    steps.iter_mut().find(|s| s["id"] == id).unwrap()
}

/// Edits step `id` of a fresh demo plan through `edit`, then checks the plan is refused with
/// nothing written ([`assert_refused_with_nothing_written`]); returns apply's error.
fn refused_step_edit(
    id: &str,
    edit: impl FnOnce(&mut Value),
    named: &[&str],
    checked: &[&str],
) -> String {
    let dir = demo_workspace();
    edit_plan(dir.path(), |steps| edit(step_mut(steps, id)));
    assert_refused_with_nothing_written(dir.path(), named, checked)
}

/// Applies the edited demo plan in rehearsal and checks it is refused with nothing written: no
/// file outside the migration directory, no rehearsal state changed, no journal entry.
/// `named` must be in apply's refusal, `checked` in what `status` (the step-by-step check alone)
/// says of the same plan.
fn assert_refused_with_nothing_written(dir: &Path, named: &[&str], checked: &[&str]) -> String {
    let before = support::files_under(dir);
    let output = rehearse(dir, "apply", &["--phase", "all", "--yes"]);
    let error = stderr(&output);
    assert!(
        matches!(output.status.code(), Some(2 | 3)),
        "exit {:?}: {error}",
        output.status.code()
    );
    // Apply compares a plan not yet applied with the planner's own first, naming each step that
    // differs; the step-by-step check names the field too, as `status` (which runs only it) shows.
    for name in named {
        assert!(
            error.contains(name),
            "the error does not name {name:?}: {error}"
        );
    }
    let status = stderr(&rehearse(dir, "status", &[]));
    for name in checked {
        assert!(
            status.contains(name),
            "status does not name {name:?}: {status}"
        );
    }
    let after = support::files_under(dir);
    let new: Vec<&PathBuf> = after
        .iter()
        .filter(|f| !before.contains(f) && !f.starts_with("migrations/demo/rehearsal"))
        .collect();
    assert!(new.is_empty(), "written outside the rehearsal: {new:?}");
    let rehearsal = rehearsal(dir);
    if rehearsal.exists() {
        assert!(
            journal_entries(dir).is_empty(),
            "{:?}",
            journal_entries(dir)
        );
        let snapshot = dir.join("migrations/demo/snapshot");
        for file in support::files_under(&rehearsal)
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            assert_eq!(
                std::fs::read(rehearsal.join(file)).ok(),
                std::fs::read(snapshot.join(file)).ok(),
                "rehearsal file {} changed",
                file.display()
            );
        }
    }
    error
}

const CREATED_ACCOUNT: &str =
    "create-service-account:payments/ServiceAccount/default-payments-worker";
const RBAC_COPY: &str =
    "copy-rbac-binding:ClusterRoleBinding/payments-node-reader-default-payments-worker";
const CHECKOUT_TRUST: &str = "update-role-trust:arn:aws:iam::111122223333:role/checkout-web";
const PLATFORM_ADMIN: &str = "arn:aws:iam::111122223333:role/platform-admin";

#[test]
fn a_plan_step_with_a_traversal_namespace_writes_nothing_outside_the_rehearsal() {
    // Regression: rehearsal files were joined from the step's namespace, so a created service
    // account in `../../../../x` was written outside the migration directory.
    let traversal = "../../../../x";
    let edit = |step: &mut Value| {
        step["target"]["namespace"] = traversal.into();
        step["after"]["metadata"]["namespace"] = traversal.into();
    };
    refused_step_edit(CREATED_ACCOUNT, edit, &[traversal], &[traversal]);
}

#[test]
fn a_plan_step_with_a_traversal_kind_writes_nothing_outside_the_rehearsal() {
    // Regression: a copied binding's kind became a rehearsal file name.
    let traversal = "../../../../y";
    let edit = |step: &mut Value| {
        step["target"]["kind"] = traversal.into();
        step["after"]["kind"] = traversal.into();
    };
    refused_step_edit(RBAC_COPY, edit, &[traversal], &[traversal]);
}

/// `document` with a statement that lets everyone assume the role.
fn with_wildcard_principal(mut document: Value) -> Value {
    let statements = document["Statement"].as_array_mut().unwrap();
    statements
        .push(json!({"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": "*"}}));
    document
}

/// Aims a trust step at platform-admin, changing its trust (as the demo has it) to let
/// everyone assume it.
fn aim_at_platform_admin(step: &mut Value) {
    let before = json!({"Version": "2012-10-17", "Statement": [{
        "Action": "sts:AssumeRole", "Effect": "Allow",
        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"}}]});
    step["target"]["arn"] = PLATFORM_ADMIN.into();
    step["after"] = with_wildcard_principal(before.clone());
    step["before"] = before;
}

#[test]
fn a_trust_step_aimed_at_another_role_than_its_id_is_refused() {
    // Regression (the hostile plan): a step still reading
    // update-role-trust:…role/checkout-web gave role/platform-admin the trust Principal {"AWS":"*"}.
    refused_step_edit(
        CHECKOUT_TRUST,
        aim_at_platform_admin,
        &[CHECKOUT_TRUST],
        &[CHECKOUT_TRUST, "field id"],
    );
}

#[test]
fn a_trust_step_that_adds_a_wildcard_principal_is_refused() {
    // The same edit with an id that matches its target: only the planner's own edit passes.
    let edit = |step: &mut Value| step["after"] = with_wildcard_principal(step["after"].take());
    refused_step_edit(
        CHECKOUT_TRUST,
        edit,
        &[CHECKOUT_TRUST],
        &[CHECKOUT_TRUST, "field after"],
    );
    // A step for a role no binding names is refused even when its id is consistent.
    let id = format!("update-role-trust:{PLATFORM_ADMIN}");
    let edit = |step: &mut Value| {
        aim_at_platform_admin(step);
        step["id"] = id.clone().into();
    };
    refused_step_edit(CHECKOUT_TRUST, edit, &[&id], &[&id, "field target.arn"]);
}

#[test]
fn an_added_rbac_copy_to_cluster_admin_is_refused() {
    // Regression (the hostile plan): an added copy-rbac-binding step bound a service
    // account to cluster-admin. Its id, phase and shape are consistent; only the plan's own
    // snapshot tells that no binding of the shared account grants cluster-admin.
    let dir = demo_workspace();
    let name = "cluster-admin-default-payments-worker";
    let id = format!("copy-rbac-binding:ClusterRoleBinding/{name}");
    edit_plan(dir.path(), |steps| {
        let mut added = step_mut(steps, RBAC_COPY).clone();
        added["id"] = id.clone().into();
        added["target"]["name"] = name.into();
        added["after"]["metadata"]["name"] = name.into();
        added["after"]["roleRef"]["name"] = "cluster-admin".into();
        steps.push(added);
    });
    assert_refused_with_nothing_written(dir.path(), &[&id, "cluster-admin"], &[]);
}

#[test]
fn a_step_in_another_phase_than_its_kind_is_refused() {
    refused_step_edit(
        "remove-legacy-trust:arn:aws:iam::111122223333:role/checkout-web",
        |step| step["phase"] = "prepare".into(),
        &["remove-legacy-trust"],
        &["remove-legacy-trust", "field phase"],
    );
}

#[test]
fn a_plan_with_a_role_arn_that_is_no_role_is_refused_naming_the_field() {
    // Role ARNs are read typed; the refusal still names the place and field, as the plan's
    // checks name every other field.
    let dir = demo_workspace();
    edit_document(dir.path(), |plan| {
        plan["bindings"][1]["role_arn"] = "arn:aws:iam::111122223333:user/admin".into();
    });
    let field = "bindings[1]: field role_arn";
    let error = assert_refused_with_nothing_written(dir.path(), &[field], &[field]);
    assert!(error.contains("is not an IAM role ARN"), "{error}");
    refused_step_edit(
        CHECKOUT_TRUST,
        |step| step["target"]["arn"] = "arn:aws:s3:::bucket".into(),
        &[&format!("{CHECKOUT_TRUST}): field target.arn")],
        &["field target.arn"],
    );
}
