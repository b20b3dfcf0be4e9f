//! A step's target: every name valid for its kind, every ARN an IAM ARN of a known partition
//! and of the account the target names.

use super::{At, Checked, never_moves};
use crate::iam::arn::{Arn, is_known_partition};
use crate::names;
use crate::plan::step::Target;

/// Names and ARNs in the target, valid for their kind.
pub(super) fn check_target(at: &At<'_>) -> Checked {
    let invalid = |field: &str, e: &dyn std::fmt::Display| at.invalid(field, e.to_string());
    match &at.step.target {
        Target::OidcProvider { account, arn } => {
            let parsed = Arn::parse(arn).map_err(|e| invalid("target.arn", &e))?;
            check_iam_arn(at, "target.arn", &parsed, account, "oidc-provider/")
        }
        Target::Role { account, arn } => {
            check_iam_arn(at, "target.arn", arn.as_arn(), account, "role/")
        }
        Target::InlinePolicy {
            account,
            role_arn,
            policy_name,
        } => {
            check_iam_arn(at, "target.role_arn", role_arn.as_arn(), account, "role/")?;
            let valid = !policy_name.is_empty()
                && policy_name.len() <= 128
                && policy_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if valid {
                Ok(())
            } else {
                Err(at.invalid(
                    "target.policy_name",
                    format!("{policy_name:?} is not an IAM policy name"),
                ))
            }
        }
        Target::ServiceAccount { namespace, name } => {
            names::namespace(namespace).map_err(|e| invalid("target.namespace", &e))?;
            names::subdomain("service account", name).map_err(|e| invalid("target.name", &e))?;
            Ok(())
        }
        Target::RbacBinding {
            kind,
            namespace,
            name,
        } => {
            match (kind.as_str(), namespace) {
                ("RoleBinding", Some(namespace)) => {
                    names::namespace(namespace).map_err(|e| invalid("target.namespace", &e))?;
                }
                ("ClusterRoleBinding", None) => {}
                _ => return Err(at.invalid(
                    "target.kind",
                    format!(
                        "{kind:?}: a copy is a RoleBinding in a namespace or a ClusterRoleBinding"
                    ),
                )),
            }
            names::subdomain("binding", name).map_err(|e| invalid("target.name", &e))?;
            Ok(())
        }
        Target::Workload {
            namespace,
            kind,
            name,
        } => {
            names::namespace(namespace).map_err(|e| invalid("target.namespace", &e))?;
            names::subdomain("workload", name).map_err(|e| invalid("target.name", &e))?;
            if never_moves(*kind) {
                return Err(at.invalid(
                    "target.kind",
                    format!("a {} is never changed", kind.as_str()),
                ));
            }
            Ok(())
        }
    }
}

fn check_iam_arn(at: &At<'_>, field: &str, arn: &Arn, account: &str, resource: &str) -> Checked {
    if !is_known_partition(&arn.partition) {
        return Err(at.invalid(
            field,
            format!("{:?} is not an AWS partition", arn.partition),
        ));
    }
    if arn.service != "iam" || !arn.region.is_empty() || !arn.resource.starts_with(resource) {
        return Err(at.invalid(field, format!("not an IAM {resource} ARN")));
    }
    if arn.account != account {
        return Err(at.invalid(
            "target.account",
            format!("{account:?} is not the ARN's account {}", arn.account),
        ));
    }
    if arn.resource.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(at.invalid(field, "holds a character IAM never puts in an ARN"));
    }
    Ok(())
}
