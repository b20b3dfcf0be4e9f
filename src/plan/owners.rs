//! Who makes each step: the owner of its target ([`crate::ownership`]), read from the inventory.
//! An object the plan creates belongs to the owner of the workloads it is created for, so that
//! the owner's source carries it beside them.

use super::assemble::Planner;
use super::document::Binding;
use super::step::{Step, Target};
use crate::inventory::WorkloadKey;
use crate::ownership::{self, Owner};

impl Planner<'_> {
    /// The owner of what `binding` moves: that of its first owned workload.
    pub(super) fn binding_owner(&self, binding: &Binding) -> Option<Owner> {
        binding.workloads.iter().find_map(|workload| {
            self.owner_of(&Target::Workload {
                namespace: binding.namespace.clone(),
                kind: workload.kind,
                name: workload.name.clone(),
            })
        })
    }

    /// Gives each step whose owner is not yet known its target's owner.
    pub(super) fn assign_owners(&self, steps: &mut [Step]) {
        for step in steps.iter_mut().filter(|step| step.owner.is_none()) {
            step.owner = self.owner_of(&step.target);
        }
    }

    /// The owner of an object the inventory holds.
    fn owner_of(&self, target: &Target) -> Option<Owner> {
        let inventory = self.inventory;
        match target {
            Target::Workload {
                namespace,
                kind,
                name,
            } => {
                let key = WorkloadKey {
                    namespace: namespace.clone(),
                    kind: *kind,
                    name: name.clone(),
                };
                ownership::of_object(&inventory.workloads.get(&key)?.metadata)
            }
            Target::ServiceAccount { namespace, name } => {
                let key = (namespace.clone(), name.clone());
                ownership::of_object(&inventory.service_accounts.get(&key)?.metadata)
            }
            Target::RbacBinding {
                kind,
                namespace,
                name,
            } => inventory
                .rbac_bindings
                .iter()
                .find(|b| &b.kind == kind && &b.namespace == namespace && &b.metadata.name == name)
                .and_then(|b| ownership::of_object(&b.metadata)),
            Target::Role { arn, .. } | Target::InlinePolicy { role_arn: arn, .. } => {
                let role = inventory.iam.roles.get(arn.as_str())?;
                let stack = inventory.iam.stack_of(&role.arn);
                ownership::of_role(
                    &role.tags,
                    stack.map(|s| s.stack_name.as_str()),
                    self.iac_role_tags,
                )
            }
            Target::OidcProvider { .. } => None,
        }
    }
}
