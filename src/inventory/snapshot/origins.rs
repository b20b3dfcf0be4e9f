//! Where each object came from: a second copy of an object is fine when identical, a conflict
//! (naming both files) when not, or the newer state when successive readings are loaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::InventoryError;

/// Which file each object kept so far came from, to tell a second copy of an object (fine when
/// identical) from a conflicting one (an error naming both files). Keyed by a hash of the
/// object's identity: a few bytes an object, at a hundred thousand pods.
#[derive(Default)]
pub(super) struct Origins {
    /// A different copy replaces the earlier one instead of stopping: for successive readings
    /// of a live cluster (a list restarted after its continue token expired reads newer states).
    pub(super) later_wins: bool,
    files: Vec<PathBuf>,
    objects: std::collections::HashMap<u64, Origin>,
}

#[derive(Clone, Copy)]
pub(super) struct Origin {
    file: usize,
    /// Where a list-held object (a pod, an RBAC binding) is in its list.
    slot: usize,
}

/// An object's identity: kind, namespace (none for cluster-scoped objects and IAM) and name.
pub(super) struct ObjectId<'a> {
    pub(super) kind: &'a str,
    pub(super) namespace: Option<&'a str>,
    pub(super) name: &'a str,
}

impl std::fmt::Display for ObjectId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

impl Origins {
    /// Records that `path` holds `id` (at `slot` of its list); returns where a copy of it was
    /// read before, if one was.
    pub(super) fn claim(&mut self, path: &Path, id: &ObjectId<'_>, slot: usize) -> Option<Origin> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        (id.kind, id.namespace, id.name).hash(&mut hasher);
        if self.files.last().is_none_or(|last| last != path) {
            self.files.push(path.to_path_buf());
        }
        let origin = Origin {
            file: self.files.len() - 1,
            slot,
        };
        match self.objects.entry(hasher.finish()) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(origin);
                None
            }
        }
    }

    pub(super) fn conflict(&self, first: Origin, path: &Path, id: &ObjectId<'_>) -> InventoryError {
        InventoryError::Conflict {
            object: id.to_string(),
            first: self.files[first.file].clone(),
            second: path.to_path_buf(),
        }
    }

    /// Keeps `value` under `key` unless a copy is there already: an identical one is fine, a
    /// different one is a conflict.
    pub(super) fn keep<K: Ord, V: PartialEq>(
        &mut self,
        path: &Path,
        id: &ObjectId<'_>,
        map: &mut BTreeMap<K, V>,
        key: K,
        value: V,
    ) -> Result<(), InventoryError> {
        match (self.claim(path, id, 0), map.get(&key)) {
            (Some(first), Some(existing)) if *existing != value && !self.later_wins => {
                Err(self.conflict(first, path, id))
            }
            _ => {
                map.insert(key, value);
                Ok(())
            }
        }
    }

    /// [`Origins::keep`] for objects kept in a list; `same` tells whether a listed object is
    /// the one `id` names (the hash could, in theory, collide).
    pub(super) fn keep_listed<V: PartialEq>(
        &mut self,
        path: &Path,
        id: &ObjectId<'_>,
        list: &mut Vec<V>,
        value: V,
        same: impl Fn(&V) -> bool,
    ) -> Result<(), InventoryError> {
        if let Some(first) = self.claim(path, id, list.len())
            && let Some(existing) = list.get_mut(first.slot).filter(|e| same(e))
        {
            if *existing == value || self.later_wins {
                *existing = value;
                return Ok(());
            }
            return Err(self.conflict(first, path, id));
        }
        list.push(value);
        Ok(())
    }
}
