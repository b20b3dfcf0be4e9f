//! Writing an inventory as a snapshot directory, and telling a snapshot this tool wrote (which
//! may be replaced) from any other directory (which is refused).

use std::path::Path;

use super::InventoryError;
use super::layout::{CLOUDTRAIL_DIR, EKS_DIR, IAM_DIR, KUBERNETES_DIR, MARKER};
use super::render::render_each;
use crate::inventory::Inventory;

/// Writes [`super::render_files`] under `dir`, one file at a time: a new or empty directory, or a
/// snapshot this tool wrote, which is replaced. Any other directory is refused and left as it is.
/// The directory and everything in it are the owner's only (0700, 0600): a snapshot holds the
/// cluster's objects and its IAM policies.
pub fn write_dir(inventory: &Inventory, dir: &Path) -> Result<(), InventoryError> {
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
    render_each(inventory, &mut |name, text| {
        if failed.is_none() {
            failed = write_under(dir, &name, &text).err();
        }
    });
    failed.map_or(Ok(()), Err)
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
    crate::private::write(&path, text).map_err(io(&path))?;
    Ok(())
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
