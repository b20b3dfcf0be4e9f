//! The plan checked against the world before a live run's first write. A plan is computed from a
//! snapshot, and snapshots travel (a consultant's, a CI artifact's): what the plan says of the
//! world is read back from the world, and any difference refuses the run with nothing written
//! (exit 3), naming the object and what differs.
//!
//! - Offline, before anything is reached: the plan's OIDC issuer has a form EKS gives
//!   ([`crate::iam::issuer`]) unless `--issuer-any`.
//! - AWS, for runs with IAM steps: every account the run writes in is the account of the
//!   credentials it is written with (`sts:GetCallerIdentity` of its `--account-profile`, or of the
//!   default credentials), and for apply `eks:DescribeCluster` gives the plan's cluster ARN and
//!   OIDC issuer.
//! - Kubernetes, for apply runs of any phase but decommission (prepare's trust statements name
//!   the bindings' service accounts, so a binding the cluster does not have would be trusted for
//!   whoever creates it): an EKS kubeconfig context names the plan's cluster; each binding in the
//!   run's namespaces has its namespace, the service account its workloads leave (and the one
//!   they keep) and its workloads on the live cluster, each workload running as the one or the
//!   other.
//!
//! Each check returns the lines a run prints (`checked …`), in a dry run as in a real one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::apply::{Direction, Selection};
use crate::aws::{AwsAccounts, AwsError, Caller, ClusterIdentity};
use crate::iam::issuer::NotEksIssuer;
use crate::inventory::WorkloadKind;
use crate::inventory::kube::PodSpec;
use crate::kubernetes::{Kube, KubeError, Resource};
use crate::plan::{Binding, Plan, ServiceAccountAction, Step};

/// Why a live run was refused before its first write, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The plan's issuer is not of a form EKS gives, and `--issuer-any` was not given.
    #[error(
        "the plan's OIDC issuer is refused, since every migrated role would trust it: {0}; nothing was done. Re-plan from the cluster itself (`irsa-migrate snapshot --cluster NAME`); if this cluster's issuer really has another form (not an EKS cluster), pass --issuer-any"
    )]
    IssuerShape(#[source] NotEksIssuer),
    /// `eks:DescribeCluster` finds no cluster of the plan's name where the plan says it is.
    #[error(
        "the plan is for EKS cluster {name} in account {account}, region {region}, and eks:DescribeCluster finds no such cluster there; nothing was done. Check --region and the credentials, or re-plan from the cluster you mean"
    )]
    NoCluster {
        name: String,
        account: String,
        region: String,
    },
    /// The cluster of the plan's name is another one than the plan's (account, region, partition).
    #[error(
        "eks:DescribeCluster gives cluster {name} the ARN {found}, and the plan is for {planned}; nothing was done. The plan was made from a snapshot of another cluster: re-plan from this one"
    )]
    ClusterArn {
        name: String,
        planned: String,
        found: String,
    },
    /// The cluster's OIDC issuer is not the plan's: every role would trust a provider of another
    /// cluster, or of no cluster.
    #[error(
        "cluster {cluster}: its OIDC issuer is {found}, and the plan's is {planned}; nothing was done. The plan's snapshot was taken from another cluster or edited: re-plan from this cluster (`irsa-migrate snapshot --cluster NAME`, then `plan`)"
    )]
    Issuer {
        cluster: String,
        planned: String,
        found: String,
    },
    /// A target in an account no credentials of the run belong to.
    #[error(
        "account {account}: the run writes {steps} step(s) there, and no --account-profile gives credentials for it; the default credentials are {default_arn} (account {default_account}), which must never write another account's roles. Pass --account-profile {account}=PROFILE; nothing was done"
    )]
    NoCredentials {
        account: String,
        steps: usize,
        default_account: String,
        default_arn: String,
    },
    /// An `--account-profile` (or the default credentials, for the cluster's account) whose
    /// credentials are another account's.
    #[error(
        "account {account}: {credentials} act as {arn}, in account {found}; nothing was done. Give credentials of account {account} (--account-profile {account}=PROFILE, or --profile for the cluster's account)"
    )]
    WrongAccount {
        account: String,
        credentials: String,
        found: String,
        arn: String,
    },
    /// The kubeconfig context is an EKS cluster's, and not the plan's.
    #[error(
        "the kubeconfig context is for EKS cluster {context} ({context_region}), and the plan for {planned} ({planned_region}); nothing was done. Pass --context (or --kubeconfig) for the plan's cluster"
    )]
    KubeContext {
        context: String,
        context_region: String,
        planned: String,
        planned_region: String,
    },
    /// An object the plan's snapshot has and the live cluster does not, or has otherwise.
    #[error(
        "{object}: {problem} (the plan's snapshot says otherwise); nothing was done. The snapshot is not of this cluster, or the cluster changed since: take a new snapshot and re-plan"
    )]
    NotLive { object: String, problem: String },
    /// An AWS read the check needed failed (its kind says how); nothing was written.
    #[error(
        "checking the plan against AWS: {0}; nothing was written by this run: fix the cause and run the same command again"
    )]
    Aws(#[source] AwsError),
    /// A Kubernetes read the check needed failed (its kind says how); nothing was written.
    #[error(
        "checking the plan against the Kubernetes API: {0}; nothing was written by this run: fix the cause and run the same command again"
    )]
    Kube(#[source] KubeError),
}

