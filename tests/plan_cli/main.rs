//! Drives `irsa-migrate plan`, `diff` and `demo`, and guards the committed worked example.
//!
//! One module per theme.

// The helpers every test target shares; in a directory target, `mod support` alone would look
// beside this file.
#[path = "../support/mod.rs"]
mod support;

mod output;
mod replanning;
mod snapshot_inputs;
