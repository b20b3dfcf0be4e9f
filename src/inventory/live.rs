//! The live collector: the cluster's objects through the Kubernetes API and its AWS side through
//! the SDK, handed to the snapshot loader as the documents `kubectl` and `aws` would print, so a
//! live scan and a scan of a snapshot read the same bytes the same way.

use std::path::PathBuf;

use super::Inventory;
use super::snapshot::{InventoryError, SnapshotFile, load_files};
use crate::aws::{AwsAccounts, AwsError};
use crate::kubernetes::{Kube, KubeError};

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
}

/// What was read, for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Collected {
    pub pages: usize,
    pub kube_calls: usize,
}

/// Reads the cluster and AWS. `cluster` names the EKS cluster whose OIDC issuer the plan needs;
/// `progress` counts list pages as they arrive.
pub fn collect(
    kube: &Kube,
    aws: &AwsAccounts,
    cluster: Option<&str>,
    progress: &indicatif::ProgressBar,
) -> Result<(Inventory, Collected), CollectError> {
    let pages = kube.collect(&|page| {
        progress.set_message(page.resource.plural);
        progress.inc(1);
    })?;
    let mut files: Vec<SnapshotFile<'static>> = Vec::new();
    let collected = Collected {
        pages: pages.len(),
        kube_calls: kube.calls(),
    };
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
    let mut aws_document = |name: String, value: serde_json::Value| {
        files.push(SnapshotFile {
            path: PathBuf::from(name),
            text: value.to_string().into(),
        })
    };
    progress.set_message("IAM");
    aws_document(
        "iam:GetAccountAuthorizationDetails.json".into(),
        aws.default.authorization_details()?,
    );
    for (account, other) in &aws.others {
        aws_document(
            format!("iam:GetAccountAuthorizationDetails({account}).json"),
            other.authorization_details()?,
        );
    }
    aws_document(
        "iam:ListOpenIDConnectProviders.json".into(),
        aws.default.oidc_providers()?,
    );
    if let Some(name) = cluster {
        aws_document(
            format!("eks:DescribeCluster({name}).json"),
            aws.default.describe_cluster(name)?,
        );
    }
    Ok((load_files(&files)?, collected))
}