impl WorldError {
    /// A check that found the world other than the plan says (as opposed to a read that failed).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, WorldError::Aws(_) | WorldError::Kube(_))
    }
}

/// The label the check's lines carry, aligned with the steps' (`applied`, `would apply`).
const CHECKED: &str = "checked";

fn line(what: String) -> String {
    format!("{CHECKED:<16} {what}")
}

/// The plan's issuer is of a form EKS gives for its partition and region (no network).
pub fn check_issuer_shape(plan: &Plan) -> Result<(), WorldError> {
    let cluster = &plan.cluster;
    crate::iam::issuer::check_eks_issuer(&cluster.oidc_issuer, &cluster.partition, &cluster.region)
        .map_err(WorldError::IssuerShape)
}

/// The plan's cluster ARN.
fn cluster_arn(plan: &Plan) -> String {
    let c = &plan.cluster;
    format!(
        "arn:{}:eks:{}:{}:cluster/{}",
        c.partition, c.region, c.account, c.name
    )
}

/// The AWS checks of a run over `steps` (its selected steps): each account written in is its
/// credentials' account; for apply, the cluster is the plan's, with the plan's issuer. Nothing
/// is read when the run has no IAM step.
pub fn check_aws(
    plan: &Plan,
    steps: &[&Step],
    direction: Direction,
    aws: &AwsAccounts,
) -> Result<Vec<String>, WorldError> {
    let mut accounts: BTreeMap<&str, usize> = BTreeMap::new();
    for account in steps.iter().filter_map(|s| s.target.account()) {
        *accounts.entry(account).or_default() += 1;
    }
    if accounts.is_empty() {
        return Ok(Vec::new());
    }
    if direction == Direction::Apply {
        accounts.entry(&plan.cluster.account).or_default();
    }
    let mut lines = Vec::new();
    let mut default: Option<Caller> = None;
    for (account, steps) in accounts {
        let caller = match aws.others.get(account) {
            Some(own) => {
                let caller = own.caller().map_err(WorldError::Aws)?;
                if caller.account != account {
                    return Err(WorldError::WrongAccount {
                        account: account.to_string(),
                        credentials: format!(
                            "the credentials of --account-profile {account}={}",
                            own.profile.as_deref().unwrap_or_default()
                        ),
                        found: caller.account,
                        arn: caller.arn,
                    });
                }
                caller
            }
            None => {
                let caller = match &default {
                    Some(caller) => caller.clone(),
                    None => default
                        .insert(aws.default.caller().map_err(WorldError::Aws)?)
                        .clone(),
                };
                if caller.account == account {
                    caller
                } else if account == plan.cluster.account {
                    return Err(WorldError::WrongAccount {
                        account: account.to_string(),
                        credentials: "the default credentials (the cluster's account's)".into(),
                        found: caller.account,
                        arn: caller.arn,
                    });
                } else {
                    return Err(WorldError::NoCredentials {
                        account: account.to_string(),
                        steps,
                        default_account: caller.account,
                        default_arn: caller.arn,
                    });
                }
            }
        };
        lines.push(line(format!(
            "account {account}: written with the credentials of {}",
            caller.arn
        )));
    }
    if direction == Direction::Apply {
        let cluster = &plan.cluster;
        let identity = aws
            .for_account(&cluster.account)
            .cluster_identity(&cluster.name, &cluster.region)
            .map_err(WorldError::Aws)?
            .ok_or_else(|| WorldError::NoCluster {
                name: cluster.name.clone(),
                account: cluster.account.clone(),
                region: cluster.region.clone(),
            })?;
        compare_cluster(plan, &identity)?;
        lines.push(line(format!(
            "cluster {}: its OIDC issuer is the plan's, {}",
            identity.arn, cluster.oidc_issuer
        )));
    }
    Ok(lines)
}

