//! The snapshot collector: a directory of `kubectl get -o json|yaml` and `aws` CLI outputs,
//! recognised by their content, never by their file names.

mod aws_documents;
mod build;
mod error;
mod fingerprint;
mod kube_objects;
pub mod layout;
mod load;
mod origins;
mod raw;
mod redact;
mod render;
mod walk;
mod write;

pub use error::InventoryError;
pub use fingerprint::fingerprint;
pub use load::{SnapshotFile, extend, load_dir, load_files, load_readings};
pub use render::render_files;
pub use write::write_dir;
