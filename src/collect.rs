//! The live collector: the cluster's objects through the Kubernetes API and its AWS side through
//! the SDK, handed to the snapshot loader as the documents `kubectl` and `aws` would print, so a
//! live scan and a scan of a snapshot read the same bytes the same way.
//!
//! It sits above [`crate::scan`]: which IAM roles to read follows from a scan of what Kubernetes
//! returned. The inventory below it only builds an [`Inventory`] from documents.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::aws::{AwsAccounts, AwsError};
use crate::inventory::Inventory;
use crate::inventory::snapshot::{InventoryError, SnapshotFile, extend, load_readings};
use crate::kubernetes::{Kube, KubeError};
use crate::progress::Progress;

/// Why a live reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The Kubernetes API could not be read (a refused kind is not an error: it is recorded as
    /// [`crate::inventory::Unreadable`]).
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// EKS or IAM could not be read.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// What was read could not be loaded (an object Kubernetes would refuse, a conflict).
    #[error(transparent)]
    Inventory(#[from] InventoryError),
}

/// Which IAM roles a live reading covers (`--iam-read`: the command line says to its users what
/// each one reads and costs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IamRead {
    /// The roles the cluster references, role by role.
    #[default]
    Referenced,
    /// Every role of the account, in one listing.
    Account,
}

/// What was read, for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Collected {
    pub pages: usize,
    pub kube_calls: usize,
    /// Roles asked for by name (with `IamRead::Referenced`).
    pub roles_requested: usize,
}

/// IAM reads in flight at once: IAM's request rate limits are per account and low.
const IAM_CONCURRENCY: usize = 8;

/// Reads the cluster and AWS. `cluster` names the EKS cluster whose OIDC issuer the plan needs;
/// `progress` counts list pages as they arrive (shared: the pages arrive on the reader's threads).
pub fn live(
    kube: &Kube,
    aws: &AwsAccounts,
    cluster: Option<&str>,
    iam: IamRead,
    progress: Arc<dyn Progress>,
) -> Result<(Inventory, Collected), CollectError> {
    let per_page = progress.clone();
    let (pages, unreadable) = kube.collect(Arc::new(move |page: &crate::kubernetes::Page| {
        per_page.set_stage(page.resource.plural);
        per_page.advance(1);
    }))?;
    let mut collected = Collected {
        pages: pages.len(),
        kube_calls: kube.calls(),
        roles_requested: 0,
    };
    let mut files: Vec<SnapshotFile<'static>> = Vec::new();
    for page in pages {
        files.push(SnapshotFile {
            // Named after the request, so a parse error points at the list it came from.
            path: PathBuf::from(format!(
                "{}{}?page={}.json",
                kube.server().trim_end_matches('/'),
                page.resource.collection(None),
                page.number
            )),
            text: page.text.into(),
        });
    }
    let document = |name: String, value: serde_json::Value| SnapshotFile {
        path: PathBuf::from(name),
        text: value.to_string().into(),
    };
    progress.set_stage("EKS");
    if let Some(name) = cluster {
        files.push(document(
            format!("eks:DescribeCluster({name}).json"),
            aws.default.describe_cluster(name)?,
        ));
    }
    files.push(document(
        "iam:ListOpenIDConnectProviders.json".into(),
        aws.default.oidc_providers()?,
    ));
    let mut inventory = load_readings(&files)?;
    inventory.unreadable = unreadable;
    drop(files);

    progress.set_stage("IAM");
    let mut iam_files = Vec::new();
    if iam == IamRead::Referenced && inventory.aws_auth_map_roles.is_some() {
        for (account, names) in referenced_roles(&inventory) {
            if !readable(aws, &inventory, &account) {
                continue;
            }
            collected.roles_requested += names.len();
            iam_files.push(document(
                format!("iam:GetRole({account}).json"),
                aws.for_account(&account)
                    .role_details(&names, IAM_CONCURRENCY)?,
            ));
        }
    } else {
        iam_files.push(document(
            "iam:GetAccountAuthorizationDetails.json".into(),
            aws.default.authorization_details()?,
        ));
        for (account, other) in &aws.others {
            iam_files.push(document(
                format!("iam:GetAccountAuthorizationDetails({account}).json"),
                other.authorization_details()?,
            ));
        }
    }
    let mut inventory = extend(inventory, &iam_files)?;
    drop(iam_files);

    progress.set_stage("CloudFormation");
    let stack_files = read_stacks(aws, &mut inventory)?;
    Ok((extend(inventory, &stack_files)?, collected))
}

/// Whether `account`'s IAM and CloudFormation can be read: another account's only through its own
/// profile, since the default credentials belong to the cluster's account and reading elsewhere
/// with them would be denied.
fn readable(aws: &AwsAccounts, inventory: &Inventory, account: &str) -> bool {
    aws.others.contains_key(account)
        || inventory
            .cluster
            .as_ref()
            .is_none_or(|c| c.account == account)
}

/// The CloudFormation stacks that made the roles read, account by account. Credentials that may
/// not list stacks leave the owners unknown (recorded in `stacks_unread`, a warning in the scan)
/// rather than stopping the reading: the rest of the plan stands without them.
fn read_stacks(
    aws: &AwsAccounts,
    inventory: &mut Inventory,
) -> Result<Vec<SnapshotFile<'static>>, CollectError> {
    let mut by_account: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for role in inventory.iam.roles.values() {
        by_account
            .entry(role.arn.account().to_string())
            .or_default()
            .insert(role.arn.name().to_string());
    }
    let mut files = Vec::new();
    for (account, names) in by_account {
        if !readable(aws, inventory, &account) {
            continue;
        }
        match aws
            .for_account(&account)
            .stack_roles(&names, IAM_CONCURRENCY)
        {
            Ok(resources) => files.push(SnapshotFile {
                path: PathBuf::from(format!("cloudformation:ListStackResources({account}).json")),
                text: resources.to_string().into(),
            }),
            Err(e) if e.kind() == crate::call_error::ErrorKind::Denied => {
                inventory.iam.stacks_unread.insert(account, e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(files)
}

/// Account → names of the roles the cluster references: what a scan of the Kubernetes side
/// resolves, the node roles and the legacy principals.
fn referenced_roles(inventory: &Inventory) -> BTreeMap<String, Vec<String>> {
    let scanned = crate::scan::scan(inventory);
    let arns = scanned
        .usages()
        .flat_map(|(_, u)| {
            [
                u.legacy.as_ref().and_then(|l| l.arn.as_ref()),
                u.irsa_role_arn.as_ref(),
            ]
        })
        .flatten()
        .filter_map(|arn| arn.role().ok().cloned())
        .chain(
            scanned
                .node_roles
                .iter()
                .filter_map(|n| n.arn.role().ok().cloned()),
        )
        .chain(scanned.legacy_principals.iter().cloned());
    let mut by_account: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for role in arns {
        by_account
            .entry(role.account().to_string())
            .or_default()
            .push(role.name().to_string());
    }
    for names in by_account.values_mut() {
        names.sort();
        names.dedup();
    }
    by_account
}
