//! Assembling a plan: the [`plan`] entry point checks the settings and the cluster, runs the
//! step builders in phase order (`bind`, `prepare`, `identity`, `rollout`, `decommission`, its
//! sibling modules) over the state they share ([`Planner`]), and puts
//! the document together in its deterministic order. Why no plan can be made: [`PlanError`].

use std::collections::BTreeMap;

use super::document::{
    AccountNote, Binding, GENERATOR, PLAN_SCHEMA, Plan, PlanCluster, Settings, Skipped,
};
use super::{trust, validate};
use crate::findings::Finding;
use crate::inventory::Inventory;
use crate::inventory::snapshot::fingerprint;
use crate::ownership::IacRoleTag;
use crate::scan::{self, Scan};

/// Why no plan can be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The source holds no EKS cluster description, so the issuer every trust statement names
    /// is unknown.
    #[error(
        "the source has no `aws eks describe-cluster` output, so the OIDC issuer is unknown; add it to the snapshot (docs/snapshot.md)"
    )]
    ClusterUnknown,
    /// The cluster's description has no OIDC issuer (IRSA is not possible before it has one).
    #[error("cluster {0} has no OIDC issuer in its describe-cluster output; IRSA needs one")]
    NoIssuer(String),
    /// `--trust-policy-limit` outside IAM's quota range.
    #[error("--trust-policy-limit {0} is out of range: IAM allows 2048 (default) up to 4096")]
    LimitOutOfRange(usize),
    /// The source's OIDC issuer is not one EKS gives: every migrated role would come to trust it
    /// (`https://evil.example.com`, `https://*`). `--issuer-any` accepts it.
    #[error(
        "the source's OIDC issuer is refused, since every migrated role would trust it: {0}. Check `aws eks describe-cluster --name <cluster> --query cluster.identity.oidc.issuer`; if this cluster's issuer really has another form (not an EKS cluster), pass --issuer-any"
    )]
    IssuerNotEks(#[source] crate::iam::issuer::NotEksIssuer),
    /// The planner made a plan its own checks refuse: the source holds names or ARNs that no
    /// real cluster has (a hostile or corrupted snapshot).
    #[error("the source makes a plan that fails its own checks: {0}")]
    Invalid(#[source] validate::InvalidPlan),
}

pub fn plan(inventory: &Inventory, name: &str, settings: &Settings) -> Result<Plan, PlanError> {
    beside_fingerprint(inventory, |fingerprint| {
        plan_with_fingerprint(
            inventory,
            &scan::scan(inventory),
            name,
            settings,
            fingerprint,
        )
    })
}

/// [`plan`] for a caller that has already scanned `inventory` (the scan must be of it).
pub fn plan_with_scan(
    inventory: &Inventory,
    scan: &Scan,
    name: &str,
    settings: &Settings,
) -> Result<Plan, PlanError> {
    beside_fingerprint(inventory, |fingerprint| {
        plan_with_fingerprint(inventory, scan, name, settings, fingerprint)
    })
}

/// Runs `make` while the inventory's fingerprint is computed on a second thread (it renders the
/// whole inventory, a fifth of the time planning a large one takes), handing it the fingerprint,
/// which it waits for only when it asks.
fn beside_fingerprint<T>(
    inventory: &Inventory,
    make: impl FnOnce(&mut dyn FnMut() -> String) -> T,
) -> T {
    std::thread::scope(|threads| {
        let mut computing = Some(threads.spawn(|| fingerprint(inventory)));
        make(&mut || {
            computing
                .take()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .unwrap_or_default()
        })
    })
}

/// [`plan_with_scan`], the inventory's fingerprint given by `fingerprint`, which is asked for once
/// the rest of the plan is made: a caller that renders the inventory anyway (`plan`'s snapshot
/// writer) takes it from that rendering meanwhile.
pub fn plan_with_fingerprint(
    inventory: &Inventory,
    scan: &Scan,
    name: &str,
    settings: &Settings,
    fingerprint: &mut dyn FnMut() -> String,
) -> Result<Plan, PlanError> {
    if !(1..=trust::MAX_TRUST_POLICY_LIMIT).contains(&settings.trust_policy_limit) {
        return Err(PlanError::LimitOutOfRange(settings.trust_policy_limit));
    }
    let cluster = inventory
        .cluster
        .as_ref()
        .ok_or(PlanError::ClusterUnknown)?;
    let (Some(issuer_host), Some(provider_arn), Some(issuer_url)) = (
        cluster.issuer_host_path(),
        cluster.oidc_provider_arn(),
        cluster.oidc_issuer.clone(),
    ) else {
        return Err(PlanError::NoIssuer(cluster.name.clone()));
    };
    let mut planner = Planner {
        inventory,
        scan,
        issuer_host,
        limit: settings.trust_policy_limit,
        iac_role_tags: &settings.iac_role_tags,
        findings: scan.findings.clone(),
        skipped: Vec::new(),
        bindings: Vec::new(),
    };
    planner.bind();
    let (mut steps, trust_after_prepare) = planner.trust_steps();
    steps.extend(planner.provider_steps(&issuer_url));
    steps.extend(planner.identity_steps());
    steps.extend(planner.rollout_and_cleanup_steps());
    let (decommission_steps, decommission) = planner.decommission(&trust_after_prepare);
    steps.extend(decommission_steps);
    planner.assign_owners(&mut steps);
    steps.sort_by(|a, b| (a.phase, a.kind, &a.target).cmp(&(b.phase, b.kind, &b.target)));
    // Grown by doubling; a large plan would otherwise carry tens of thousands of empty slots.
    steps.shrink_to_fit();

    let mut accounts: BTreeMap<String, usize> = BTreeMap::new();
    for step in &steps {
        if let Some(account) = step.target.account() {
            *accounts.entry(account.to_string()).or_default() += 1;
        }
    }
    let accounts = accounts
        .into_iter()
        .map(|(account, steps)| AccountNote {
            iam_data_in_source: inventory.iam.accounts.contains(&account),
            credentials: if account == cluster.account {
                "the cluster's account: the default AWS credentials".to_string()
            } else {
                format!("another account: credentials for {account} (--account-profile {account}=PROFILE)")
            },
            account,
            steps,
        })
        .collect();
    let mut findings = planner.findings;
    crate::findings::sort_and_dedup(&mut findings);
    let mut skipped = planner.skipped;
    skipped.sort_by(|a, b| {
        (&a.namespace, a.kind, &a.name, a.reason).cmp(&(&b.namespace, b.kind, &b.name, b.reason))
    });
    skipped.dedup_by(|a, b| (&a.namespace, a.kind, &a.name) == (&b.namespace, b.kind, &b.name));
    let mut bindings = planner.bindings;
    bindings.sort_by(|a, b| {
        (&a.namespace, &a.service_account).cmp(&(&b.namespace, &b.service_account))
    });
    Ok(Plan {
        schema: PLAN_SCHEMA.to_string(),
        generator: GENERATOR.to_string(),
        name: name.to_string(),
        fingerprint: fingerprint(),
        settings: settings.clone(),
        cluster: PlanCluster {
            name: cluster.name.clone(),
            account: cluster.account.clone(),
            region: cluster.region.clone(),
            partition: cluster.partition.clone(),
            oidc_issuer: issuer_url,
            oidc_provider_arn: provider_arn,
        },
        legacy_annotations: scan
            .legacy_annotations()
            .keys()
            .map(str::to_string)
            .to_vec(),
        accounts,
        bindings,
        skipped,
        findings,
        steps,
        decommission,
    })
}

pub(super) struct Planner<'a> {
    pub(super) inventory: &'a Inventory,
    pub(super) scan: &'a Scan,
    pub(super) issuer_host: &'a str,
    pub(super) limit: usize,
    pub(super) iac_role_tags: &'a [IacRoleTag],
    pub(super) findings: Vec<Finding>,
    pub(super) skipped: Vec<Skipped>,
    pub(super) bindings: Vec<Binding>,
}
