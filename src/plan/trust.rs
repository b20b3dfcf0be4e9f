//! Trust-policy editing for IRSA: add exact web-identity statements, remove the legacy principal,
//! and count a document's length the way IAM does.
//!
//! Every edit leaves the statements it does not touch exactly as they were.

use serde_json::{Map, Value, json};

use crate::iam::policy::PolicyDocument;

/// The audience the pod identity webhook requests tokens for, and the provider's client id.
pub const AUDIENCE: &str = "sts.amazonaws.com";
pub const WEB_IDENTITY_ACTION: &str = "sts:AssumeRoleWithWebIdentity";

/// IAM's default role trust-policy quota, and the most it can be raised to.
pub const DEFAULT_TRUST_POLICY_LIMIT: usize = 2048;
pub const MAX_TRUST_POLICY_LIMIT: usize = 4096;

/// `system:serviceaccount:<namespace>:<name>`, the token's `sub`.
pub fn subject(namespace: &str, service_account: &str) -> String {
    format!("system:serviceaccount:{namespace}:{service_account}")
}

/// The length IAM checks against the quota: characters of the minified JSON.
pub fn length(document: &PolicyDocument) -> usize {
    serde_json::to_string(&document.0)
        .map(|s| s.chars().count())
        .unwrap_or(usize::MAX)
}

/// Adds `subjects` to the trust policy for `provider_arn`, with `StringEquals` on both
/// `<issuer>:sub` and `<issuer>:aud`. Merges into an existing statement of exactly that shape
/// (same provider, `StringEquals` only, same audience, an explicit `:sub`); otherwise appends one.
/// Subjects already trusted that way are not added again.
pub fn add_web_identity(
    before: &PolicyDocument,
    provider_arn: &str,
    issuer_host_path: &str,
    subjects: &[String],
) -> PolicyDocument {
    let sub_key = format!("{issuer_host_path}:sub");
    let aud_key = format!("{issuer_host_path}:aud");
    let mut document = before.0.clone();
    let statements = statements_mut(&mut document);
    let mergeable = statements
        .iter()
        .position(|s| is_exact_web_identity(s, provider_arn, &sub_key, &aud_key));
    let already: Vec<String> = statements
        .iter()
        .filter(|s| is_exact_web_identity(s, provider_arn, &sub_key, &aud_key))
        .flat_map(|s| strings(&s["Condition"]["StringEquals"][&sub_key]))
        .collect();
    let mut missing: Vec<String> = subjects
        .iter()
        .filter(|s| !already.contains(s))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return PolicyDocument(document);
    }
    match mergeable {
        Some(index) => {
            let conditions = &mut statements[index]["Condition"]["StringEquals"];
            let mut subs = strings(&conditions[&sub_key]);
            subs.extend(missing);
            conditions[&sub_key] = one_or_many(subs);
        }
        None => statements.push(json!({
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": WEB_IDENTITY_ACTION,
            "Condition": {"StringEquals": {aud_key: AUDIENCE, sub_key: one_or_many(missing)}},
        })),
    }
    PolicyDocument(document)
}

/// Removes `principal` from every `Allow` statement's `Principal.AWS` that grants
/// `sts:AssumeRole` without a condition; a statement left with no principal at all is removed.
/// A statement with a condition (an `sts:ExternalId`, a source) serves a purpose the legacy path
/// does not show, so it stays as it is ([`conditioned_trust`] counts them, to report).
pub fn remove_principal(before: &PolicyDocument, principal: &str) -> PolicyDocument {
    let mut document = before.0.clone();
    let statements = statements_mut(&mut document);
    statements.retain_mut(|statement| {
        if statement.get("Condition").is_some() {
            return true;
        }
        let grants = PolicyDocument(json!({"Statement": [statement.clone()]}))
            .statements()
            .first()
            .is_some_and(|s| s.effect_allow && s.grants_action("sts:AssumeRole"));
        if !grants {
            return true;
        }
        let Some(principals) = statement
            .get_mut("Principal")
            .and_then(Value::as_object_mut)
        else {
            return true;
        };
        let Some(aws) = principals.get("AWS") else {
            return true;
        };
        let remaining: Vec<String> = strings(aws)
            .into_iter()
            .filter(|p| p != principal)
            .collect();
        if remaining.len() == strings(aws).len() {
            return true;
        }
        if remaining.is_empty() {
            principals.remove("AWS");
        } else {
            principals.insert("AWS".into(), one_or_many(remaining));
        }
        !principals.is_empty()
    });
    PolicyDocument(document)
}

