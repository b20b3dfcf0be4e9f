//! The planner: inventory in, the IRSA end state and the ordered, reversible steps to reach it.
//! Pure: no I/O.
//!
//! The binding rules are the safety invariants of the design: only usages that work today move;
//! a service account is annotated only when every workload using it used that same role (others
//! get dedicated service accounts); trust statements are exact (`StringEquals` on `:sub` and
//! `:aud`) and never made to fit with a wildcard.
//!
//! The plan document is [`document`] and its steps [`step`], with the format of a step's sides in
//! [`fragment`]; [`plan`] assembles it, one phase's steps per module; [`validate`] checks a plan
//! read from a file against the same rules.

mod assemble;
mod bind;
mod decommission;
pub mod document;
pub mod fragment;
mod identity;
pub mod naming;
mod owners;
pub mod permissions;
mod prepare;
mod rollout;
pub mod select;
pub mod step;
mod template;
pub mod trust;
pub mod validate;

pub use assemble::{PlanError, plan, plan_with_fingerprint, plan_with_scan};
pub use document::{Binding, PLAN_SCHEMA, Plan, ServiceAccountAction, Settings};
pub use step::{Phase, Side, Step, StepKind, Target};

#[cfg(test)]
pub(crate) mod tests;
