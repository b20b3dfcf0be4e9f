//! Writing an inventory as a snapshot directory, and telling a snapshot this tool wrote (which
//! may be replaced) from any other directory (which is refused).

use std::path::Path;

use super::InventoryError;
use super::fingerprint::Fingerprint;
use super::layout::{CLOUDTRAIL_DIR, EKS_DIR, IAM_DIR, KUBERNETES_DIR, Layout, MARKER};
use super::render::{ListWriter, Place, pretty, render_each_digested, render_objects, trail_files};
use crate::inventory::Inventory;

/// Writes the inventory as a snapshot of `layout` under `dir`, one file at a time: a new or empty
/// directory, or a snapshot this tool wrote, which is replaced. Any other directory is refused and
/// left as it is. The directory and everything in it are the owner's only (0700, 0600): a
/// snapshot holds the cluster's objects and its IAM policies. Returns the inventory's
/// [`super::fingerprint`], taken from the same rendering.
pub fn write_dir(
    inventory: &Inventory,
    dir: &Path,
    layout: Layout,
) -> Result<String, InventoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InventoryError::Io { path, source }
    };
    if dir.exists() {
        if !dir.is_dir() {
            return Err(InventoryError::Invalid {
                path: dir.to_path_buf(),
                message: "not a directory; nothing was written".into(),
                source: None,
            });
        }
        match own_snapshot(dir)? {
            Holds::Nothing => {}
            Holds::Snapshot => std::fs::remove_dir_all(dir).map_err(io(dir))?,
            Holds::Other(entry) => {
                return Err(not_a_snapshot(
                    dir,
                    &entry,
                    "choose a new or empty directory",
                ));
            }
        }
    }
    crate::private::create_dir_all(dir).map_err(io(dir))?;
    let marker = dir.join(MARKER);
    crate::private::write(
        &marker,
        "written by irsa-migrate; replaced whole by the next snapshot written here\n",
    )
    .map_err(io(&marker))?;
    let mut failed = None;
    let mut write = |name: String, text: String| {
        if failed.is_none() {
            failed = write_under(dir, &name, &text).err();
        }
    };
    let mut digest = Fingerprint::default();
    match layout {
        Layout::PerNamespace => render_each_digested(inventory, Some(&mut digest), &mut write),
        Layout::PerKind => {
            write_lists(inventory, dir, &mut digest, &mut write)?;
            trail_files(inventory, &mut write);
        }
    }
    failed.map_or(Ok(digest.finish()), Err)
}

/// The objects of [`Layout::PerKind`] under `dir`: each list file streamed to disk as its items
/// come (a kind's objects come namespace by namespace, and a namespace's workloads of several
/// kinds interleave, so every list stays open until the end), each document handed to `write`.
fn write_lists(
    inventory: &Inventory,
    dir: &Path,
    digest: &mut Fingerprint,
    write: &mut dyn FnMut(String, String),
) -> Result<(), InventoryError> {
    use std::collections::BTreeMap;
    use std::io::BufWriter;
    let layout = Layout::PerKind;
    let mut lists: BTreeMap<String, ListWriter<BufWriter<std::fs::File>>> = BTreeMap::new();
    let mut failed = None;
    // An item's compact JSON is both what the fingerprint digests and what its list holds:
    // written once, into one buffer.
    let mut compact = Vec::new();
    render_objects(inventory, &mut |place, object| {
        let Some(file) = place.file(layout) else {
            return digest.add(place, &object);
        };
        if let Place::Document(_) = place {
            digest.add(place, &object);
            return write(file, pretty(&object));
        }
        compact.clear();
        let _ = serde_json::to_writer(&mut compact, &object);
        digest.add_compact(place, &compact);
        if let Some(list) = lists.get_mut(&file) {
            return list.push_compact(&object, &compact);
        }
        match create_under(dir, &file) {
            Ok(out) => {
                let mut list = ListWriter::new(BufWriter::with_capacity(1 << 16, out), layout);
                list.push_compact(&object, &compact);
                lists.insert(file, list);
            }
            Err(error) => {
                failed.get_or_insert(error);
            }
        }
    });
    if let Some(error) = failed {
        return Err(error);
    }
    for (name, list) in lists {
        let path = dir.join(&name);
        list.finish(&name, inventory)
            .and_then(|mut out| std::io::Write::flush(&mut out))
            .map_err(|source| InventoryError::Io { path, source })?;
    }
    Ok(())
}

/// Puts the snapshot written in `staged` (by [`write_dir`]) in the place of `dir`, which must be
/// absent, empty or a snapshot this tool wrote (anything else is refused, and both are left as
/// they are). `staged` is renamed, so `dir` holds the old snapshot or the new one, never a part.
pub fn replace_dir(staged: &Path, dir: &Path) -> Result<(), InventoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InventoryError::Io { path, source }
    };
    if dir.exists() {
        if let Holds::Other(entry) = own_snapshot(dir)? {
            return Err(not_a_snapshot(dir, &entry, "move it away"));
        }
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::rename(staged, dir).map_err(io(dir))
}

/// The refusal to replace `dir`, which holds `entry` the tool did not write; `fix` says what to do.
fn not_a_snapshot(dir: &Path, entry: &str, fix: &str) -> InventoryError {
    InventoryError::Invalid {
        path: dir.to_path_buf(),
        message: format!(
            "holds {entry}, so it is not a snapshot irsa-migrate wrote; {fix} (nothing was removed or written)"
        ),
        source: None,
    }
}

/// Writes the snapshot file `name` (a relative path of the [`super::layout`]) under `dir`.
fn write_under(dir: &Path, name: &str, text: &str) -> Result<(), InventoryError> {
    use std::io::Write;
    let path = dir.join(name);
    create_under(dir, name)?
        .write_all(text.as_bytes())
        .map_err(|source| InventoryError::Io { path, source })
}

/// Creates the snapshot file `name` (a relative path of the [`super::layout`]) under `dir`, and
/// the directories it is in.
fn create_under(dir: &Path, name: &str) -> Result<std::fs::File, InventoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InventoryError::Io { path, source }
    };
    let path = crate::names::join_under(dir, name).map_err(|e| InventoryError::Invalid {
        path: dir.to_path_buf(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    })?;
    if let Some(parent) = path.parent() {
        crate::private::create_dir_all(parent).map_err(io(parent))?;
    }
    crate::private::create(&path).map_err(io(&path))
}

/// What an existing directory holds, as far as replacing it goes.
enum Holds {
    Nothing,
    /// A snapshot the tool wrote: its marker, or (written before there was one) only
    /// `kubernetes/`, `iam/` and `eks/` with `.json` files in them.
    Snapshot,
    /// Something else, named.
    Other(String),
}

fn own_snapshot(dir: &Path) -> Result<Holds, InventoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InventoryError::Io { path, source }
    };
    let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    if entries.is_empty() {
        return Ok(Holds::Nothing);
    }
    let mut pending = Vec::new();
    for entry in &entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        match name.as_str() {
            MARKER if kind.is_file() => {}
            KUBERNETES_DIR | IAM_DIR | EKS_DIR | CLOUDTRAIL_DIR if kind.is_dir() => {
                pending.push(entry.path())
            }
            _ => return Ok(Holds::Other(format!("{name:?}"))),
        }
    }
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(io(&current))? {
            let entry = entry.map_err(io(&current))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                pending.push(path);
            } else if !(kind.is_file() && path.extension().is_some_and(|e| e == "json")) {
                let shown = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                return Ok(Holds::Other(format!("{shown:?}")));
            }
        }
    }
    Ok(Holds::Snapshot)
}
