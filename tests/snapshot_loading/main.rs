//! The snapshot loader through the public API: every supported shape, recognised by content.
//!
//! One module per theme; `inputs` writes the snapshot files they load.

#[path = "../support/mod.rs"]
mod support;

mod inputs;

mod bad_input;
mod errors;
mod shapes;
mod writing;