/// How many `Allow` statements trust `principal` (in `Principal.AWS`) under a condition: those
/// [`remove_principal`] keeps.
pub fn conditioned_trust(document: &PolicyDocument, principal: &str) -> usize {
    let Some(statements) = document.0.get("Statement") else {
        return 0;
    };
    let list = match statements {
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    list.iter()
        .filter(|s| {
            s.get("Effect").and_then(Value::as_str) == Some("Allow")
                && s.get("Condition").is_some()
                && strings(&s["Principal"]["AWS"])
                    .iter()
                    .any(|p| p == principal)
        })
        .count()
}

/// What removing the legacy path's `sts:AssumeRole` grants from a permission policy leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRemoval {
    /// The policy afterwards (`None`: no statement is left, the policy goes).
    pub after: Option<PolicyDocument>,
    /// Whether anything was removed.
    pub changed: bool,
    /// Each grant that stays, and why (a condition, other resources, a wildcard action).
    pub kept: Vec<String>,
}

/// Removes `sts:AssumeRole` from each `Allow` statement whose resources are all in `legacy` (the
/// roles the plan migrated, and the kiam server role) and that has no condition, the statement
/// with it when it was its only action. Every other statement stays as it is, and each one that
/// could still grant `sts:AssumeRole` is described in `kept`: one with a condition (an
/// `sts:ExternalId`, a source), one on other resources (`*`, another cluster's or account's
/// roles), `NotAction`/`NotResource`, or a wildcard action (`sts:*`, `*`), never edited here.
pub fn remove_legacy_grants(
    before: &PolicyDocument,
    legacy: &std::collections::BTreeSet<&str>,
) -> GrantRemoval {
    let mut document = before.0.clone();
    let mut kept = Vec::new();
    let mut changed = false;
    let statements = statements_mut(&mut document);
    let mut index = 0;
    statements.retain_mut(|statement| {
        index += 1;
        let n = index;
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            return true;
        }
        if statement.get("NotAction").is_some() {
            kept.push(format!("statement {n} uses NotAction, which may allow sts:AssumeRole: kept, review by hand"));
            return true;
        }
        let actions = strings(statement.get("Action").unwrap_or(&Value::Null));
        for wildcard in actions.iter().filter(|a| {
            a.contains(['*', '?']) && crate::iam::wildcard_match(&a.to_ascii_lowercase(), "sts:assumerole")
        }) {
            kept.push(format!("statement {n} allows {wildcard}, which includes sts:AssumeRole: kept, narrow it by hand"));
        }
        if !actions.iter().any(|a| a.eq_ignore_ascii_case("sts:AssumeRole")) {
            return true;
        }
        if statement.get("Condition").is_some() {
            kept.push(format!("statement {n} allows sts:AssumeRole under a condition, for a purpose the legacy path does not show: kept"));
            return true;
        }
        if statement.get("NotResource").is_some() {
            kept.push(format!("statement {n} allows sts:AssumeRole on everything but its NotResource: kept, review by hand"));
            return true;
        }
        let resources = strings(statement.get("Resource").unwrap_or(&Value::Null));
        let others: Vec<&String> = resources.iter().filter(|r| !legacy.contains(r.as_str())).collect();
        if resources.is_empty() || !others.is_empty() {
            let others: Vec<&str> = others.iter().map(|r| r.as_str()).collect();
            kept.push(format!(
                "statement {n} allows sts:AssumeRole on {}, not only roles this plan migrated or the kiam server role: kept",
                if others.is_empty() { "no named resource".to_string() } else { others.join(", ") }
            ));
            return true;
        }
        changed = true;
        let remaining: Vec<String> = actions
            .into_iter()
            .filter(|a| !a.eq_ignore_ascii_case("sts:AssumeRole"))
            .collect();
        if remaining.is_empty() {
            return false;
        }
        statement["Action"] = one_or_many(remaining);
        true
    });
    let emptied = statements.is_empty();
    let after = (!emptied).then_some(PolicyDocument(document));
    GrantRemoval {
        after,
        changed,
        kept,
    }
}

