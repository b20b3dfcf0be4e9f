//! Live runs against real peers: moto for AWS (reached through `AWS_ENDPOINT_URL`) and a real
//! Kubernetes control plane (kube-apiserver, etcd, kube-controller-manager, kube-scheduler,
//! kwok and the amazon-eks-pod-identity-webhook, started by `scripts/cluster`), both loaded with
//! the demo cluster. The tool reaches the API server over TLS through a fault-injecting proxy,
//! with the least-privilege identities of docs/permissions.md, and is driven exactly as a user
//! would drive it.
//!
//! One module per theme; `harness` starts the live demo cluster they all run against.

// The helpers every test target shares; in a directory target, `mod support` alone would look
// beside this file.
#[path = "../support/mod.rs"]
mod support;

mod harness;

mod crash;
mod end_to_end;
mod evidence;
mod faults;
mod owners;
mod permissions;
mod pod_identity_double;
mod pod_identity_webhook;
mod rollouts;
mod scan;
mod world_check;