/// The described cluster is the plan's: the same ARN, the same issuer.
fn compare_cluster(plan: &Plan, identity: &ClusterIdentity) -> Result<(), WorldError> {
    let planned = cluster_arn(plan);
    if identity.arn != planned {
        return Err(WorldError::ClusterArn {
            name: plan.cluster.name.clone(),
            planned,
            found: identity.arn.clone(),
        });
    }
    if identity.issuer.as_deref() != Some(plan.cluster.oidc_issuer.as_str()) {
        return Err(WorldError::Issuer {
            cluster: identity.arn.clone(),
            planned: plan.cluster.oidc_issuer.clone(),
            found: identity
                .issuer
                .clone()
                .unwrap_or_else(|| "none (IRSA is not enabled)".into()),
        });
    }
    Ok(())
}

/// An EKS kubeconfig context (region, name) must be the plan's cluster (no network).
pub fn check_context(plan: &Plan, context: Option<(String, String)>) -> Result<(), WorldError> {
    match context {
        Some((region, name)) if (&region, &name) != (&plan.cluster.region, &plan.cluster.name) => {
            Err(WorldError::KubeContext {
                context: name,
                context_region: region,
                planned: plan.cluster.name.clone(),
                planned_region: plan.cluster.region.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// The bindings a run limited to `selection`'s namespaces covers.
fn bindings_in<'p>(plan: &'p Plan, selection: &Selection) -> Vec<&'p Binding> {
    plan.bindings
        .iter()
        .filter(|b| selection.namespaces.is_empty() || selection.namespaces.contains(&b.namespace))
        .collect()
}

fn resource(kind: &str) -> Resource {
    Resource::by_kind(kind).expect("a kind the tool reads")
}

/// The Kubernetes checks of an apply run: each binding of the run's namespaces has its
/// namespace, service accounts and workloads on the live cluster, read namespace by namespace
/// (one read of the namespace, one list per kind).
pub fn check_kubernetes(
    plan: &Plan,
    selection: &Selection,
    kube: &Kube,
) -> Result<Vec<String>, WorldError> {
    let mut by_namespace: BTreeMap<&str, Vec<&Binding>> = BTreeMap::new();
    for binding in bindings_in(plan, selection) {
        by_namespace
            .entry(binding.namespace.as_str())
            .or_default()
            .push(binding);
    }
    let (mut accounts, mut workloads) = (0, 0);
    for (namespace, bindings) in &by_namespace {
        if kube
            .get(resource("Namespace"), None, namespace)
            .map_err(WorldError::Kube)?
            .is_none()
        {
            return Err(WorldError::NotLive {
                object: format!("namespace {namespace}"),
                problem: "does not exist on the live cluster".into(),
            });
        }
        let names = |kind: &str| -> Result<BTreeMap<String, Value>, WorldError> {
            let items = kube
                .list(resource(kind), Some(namespace), None)
                .map_err(WorldError::Kube)?;
            Ok(items
                .into_iter()
                .filter_map(|item| Some((item["metadata"]["name"].as_str()?.to_string(), item)))
                .collect())
        };
        let live_accounts = names("ServiceAccount")?;
        let mut needed = BTreeSet::new();
        for binding in bindings {
            needed.insert(binding.from_service_account.as_str());
            if binding.service_account_action != ServiceAccountAction::Create {
                needed.insert(binding.service_account.as_str());
            }
        }
        if let Some(missing) = needed.iter().find(|n| !live_accounts.contains_key(**n)) {
            return Err(WorldError::NotLive {
                object: format!("{namespace}/ServiceAccount/{missing}"),
                problem: "does not exist on the live cluster".into(),
            });
        }
        accounts += needed.len();
        let kinds: BTreeSet<WorkloadKind> = bindings
            .iter()
            .flat_map(|b| b.workloads.iter().map(|w| w.kind))
            .collect();
        let mut live: BTreeMap<WorkloadKind, BTreeMap<String, Value>> = BTreeMap::new();
        for kind in kinds {
            live.insert(kind, names(kind.as_str())?);
        }
        for binding in bindings {
            for workload in &binding.workloads {
                let object = format!("{namespace}/{}/{}", workload.kind.as_str(), workload.name);
                let Some(found) = live.get(&workload.kind).and_then(|l| l.get(&workload.name))
                else {
                    return Err(WorldError::NotLive {
                        object,
                        problem: "does not exist on the live cluster".into(),
                    });
                };
                let runs_as = template_account(workload.kind, found);
                if runs_as != binding.from_service_account && runs_as != binding.service_account {
                    let planned = if binding.from_service_account == binding.service_account {
                        binding.service_account.clone()
                    } else {
                        format!(
                            "{} or {}",
                            binding.from_service_account, binding.service_account
                        )
                    };
                    return Err(WorldError::NotLive {
                        object,
                        problem: format!(
                            "runs as service account {runs_as} on the live cluster, not {planned}"
                        ),
                    });
                }
                workloads += 1;
            }
        }
    }
    if by_namespace.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![line(format!(
        "{} namespace(s) on the live cluster: {accounts} service account(s) and {workloads} workload(s) as the plan has them",
        by_namespace.len()
    ))])
}

/// The service account a workload's pods run as (`default` when its template names none).
fn template_account(kind: WorkloadKind, object: &Value) -> String {
    let template = if kind == WorkloadKind::CronJob {
        &object["spec"]["jobTemplate"]["spec"]["template"]
    } else {
        &object["spec"]["template"]
    };
    serde_json::from_value::<PodSpec>(template["spec"].clone())
        .map(|spec| spec.service_account().to_string())
        .unwrap_or_else(|_| "default".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_plan() -> Plan {
        let inventory = crate::inventory::demo::inventory().unwrap();
        crate::plan::plan(&inventory, "demo", &Default::default()).unwrap()
    }

    fn identity(plan: &Plan) -> ClusterIdentity {
        ClusterIdentity {
            arn: cluster_arn(plan),
            issuer: Some(plan.cluster.oidc_issuer.clone()),
        }
    }

    #[test]
    fn the_described_cluster_must_have_the_plans_arn_and_issuer() {
        let plan = demo_plan();
        assert_eq!(
            cluster_arn(&plan),
            "arn:aws:eks:eu-west-1:111122223333:cluster/demo"
        );
        assert!(compare_cluster(&plan, &identity(&plan)).is_ok());

        // A cluster of the same name in another account or region.
        let mut other = identity(&plan);
        other.arn = "arn:aws:eks:eu-west-1:444455556666:cluster/demo".into();
        let error = compare_cluster(&plan, &other).unwrap_err();
        assert!(matches!(error, WorldError::ClusterArn { .. }), "{error}");
        assert!(
            error.to_string().contains(
                "the ARN arn:aws:eks:eu-west-1:444455556666:cluster/demo, and the plan is for arn:aws:eks:eu-west-1:111122223333:cluster/demo"
            ),
            "{error}"
        );

        // The snapshot's issuer is not the cluster's.
        let mut other = identity(&plan);
        other.issuer = Some("https://oidc.eks.eu-west-1.amazonaws.com/id/0000".into());
        let error = compare_cluster(&plan, &other).unwrap_err();
        assert!(matches!(error, WorldError::Issuer { .. }), "{error}");
        assert!(error.is_refusal());
        other.issuer = None;
        let error = compare_cluster(&plan, &other).unwrap_err();
        assert!(error.to_string().contains("IRSA is not enabled"), "{error}");
    }

    #[test]
    fn a_hostile_plans_issuer_is_refused_before_anything_is_read() {
        let mut plan = demo_plan();
        assert!(check_issuer_shape(&plan).is_ok());
        for issuer in ["https://evil.example.com", "https://*"] {
            plan.cluster.oidc_issuer = issuer.into();
            let error = check_issuer_shape(&plan).unwrap_err();
            assert!(error.is_refusal());
            assert!(error.to_string().contains("--issuer-any"), "{error}");
        }
    }

    #[test]
    fn an_eks_context_of_another_cluster_is_refused() {
        let plan = demo_plan();
        assert!(check_context(&plan, None).is_ok());
        assert!(check_context(&plan, Some(("eu-west-1".into(), "demo".into()))).is_ok());
        let error = check_context(&plan, Some(("eu-west-1".into(), "prod".into()))).unwrap_err();
        assert!(error.to_string().contains("EKS cluster prod"), "{error}");
        assert!(check_context(&plan, Some(("us-east-1".into(), "demo".into()))).is_err());
    }

    #[test]
    fn a_workloads_account_comes_from_its_template() {
        let deployment =
            serde_json::json!({"spec": {"template": {"spec": {"serviceAccountName": "web"}}}});
        assert_eq!(
            template_account(WorkloadKind::Deployment, &deployment),
            "web"
        );
        let cron = serde_json::json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"serviceAccount": "batch"}}}}}});
        assert_eq!(template_account(WorkloadKind::CronJob, &cron), "batch");
        assert_eq!(
            template_account(WorkloadKind::StatefulSet, &serde_json::json!({})),
            "default"
        );
    }
}
