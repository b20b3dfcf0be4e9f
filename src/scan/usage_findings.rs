//! The findings about one usage: what keeps it from migrating as it stands (bare pod, Job,
//! hold, hostNetwork, invalid or refused role, missing trust) and what someone must check
//! (managing tools, cross-account roles, ExternalId, the token's file mode before 1.19).

use crate::findings::{Code, Finding};
use crate::iam::written_arn::WrittenRoleArn;
use crate::inventory::kube::PodSpec;
use crate::inventory::{Inventory, WorkloadKind};
use crate::ownership::Owner;

use super::model::{IRSA_ANNOTATION, RoleSource, ScannedWorkload, Trust, Usage};
use super::workloads::Candidate;

pub(super) fn usage_findings(
    inventory: &Inventory,
    workload: &ScannedWorkload,
    usage: &Usage,
    candidate: &Candidate<'_>,
    findings: &mut Vec<Finding>,
) {
    let subject = workload.subject();
    let mut add =
        |code: Code, message: String| findings.push(Finding::new(code, subject.clone(), message));
    if let Some(irsa) = &usage.irsa_role_arn {
        let legacy_arn = usage.legacy.as_ref().and_then(|l| l.arn.as_ref());
        let note = match legacy_arn {
            Some(arn) if arn != irsa => format!(
                "; it differs from the legacy role {arn}, and IRSA wins in the SDK credential chain"
            ),
            Some(_) => {
                "; the legacy annotation names the same role, so only the legacy path is left to remove".to_string()
            }
            None => String::new(),
        };
        add(
            Code::AlreadyIrsa,
            format!(
                "service account {} already carries {IRSA_ANNOTATION}={irsa}{note}",
                workload.service_account
            ),
        );
    }
    match candidate.key.kind {
        WorkloadKind::Pod => add(
            Code::BarePod,
            match &candidate.foreign_owner {
                Some(owner) => format!("owned by {owner}, which this tool does not patch: change its pod template by hand, then its pods are re-created"),
                None => "no controller: the pod must be deleted and re-created with the new service account".to_string(),
            },
        ),
        WorkloadKind::Job => add(
            Code::JobImmutable,
            "a Job's pod template is immutable: it must be re-created (or left to finish) to use IRSA".to_string(),
        ),
        _ => {}
    }
    if let Some(owner) = &usage.owner {
        let code = match owner {
            Owner::HelmRelease { .. } => Code::ManagedByHelm,
            Owner::ArgoCdApplication { .. } => Code::ManagedByArgocd,
            Owner::FluxKustomization { .. } | Owner::FluxHelmRelease { .. } => Code::ManagedByFlux,
            _ => Code::ManagedByFieldManager,
        };
        add(
            code,
            format!(
                "owned by {owner}: the plan's changes to it are made in {}, or the owner reverts a live patch (`irsa-migrate export` writes them; `apply` waits for them)",
                owner.where_to_change()
            ),
        );
    }
    check_token_permission(inventory, usage, candidate.spec, &mut add);
    let Some(legacy) = &usage.legacy else { return };
    if let Some(hold) = usage.rollout_hold {
        add(
            Code::RolloutHeld,
            format!(
                "{}; a migration's restart would not reach its pods, so it is not planned: release the hold, take a new snapshot and plan again, or leave it on the legacy path (decommission keeps what it needs)",
                hold.explain(workload.kind)
            ),
        );
    }
    let written = legacy.annotation.as_deref().unwrap_or("(default role)");
    if usage.host_network {
        add(
            Code::HostNetwork,
            format!(
                "hostNetwork pods bypass the metadata proxy: the {written:?} annotation has no effect and the pod uses the node role today; it is not migrated automatically"
            ),
        );
    }
    if legacy.source == RoleSource::DefaultRole {
        add(
            Code::DefaultRole,
            format!(
                "no role annotation: kube2iam gives this pod its --default-role {}, bypassing namespace restrictions",
                legacy.arn.as_ref().map_or("?", WrittenRoleArn::as_str)
            ),
        );
    }
    if let Some(invalid) = &legacy.verdict.invalid {
        add(
            Code::InvalidAnnotation,
            format!(
                "namespace {}: {}: {invalid}",
                workload.namespace, legacy.verdict.rule
            ),
        );
    }
    // An uncaptured namespace has its own finding (namespace-not-captured), not a denial.
    if !legacy.verdict.permitted
        && legacy.verdict.invalid.is_none()
        && legacy.arn.is_some()
        && inventory.namespaces.contains_key(&workload.namespace)
    {
        add(
            Code::NamespaceNotPermitted,
            format!(
                "{}: the agent refuses this role today, so it is not migrated",
                legacy.verdict.rule
            ),
        );
    }
    if let Some(WrittenRoleArn::Invalid { text, error }) = &legacy.arn {
        add(
            Code::InvalidAnnotation,
            format!("annotation {written:?} resolves to {text:?}: {error}"),
        );
    }
    match &legacy.trust {
        Trust::RoleNotFound => add(
            Code::RoleNotFound,
            format!(
                "role {} does not exist in its account",
                legacy.arn.as_ref().map_or("", WrittenRoleArn::as_str)
            ),
        ),
        Trust::Missing => add(
            Code::LegacyTrustMissing,
            format!(
                "role {} does not trust the legacy principal, so the pod gets no credentials today; it is not migrated",
                legacy.arn.as_ref().map_or("", WrittenRoleArn::as_str)
            ),
        ),
        Trust::Unknown { reason } if legacy.arn.as_ref().is_some_and(|a| a.role().is_ok()) => add(
            Code::RoleUnknown,
            format!(
                "cannot tell whether role {} works today: {reason}",
                legacy.arn.as_ref().map_or("", WrittenRoleArn::as_str)
            ),
        ),
        _ => {}
    }
    if let (Some(arn), Some(cluster)) = (
        legacy.arn.as_ref().and_then(|a| a.role().ok()),
        &inventory.cluster,
    ) && (arn.account() != cluster.account || arn.partition() != cluster.partition)
    {
        let data = if inventory.iam.accounts.contains(arn.account()) {
            ""
        } else {
            "; its IAM data is not in the source"
        };
        add(
            Code::CrossAccountRole,
            format!(
                "role {arn} is in account {}, not the cluster's {}: IRSA needs an OIDC provider for this cluster in that account{data}",
                arn.account(),
                cluster.account
            ),
        );
    }
    if let Some(external_id) = &legacy.external_id {
        add(
            Code::ExternalId,
            format!(
                "the pod passes ExternalId {external_id:?}; AssumeRoleWithWebIdentity has none, so a trust condition on sts:ExternalId must be reworked"
            ),
        );
    }
}

