//! The inventory's fingerprint: a digest of the cluster state, whatever the snapshot's layout.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::layout::Layout;
use super::render::{Place, render_objects};
use crate::inventory::Inventory;

/// A digest of the inventory: `sha256:` over its objects in rendering order, each as compact JSON
/// with its file name in [`Layout::PerNamespace`]. The same cluster state gives the same
/// fingerprint, whatever the layout of the snapshot it was read from; nothing the size of the
/// snapshot is held in memory.
pub fn fingerprint(inventory: &Inventory) -> String {
    let mut digest = Fingerprint::default();
    render_objects(inventory, &mut |place, object| digest.add(place, &object));
    digest.finish()
}

/// [`fingerprint`] taken object by object, by a caller that renders the inventory anyway (the
/// snapshot writer).
#[derive(Default)]
pub(super) struct Fingerprint(Sha256);

impl Fingerprint {
    pub(super) fn add(&mut self, place: &Place<'_>, object: &Value) {
        self.add_with(place, |hasher| {
            let _ = serde_json::to_writer(crate::json::HashWriter(hasher), object);
        });
    }

    /// [`add`](Self::add) of an object whose compact JSON the caller has already written.
    pub(super) fn add_compact(&mut self, place: &Place<'_>, compact: &[u8]) {
        self.add_with(place, |hasher| hasher.update(compact));
    }

    fn add_with(&mut self, place: &Place<'_>, object: impl FnOnce(&mut Sha256)) {
        let Some(file) = place.file(Layout::PerNamespace) else {
            return;
        };
        self.0.update(file.as_bytes());
        self.0.update([0]);
        object(&mut self.0);
        self.0.update([0]);
    }

    pub(super) fn finish(self) -> String {
        format!("sha256:{:x}", self.0.finalize())
    }
}