/// Whether the document grants `sts:AssumeRole` by exact action name (what the removal edits).
pub fn has_exact_assume_role_grant(document: &PolicyDocument) -> bool {
    document.statements().iter().any(|s| {
        s.effect_allow
            && s.raw.get("Action").is_some_and(|a| {
                strings(a)
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case("sts:AssumeRole"))
            })
    })
}

fn is_exact_web_identity(
    statement: &Value,
    provider_arn: &str,
    sub_key: &str,
    aud_key: &str,
) -> bool {
    let Some(object) = statement.as_object() else {
        return false;
    };
    let principal_ok = object
        .get("Principal")
        .and_then(|p| p.get("Federated"))
        .is_some_and(|f| strings(f) == [provider_arn]);
    let action_ok = object
        .get("Action")
        .is_some_and(|a| strings(a) == [WEB_IDENTITY_ACTION]);
    let condition = object.get("Condition").and_then(Value::as_object);
    let condition_ok = condition.is_some_and(|c| {
        c.len() == 1
            && c.get("StringEquals")
                .and_then(Value::as_object)
                .is_some_and(|equals| {
                    equals.len() == 2
                        && strings(equals.get(aud_key).unwrap_or(&Value::Null)) == [AUDIENCE]
                        && equals.get(sub_key).is_some()
                })
    });
    object.get("Effect").and_then(Value::as_str) == Some("Allow")
        && principal_ok
        && action_ok
        && condition_ok
}

/// The statement list, normalising a single statement object into a list.
fn statements_mut(document: &mut Value) -> &mut Vec<Value> {
    if !document.is_object() {
        *document = Value::Object(Map::new());
    }
    let object = document.as_object_mut().expect("made an object above");
    let statements = object
        .entry("Statement")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !statements.is_array() {
        let single = statements.take();
        *statements = Value::Array(vec![single]);
    }
    statements.as_array_mut().expect("made an array above")
}

