//! The snapshot collector: a directory of `kubectl get -o json|yaml` and `aws` CLI outputs,
//! recognised by their content, never by their file names; and the writer of such directories.
//!
//! Reading: `walk` lists a directory's files, `load` reads them (large lists streamed) and hands
//! each document, parsed as `raw`, to the builder (`build`, which adds `kube_objects` and
//! `aws_documents`), which tells copies from conflicts by their `origins` and keeps only what
//! `redact` allows. Writing: `render` turns an inventory back into files at the places `layout`
//! names, `write` puts them in a directory, `fingerprint` digests the same rendering.

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

pub use error::{Cause, InventoryError, ParserError};
pub use fingerprint::fingerprint;
pub use layout::Layout;
pub use load::{SnapshotFile, extend, load_dir, load_files, load_readings};
pub use render::render_files;
pub use write::{replace_dir, write_dir};
