//! irsa-migrate: move EKS workloads from kiam or kube2iam to IAM Roles for Service Accounts.
//!
//! The library is layered as a functional core and an imperative shell: collectors fill an
//! [`inventory::Inventory`]; [`scan::scan`] is a pure function of it; [`cli`] wires the two to the
//! command line and maps errors to the exit codes documented in [`cli::ExitCode`].

pub mod apply;
pub mod aws;
pub mod backend;
pub mod call_error;
pub mod cli;
pub mod collect;
pub mod evidence;
pub mod export;
pub mod fault;
pub mod findings;
pub mod iam;
pub mod inventory;
pub mod json;
pub mod kubernetes;
pub mod legacy;
pub mod names;
pub mod ownership;
pub mod plan;
pub mod private;
pub mod progress;
pub mod render;
pub mod scan;
pub mod tasks;
pub mod time;
pub mod world;
