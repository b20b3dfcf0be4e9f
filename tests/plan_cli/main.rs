//! Drives `irsa-migrate plan`, `diff` and `demo`, and guards the committed worked example.
//!
//! One module per theme.

#[path = "../support/mod.rs"]
mod support;

mod output;
mod replanning;
mod snapshot_inputs;
