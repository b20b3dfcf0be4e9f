//! Drives `apply`, `status` and `rollback` on rehearsals of the demo plan, including SIGKILL at
//! every durability point of a run.
//!
//! One module per theme; `workspace` makes the demo migration they all run on.

// The helpers every test target shares; in a directory target, `mod support` alone would look
// beside this file.
#[path = "../support/mod.rs"]
mod support;

mod workspace;

mod before_first_write;
mod crash;
mod evidence;
mod hostile_plans;
mod locking;
mod namespaces;
mod owners;
mod plan_identity;
mod rehearsal;
