//! Drives `irsa-migrate plan`, `diff` and `demo`, and guards the committed worked example.
//!
//! One module per theme.

// The helpers every test target shares; in a directory target, `mod support` alone would look
// beside this file.
#[path = "../support/mod.rs"]
mod support;

// The benchmark's generator of snapshots of any size.
#[path = "../../benches/support/generator.rs"]
#[allow(dead_code)]
mod generator;

mod fleet_output;
mod output;
mod replanning;
mod report_render;
mod snapshot_inputs;
