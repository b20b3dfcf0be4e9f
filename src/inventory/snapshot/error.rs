//! Why a snapshot could not be loaded or written.

use std::path::PathBuf;

/// Why a snapshot could not be loaded (or written). Every variant names the file, and says what
/// to change where the change is the user's to make.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file system refused a read (or, writing a snapshot, a write): the cause is kept.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not valid JSON or YAML: the parser's message, at the position it gave.
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
    /// Well-formed, but not what Kubernetes or AWS would hold (a name Kubernetes refuses, an
    /// ARN that does not parse, a truncated list), or, writing, a directory that is not the
    /// tool's to replace: the message says which and what to do.
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
    /// A snapshot directory with nothing the loader reads.
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
