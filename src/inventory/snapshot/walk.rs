//! The directory walk: which files of a snapshot directory are read, in which order, and the
//! loops (symbolic links to an ancestor) that would make it endless.

use std::path::{Path, PathBuf};

use super::InventoryError;

/// Lists every `.json`, `.yaml` and `.yml` file under `dir`, sorted so loading is deterministic.
/// Symbolic links are followed, but a directory reached twice is read once, and one that leads
/// back to a directory it is inside (a loop) is an error naming it.
pub(super) fn snapshot_files(dir: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InventoryError::Io { path, source }
    };
    let root = directory_id(dir).map_err(io(dir))?;
    let mut visited = std::collections::HashSet::from([root.clone()]);
    // Each directory to read, with the directories it is inside (identity and path).
    let mut pending = vec![(dir.to_path_buf(), vec![(root, dir.to_path_buf())])];
    let mut files = Vec::new();
    while let Some((current, ancestors)) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(io(&current))? {
            let path = entry.map_err(io(&current))?.path();
            if path.is_dir() {
                let id = directory_id(&path).map_err(io(&path))?;
                if let Some((_, ancestor)) = ancestors.iter().find(|(a, _)| *a == id) {
                    return Err(InventoryError::Loop {
                        path,
                        ancestor: ancestor.clone(),
                    });
                }
                if visited.insert(id.clone()) {
                    let mut inside = ancestors.clone();
                    inside.push((id, path.clone()));
                    pending.push((path, inside));
                }
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(InventoryError::Empty {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// What makes a directory the same directory, however it is reached: device and inode on Unix,
/// the canonical path elsewhere.
#[derive(Clone, PartialEq, Eq, Hash)]
struct DirectoryId(#[cfg(unix)] (u64, u64), #[cfg(not(unix))] PathBuf);

fn directory_id(path: &Path) -> std::io::Result<DirectoryId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path)?;
        Ok(DirectoryId((metadata.dev(), metadata.ino())))
    }
    #[cfg(not(unix))]
    {
        Ok(DirectoryId(std::fs::canonicalize(path)?))
    }
}
