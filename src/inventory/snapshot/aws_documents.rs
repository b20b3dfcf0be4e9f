//! What the AWS CLI's outputs add to an inventory: the EKS cluster, IAM roles and managed
//! policies, and the CloudFormation stacks that made roles.

use std::path::Path;

use super::InventoryError;
use super::build::Builder;
use super::origins::ObjectId;
use crate::iam::arn::{Arn, RoleArn};
use crate::inventory::aws::{
    EksCluster, ManagedPolicyDetail, RoleDetail, RoleLastUsed, StackResource,
};
use crate::inventory::{Cluster, ManagedPolicy, Role, StackRole};

impl Builder {
    pub(super) fn add_cluster(
        &mut self,
        path: &Path,
        cluster: EksCluster,
    ) -> Result<(), InventoryError> {
        let arn = Arn::parse(&cluster.arn).map_err(|e| InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!("cluster.arn: {e}"),
            source: Some(Box::new(e)),
        })?;
        self.inventory.cluster = Some(Cluster {
            name: cluster.name,
            account: arn.account.clone(),
            region: arn.region.clone(),
            partition: arn.partition.clone(),
            arn: cluster.arn,
            version: cluster.version,
            platform_version: cluster.platform_version,
            oidc_issuer: cluster.identity.and_then(|i| i.oidc).and_then(|o| o.issuer),
        });
        Ok(())
    }

    /// Returns the account the details belong to, read from the role ARNs.
    pub(super) fn add_authorization_details(
        &mut self,
        path: &Path,
        roles: Vec<RoleDetail>,
        policies: Vec<ManagedPolicyDetail>,
    ) -> Result<Option<String>, InventoryError> {
        let mut account = None;
        for role in roles {
            account = Some(self.add_role(path, role, true)?);
        }
        for policy in policies {
            let document = policy.default_document().cloned();
            self.inventory.iam.policies.insert(
                policy.arn.clone(),
                ManagedPolicy {
                    arn: policy.arn,
                    name: policy.policy_name,
                    document,
                },
            );
        }
        if let Some(account) = &account {
            self.inventory.iam.accounts.insert(account.clone());
        }
        Ok(account)
    }

    pub(super) fn add_role(
        &mut self,
        path: &Path,
        role: RoleDetail,
        complete: bool,
    ) -> Result<String, InventoryError> {
        let arn = RoleArn::parse(&role.arn).map_err(|e| InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!("role {:?}, field Arn: {e}", role.role_name),
            source: Some(Box::new(e)),
        })?;
        let account = arn.account().to_string();
        self.add_last_used(path, &role.arn, &role.role_last_used)?;
        let entry = Role {
            arn: arn.clone(),
            name: role.role_name,
            path: role.path,
            trust: role.assume_role_policy_document.0,
            inline: role
                .role_policy_list
                .into_iter()
                .map(|p| (p.policy_name, p.policy_document.0))
                .collect(),
            attached_policies: role.attached_managed_policies,
            instance_profiles: role
                .instance_profile_list
                .into_iter()
                .map(|p| p.arn)
                .collect(),
            permissions_known: complete,
            tags: role.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        };
        // Two readings of one kind (two authorization-details files, two `get-role` files) must
        // agree; a `get-role` file must not hide the permissions an authorization-details file
        // supplied.
        let id = ObjectId {
            kind: if complete { "role" } else { "role (get-role)" },
            namespace: None,
            name: &role.arn,
        };
        let first = self.origins.claim(path, &id, 0);
        let existing = self.inventory.iam.roles.get(&arn);
        if let (Some(first), Some(existing)) = (first, existing)
            && existing.permissions_known == complete
            && *existing != entry
            && !self.origins.later_wins
        {
            return Err(self.origins.conflict(first, path, &id));
        }
        let keep_existing = !complete && existing.is_some_and(|r| r.permissions_known);
        if !keep_existing {
            self.inventory.iam.insert_role(entry);
        }
        Ok(account)
    }

    /// IAM's `RoleLastUsed` of a role, to the trail (a `get-role`, authorization-details or the
    /// tool's `role-last-used` document); nothing when never used.
    pub(super) fn add_last_used(
        &mut self,
        path: &Path,
        arn: &str,
        last_used: &RoleLastUsed,
    ) -> Result<(), InventoryError> {
        let Some(date) = &last_used.last_used_date else {
            return Ok(());
        };
        let time = crate::time::parse(date).ok_or_else(|| InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "role {arn}, field RoleLastUsed.LastUsedDate: {date:?} is not a time such as 2026-11-28T15:45:30Z"
            ),
            source: None,
        })?;
        self.inventory.trail.last_used.insert(
            arn.to_string(),
            crate::inventory::trail::LastUsed {
                time,
                region: last_used.region.clone(),
            },
        );
        Ok(())
    }

    /// The roles among a stack's resources (`describe-stack-resources`); its other resources are
    /// not this tool's business. The stack's name becomes an owner in the plan, so it is held to
    /// CloudFormation's own rule for stack names.
    pub(super) fn add_stack_resources(
        &mut self,
        path: &Path,
        resources: Vec<StackResource>,
    ) -> Result<(), InventoryError> {
        for (index, resource) in resources.into_iter().enumerate() {
            if resource.resource_type != "AWS::IAM::Role" {
                continue;
            }
            let invalid = |field: &str, message: String| InventoryError::Invalid {
                path: path.to_path_buf(),
                message: format!("StackResources[{index}].{field}: {message}"),
                source: None,
            };
            if !is_stack_name(&resource.stack_name) {
                return Err(invalid(
                    "StackName",
                    format!(
                        "{:?} is not a CloudFormation stack name (a letter, then letters, digits and hyphens, at most 128)",
                        resource.stack_name
                    ),
                ));
            }
            let account = Arn::parse(&resource.stack_id)
                .ok()
                .filter(|arn| arn.service == "cloudformation" && crate::iam::arn::is_account_id(&arn.account))
                .map(|arn| arn.account)
                .ok_or_else(|| {
                    invalid(
                        "StackId",
                        format!("{:?} is not a stack ARN (arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID)", resource.stack_id),
                    )
                })?;
            // A role still being created, or already deleted, has no name yet or any more.
            let Some(role_name) = resource.physical_resource_id.filter(|n| !n.is_empty()) else {
                continue;
            };
            self.inventory.iam.stack_roles.insert(
                (account, role_name),
                StackRole {
                    stack_name: resource.stack_name,
                    stack_id: resource.stack_id,
                    logical_id: resource.logical_resource_id,
                },
            );
        }
        Ok(())
    }
}

/// CloudFormation's rule for a stack's name: a letter, then letters, digits and hyphens; at most
/// 128 characters.
fn is_stack_name(name: &str) -> bool {
    name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}
