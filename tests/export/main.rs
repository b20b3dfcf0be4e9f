//! Drives `irsa-migrate export` over the demo plan, and checks what it writes with the real
//! tools owners use: kubectl's kustomize, helm with the post-renderer, an HCL parser.
//!
//! One module per theme.

// The helpers every test target shares; in a directory target, `mod support` alone would look
// beside this file.
#[path = "../support/mod.rs"]
mod support;

mod aws_cli;
mod cli;
mod real_tools;
