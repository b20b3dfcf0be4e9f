//! The embedded demo cluster: a snapshot directory compiled into the binary, loaded by the same
//! loader as any snapshot, so the demo exercises the real code path.

use std::path::PathBuf;

use super::Inventory;
use super::snapshot::{InventoryError, SnapshotFile, load_files};

macro_rules! demo_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../demo/snapshot/", $name))),)*]
    };
}

/// File name and content of every demo snapshot file.
pub const FILES: &[(&str, &str)] = demo_files![
    "describe-cluster.json",
    "account-authorization-details.json",
    "oidc-providers.json",
    "namespaces.yaml",
    "kiam.yaml",
    "workloads.json",
    "pods.json",
    "serviceaccounts.yaml",
    "rbac.yaml",
    "aws-auth.yaml",
    "mutatingwebhookconfigurations.yaml",
];

pub fn inventory() -> Result<Inventory, InventoryError> {
    let files: Vec<SnapshotFile<'_>> = FILES
        .iter()
        .map(|(name, text)| SnapshotFile {
            path: PathBuf::from("demo").join(name),
            text: (*text).into(),
        })
        .collect();
    load_files(&files)
}
