//! The snapshot loader through the public API: every supported shape, recognised by content.
//!
//! One module per theme; `inputs` writes the snapshot files they load.

// The helpers every test target shares; in a directory target, `mod support` alone would look
// beside this file.
#[path = "../support/mod.rs"]
mod support;

mod inputs;

mod bad_input;
mod errors;
mod shapes;
mod writing;
