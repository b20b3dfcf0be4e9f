//! Binding and trust rules, on small inventories built as snapshot files: the whole planner
//! through [`plan`], by theme, on the [`World`] builder.

mod assemble;
mod bind;
mod decommission;
mod prepare;
pub(crate) mod properties;
mod world;

use serde_json::{Value, json};

pub(crate) use world::World;
use world::{KIAM, arn};

use super::*;
use crate::findings::Code;

/// One workload, Deployment `shop/api` on its own service account, with role `api`, which trusts
/// kiam's server role.
fn one_workload() -> World {
    let mut world = World::new();
    world
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some("api"))
        .role("api", true, 0);
    world
}

/// [`one_workload`], with the kiam server's inline `policies`.
fn one_workload_with_kiam_policies(policies: Value) -> World {
    let mut world = one_workload();
    world.kiam_server_policies(policies);
    world
}

/// [`one_workload_with_kiam_policies`] whose policy `assume` grants exactly role `api`.
fn one_workload_with_a_kiam_grant() -> World {
    one_workload_with_kiam_policies(
        json!([{"PolicyName": "assume", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("api")}]}}]),
    )
}

fn binding<'p>(plan: &'p Plan, namespace: &str, account: &str) -> &'p Binding {
    plan.bindings
        .iter()
        .find(|b| b.namespace == namespace && b.service_account == account)
        .unwrap_or_else(|| panic!("no binding {namespace}/{account} in {:#?}", plan.bindings))
}

fn step<'p>(plan: &'p Plan, id: &str) -> &'p Step {
    plan.steps.iter().find(|s| s.id == id).unwrap_or_else(|| {
        panic!(
            "no step {id}; have {:?}",
            plan.steps.iter().map(|s| &s.id).collect::<Vec<_>>()
        )
    })
}

fn skipped(plan: &Plan, name: &str) -> Option<Code> {
    plan.skipped
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.reason)
}

/// The `:sub` values of a web-identity statement.
fn subjects_of(statement: &Value) -> Vec<String> {
    let Some(equals) = statement["Condition"]["StringEquals"].as_object() else {
        return Vec::new();
    };
    equals
        .iter()
        .filter(|(k, _)| k.ends_with(":sub"))
        .flat_map(|(_, v)| trust::strings(v))
        .collect()
}