pub(crate) fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM's shorthand: one value as a string, several as a list.
fn one_or_many(mut values: Vec<String>) -> Value {
    if values.len() == 1 {
        Value::String(values.remove(0))
    } else {
        Value::Array(values.into_iter().map(Value::String).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str =
        "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC";
    const ISSUER: &str = "oidc.eks.eu-west-1.amazonaws.com/id/ABC";
    const KIAM: &str = "arn:aws:iam::111122223333:role/kiam-server";

    fn doc(value: Value) -> PolicyDocument {
        PolicyDocument(value)
    }

    fn legacy_trust() -> PolicyDocument {
        doc(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": KIAM}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    }

    #[test]
    fn adds_an_exact_statement_and_keeps_the_others() {
        let before = legacy_trust();
        let after = add_web_identity(&before, PROVIDER, ISSUER, &[subject("payments", "api")]);
        let statements = after.0["Statement"].as_array().unwrap();
        assert_eq!(
            &statements[..2],
            before.0["Statement"].as_array().unwrap().as_slice()
        );
        assert_eq!(
            statements[2],
            json!({"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity",
                   "Condition": {"StringEquals": {
                       "oidc.eks.eu-west-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
                       "oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:payments:api"}}})
        );
        // No wildcard anywhere, no StringLike.
        let text = serde_json::to_string(&after.0).unwrap();
        assert!(
            !text.contains("StringLike") && !text.contains(":*"),
            "{text}"
        );
    }

    #[test]
    fn merges_into_the_statement_for_the_same_provider_and_is_idempotent() {
        let once = add_web_identity(&legacy_trust(), PROVIDER, ISSUER, &[subject("a", "x")]);
        let twice = add_web_identity(
            &once,
            PROVIDER,
            ISSUER,
            &[subject("b", "y"), subject("a", "x")],
        );
        let statements = twice.0["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 3, "merged, not appended");
        assert_eq!(
            statements[2]["Condition"]["StringEquals"][format!("{ISSUER}:sub")],
            json!(["system:serviceaccount:a:x", "system:serviceaccount:b:y"])
        );
        assert_eq!(
            add_web_identity(&twice, PROVIDER, ISSUER, &[subject("b", "y")]),
            twice
        );
    }

    #[test]
    fn does_not_merge_into_a_wider_or_foreign_statement() {
        let namespace_wide = doc(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {format!("{ISSUER}:sub"): "system:serviceaccount:a:*"},
                          "StringEquals": {format!("{ISSUER}:aud"): "sts.amazonaws.com"}}}]}),
        );
        let after = add_web_identity(&namespace_wide, PROVIDER, ISSUER, &[subject("a", "x")]);
        let statements = after.0["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(
            statements[0], namespace_wide.0["Statement"][0],
            "the existing statement is untouched"
        );
        let other_cluster = doc(
            json!({"Statement": {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/other"},
            "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {"other:sub": "system:serviceaccount:a:x", "other:aud": "sts.amazonaws.com"}}}}),
        );
        let after = add_web_identity(&other_cluster, PROVIDER, ISSUER, &[subject("a", "x")]);
        assert_eq!(
            after.0["Statement"].as_array().unwrap().len(),
            2,
            "a single statement object becomes a list of two"
        );
    }

    #[test]
    fn length_counts_minified_characters() {
        let document = doc(json!({"Version": "2012-10-17", "Statement": []}));
        assert_eq!(
            length(&document),
            r#"{"Statement":[],"Version":"2012-10-17"}"#.len()
        );
    }

    #[test]
    fn removes_only_the_legacy_principal() {
        let with_irsa = add_web_identity(&legacy_trust(), PROVIDER, ISSUER, &[subject("a", "x")]);
        let after = remove_principal(&with_irsa, KIAM);
        let statements = after.0["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Principal"]["Service"], "ec2.amazonaws.com");
        assert_eq!(statements[1]["Action"], WEB_IDENTITY_ACTION);
        let shared = doc(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": [KIAM, "arn:aws:iam::111122223333:role/ci"]}, "Action": "sts:AssumeRole"}]}),
        );
        assert_eq!(
            remove_principal(&shared, KIAM).0["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:role/ci"
        );
    }

    #[test]
    fn removes_legacy_grants_and_keeps_other_actions() {
        let app = "arn:aws:iam::111122223333:role/app";
        let legacy = std::collections::BTreeSet::from([app, KIAM]);
        let grants = doc(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [app, KIAM]},
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "ec2:DescribeRegions"], "Resource": app}]}));
        assert!(has_exact_assume_role_grant(&grants));
        let removal = remove_legacy_grants(&grants, &legacy);
        assert!(removal.changed && removal.kept.is_empty());
        let after = removal.after.unwrap();
        assert_eq!(
            after.0["Statement"],
            json!([{"Effect": "Allow", "Action": "ec2:DescribeRegions", "Resource": app}])
        );
        assert!(!has_exact_assume_role_grant(&after));
        let only = doc(
            json!({"Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": app}]}),
        );
        assert_eq!(remove_legacy_grants(&only, &legacy).after, None);
        // `*` is not exactly the legacy path's roles: kept, and said.
        let everything = doc(
            json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}),
        );
        let removal = remove_legacy_grants(&everything, &legacy);
        assert!(!removal.changed);
        assert_eq!(removal.after, Some(everything));
        assert_eq!(removal.kept.len(), 1, "{:?}", removal.kept);
    }
}
