//! The inventory's fingerprint: a digest of the cluster state, whatever the snapshot's layout.

use super::render::render_objects;
use crate::inventory::Inventory;

/// A digest of the inventory: `sha256:` over its objects in rendering order, each as compact JSON
/// with its file name. The same cluster state gives the same fingerprint, whatever the layout of
/// the snapshot it was read from; nothing the size of the snapshot is held in memory.
pub fn fingerprint(inventory: &Inventory) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    render_objects(
        inventory,
        super::layout::Layout::PerNamespace,
        &mut |file, object| {
            hasher.update(file.as_bytes());
            hasher.update([0]);
            let _ = serde_json::to_writer(crate::json::HashWriter(&mut hasher), &object);
            hasher.update([0]);
        },
    );
    format!("sha256:{:x}", hasher.finalize())
}