/// Before Kubernetes 1.19 the projected token was mode 0600 owned by root: a non-root container
/// cannot read it unless the pod sets `fsGroup`.
fn check_token_permission(
    inventory: &Inventory,
    usage: &Usage,
    spec: &PodSpec,
    add: &mut impl FnMut(Code, String),
) {
    let Some(version) = inventory
        .cluster
        .as_ref()
        .and_then(|c| c.version.as_deref())
    else {
        return;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (1, 19) || usage.legacy.is_none() {
        return;
    }
    let pod_context = spec.security_context.as_ref();
    if pod_context.and_then(|c| c.fs_group).is_some() {
        return;
    }
    let non_root = spec.all_containers().any(|c| {
        let own = c.security_context.as_ref();
        let user = own
            .and_then(|s| s.run_as_user)
            .or(pod_context.and_then(|s| s.run_as_user));
        let flag = own
            .and_then(|s| s.run_as_non_root)
            .or(pod_context.and_then(|s| s.run_as_non_root));
        user.is_some_and(|u| u != 0) || flag == Some(true)
    });
    if non_root {
        add(
            Code::NonRootTokenPermission,
            format!(
                "Kubernetes {version} mounts the token readable by root only and a container runs as non-root without fsGroup: set spec.securityContext.fsGroup (e.g. 65534) or upgrade to 1.19+"
            ),
        );
    }
}
