//! Why a snapshot could not be loaded or written.

use std::path::PathBuf;

/// Why a snapshot could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value of the wrong type: the file, the object and the field path within the document.
    #[error(
        "{path}{}: {object}, field {field}: {message}; the field must be as `kubectl get -o json|yaml` or the AWS CLI prints it",
        position(*line, *column)
    )]
    Type {
        path: PathBuf,
        /// 0 when the position is unknown (a YAML document read through its merge keys).
        line: usize,
        column: usize,
        object: String,
        field: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A directory that leads back to one it is inside (a symbolic link to an ancestor): read,
    /// it would never end.
    #[error(
        "{path} leads back to {ancestor}, a directory it is inside, so the snapshot tree has a loop; remove the link (nothing was read)"
    )]
    Loop { path: PathBuf, ancestor: PathBuf },
    /// One object twice, with different content: which one the cluster holds cannot be told.
    #[error(
        "{object} is in both {first} and {second}, with different content; keep the copy from the capture to plan from and remove the other (identical copies are fine)"
    )]
    Conflict {
        object: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "{path} holds no .json, .yaml or .yml files; see docs/snapshot.md for the commands that make a snapshot"
    )]
    Empty { path: PathBuf },
}

/// `:line:column`, or nothing when the position is unknown (0).
fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}
