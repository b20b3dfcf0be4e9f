//! One workload's usage: the role it gets through kiam/kube2iam (annotation or default role),
//! whether the agent permits it, whether the role trusts the legacy principal, its IRSA role and
//! the owner that manages its manifest.

use crate::iam::arn::RoleArn;
use crate::iam::policy::TrustVerdict;
use crate::iam::written_arn::WrittenRoleArn;
use crate::inventory::Inventory;
use crate::legacy::{self, DefaultRole, LegacyAgent, Verdict};
use crate::ownership;

use super::agents::LegacyAnnotations;
use super::model::{IRSA_ANNOTATION, LegacyRole, RoleSource, Status, Trust, Usage};
use super::workloads::Candidate;

pub(super) fn usage(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    principals: &[(RoleArn, String)],
    candidate: &Candidate<'_>,
) -> Option<Usage> {
    let namespace = &candidate.key.namespace;
    let service_account = candidate.spec.service_account().to_string();
    let irsa_role_arn = inventory
        .service_accounts
        .get(&(namespace.clone(), service_account.clone()))
        .and_then(|sa| sa.metadata.annotations.get(IRSA_ANNOTATION))
        .map(|arn| WrittenRoleArn::parse(arn));
    let legacy = legacy_role(inventory, agent, principals, candidate);
    if legacy.is_none() && irsa_role_arn.is_none() {
        return None;
    }
    let status = match (&legacy, &irsa_role_arn) {
        (Some(_), Some(_)) => Status::Both,
        (Some(_), None) => Status::Legacy,
        _ => Status::Irsa,
    };
    let host_network = candidate.spec.host_network;
    let works_today = !host_network
        && legacy
            .as_ref()
            .is_some_and(|l| l.verdict.permitted && matches!(l.trust, Trust::Trusted { .. }));
    Some(Usage {
        pods: candidate.pods,
        legacy,
        irsa_role_arn,
        status,
        host_network,
        owner: ownership::of_object(candidate.metadata),
        works_today,
        rollout_hold: candidate.hold,
    })
}

fn legacy_role(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    principals: &[(RoleArn, String)],
    candidate: &Candidate<'_>,
) -> Option<LegacyRole> {
    let keys = LegacyAnnotations::of(agent);
    let annotation = candidate.template_annotations.get(keys.role).cloned();
    let external_id = candidate
        .template_annotations
        .get(keys.external_id)
        .cloned();
    let default_arn = match agent.and_then(|a| a.default_role.as_ref()) {
        Some(DefaultRole::Explicit(arn)) => Some(arn.clone()),
        _ => None,
    };
    let (source, arn) = match (&annotation, agent) {
        // kiam treats an empty annotation as no role.
        (Some(value), Some(agent))
            if !(value.is_empty() && agent.system == legacy::System::Kiam) =>
        {
            (RoleSource::Annotation, agent.resolve(value))
        }
        (Some(value), None) if !value.is_empty() => (RoleSource::Annotation, None),
        (None, Some(_)) if default_arn.is_some() && !candidate.spec.host_network => {
            (RoleSource::DefaultRole, default_arn)
        }
        _ => return None,
    };
    let arn = arn.map(|arn| WrittenRoleArn::parse(&arn));
    let namespace = inventory.namespaces.get(&candidate.key.namespace);
    let verdict = match (agent, &arn) {
        (None, _) => Verdict {
            permitted: false,
            rule: "no legacy agent is installed".into(),
            invalid: None,
        },
        (Some(_), _) if namespace.is_none() => Verdict {
            permitted: false,
            rule: format!(
                "namespace {} is not in the source, so what the agent permits there is unknown",
                candidate.key.namespace
            ),
            invalid: None,
        },
        (Some(_), None) => Verdict {
            permitted: false,
            rule: "the agent's base ARN is unknown, so the role cannot be resolved".into(),
            invalid: None,
        },
        (Some(agent), Some(arn)) => agent.permits(namespace, arn.as_str()),
    };
    let trust = trust(inventory, principals, arn.as_ref());
    Some(LegacyRole {
        annotation,
        source,
        arn,
        verdict,
        trust,
        external_id,
    })
}

fn trust(
    inventory: &Inventory,
    principals: &[(RoleArn, String)],
    arn: Option<&WrittenRoleArn>,
) -> Trust {
    let Some(arn) = arn else {
        return Trust::Unknown {
            reason: "the role ARN could not be resolved".into(),
        };
    };
    let role_arn = match arn.role() {
        Ok(role_arn) => role_arn,
        Err(e) => {
            return Trust::Unknown {
                reason: e.to_string(),
            };
        }
    };
    let Some(role) = inventory.iam.role(role_arn) else {
        return if inventory.iam.accounts.contains(role_arn.account()) {
            Trust::RoleNotFound
        } else {
            Trust::Unknown {
                reason: format!(
                    "no IAM data for account {} in the source",
                    role_arn.account()
                ),
            }
        };
    };
    let trust_policy = role.trust_policy();
    principals
        .iter()
        .filter_map(|(principal, _)| {
            let verdict = trust_policy.trusts_role(principal);
            match verdict {
                TrustVerdict::Trusted(how) | TrustVerdict::TrustedWithCondition(how) => {
                    Some(Trust::Trusted {
                        principal: principal.to_string(),
                        how,
                        conditional: matches!(verdict, TrustVerdict::TrustedWithCondition(_)),
                    })
                }
                _ => None,
            }
        })
        .next()
        .unwrap_or(Trust::Missing)
}
