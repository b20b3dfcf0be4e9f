//! Snapshot directories as the tests build them (files, lists, deployments, padded objects), and
//! loading one.

use std::path::Path;

use irsa_migrate::inventory::Inventory;
use irsa_migrate::inventory::snapshot::{InventoryError, load_dir};

pub fn load(dir: &Path) -> Result<Inventory, InventoryError> {
    load_dir(dir, &irsa_migrate::progress::Silent)
}

pub fn write(dir: &Path, name: &str, text: &str) {
    if let Some(parent) = Path::new(name).parent() {
        std::fs::create_dir_all(dir.join(parent)).unwrap();
    }
    std::fs::write(dir.join(name), text).unwrap();
}

/// Kubernetes objects of namespace `payments` as one JSON list of `kind`, each item from `item`.
pub fn list(kind: &str, items: &[String]) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "{kind}List", "metadata": {{}}, "items": [{}]}}"#,
        items.join(",\n")
    )
}

pub fn deployment(name: &str, role: &str) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "{name}", "namespace": "payments"}},
            "spec": {{"template": {{"metadata": {{"annotations": {{"iam.amazonaws.com/role": "{role}"}}}},
                                   "spec": {{"containers": [{{"name": "c"}}]}}}}}}}}"#
    )
}

/// Pads a JSON object's `metadata` with an annotation so the file reaches `bytes`.
pub fn padded(object: &str, bytes: usize) -> String {
    let padding = format!(
        r#""metadata": {{"annotations": {{"padding": "{}"}}, "#,
        "x".repeat(bytes)
    );
    object.replacen(r#""metadata": {"#, &padding, 1)
}
