//! The plan's cluster: a known partition, a 12-digit account, an https issuer of a host and path,
//! and the provider ARN that issuer gives; the facts every step is checked against.

use super::InvalidPlan;
use crate::iam::arn::{is_account_id, is_known_partition};
use crate::plan::document::Plan;

/// The cluster's facts every step is checked against.
pub(super) struct ClusterFacts {
    pub(super) issuer_url: String,
    pub(super) issuer_host: String,
}

pub(super) fn check_cluster(plan: &Plan) -> Result<ClusterFacts, InvalidPlan> {
    let invalid = |field: &str, message: String| InvalidPlan {
        place: "cluster".into(),
        field: field.into(),
        message,
    };
    let cluster = &plan.cluster;
    if !is_known_partition(&cluster.partition) {
        return Err(invalid(
            "partition",
            format!("{:?} is not an AWS partition", cluster.partition),
        ));
    }
    if !is_account_id(&cluster.account) {
        return Err(invalid(
            "account",
            format!("{:?} is not a 12-digit account id", cluster.account),
        ));
    }
    let issuer_host = cluster
        .oidc_issuer
        .strip_prefix("https://")
        .filter(|host| is_issuer_host_path(host))
        .ok_or_else(|| {
            invalid(
                "oidc_issuer",
                format!(
                    "{:?} is not an https:// issuer URL of a host and path",
                    cluster.oidc_issuer
                ),
            )
        })?;
    let provider =
        crate::iam::arn::oidc_provider_arn(&cluster.partition, &cluster.account, issuer_host);
    if cluster.oidc_provider_arn != provider {
        return Err(invalid(
            "oidc_provider_arn",
            format!(
                "{:?} is not {provider:?}, the issuer's provider",
                cluster.oidc_provider_arn
            ),
        ));
    }
    Ok(ClusterFacts {
        issuer_url: cluster.oidc_issuer.clone(),
        issuer_host: issuer_host.to_string(),
    })
}

/// Host and path of an issuer: DNS characters and `/`, no wildcard, no empty host.
fn is_issuer_host_path(text: &str) -> bool {
    let host = text.split('/').next().unwrap_or_default();
    !host.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'/' | b'_'))
        && !text.split('/').any(|s| s == "..")
}
