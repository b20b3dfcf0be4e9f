//! Slim types for the AWS CLI outputs a snapshot is made of.
//!
//! Real AWS adds fields (`PermissionsBoundary`, `MaxSessionDuration`, ...) that these ignore. Policy
//! documents arrive as JSON objects when the CLI printed them and as URL-encoded strings when they
//! came straight from the IAM API; [`PolicyDocument`] accepts both.

use serde::{Deserialize, Deserializer, Serialize};

use crate::iam::policy::PolicyDocument;
use crate::json::CompactJson;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RoleDetail {
    pub path: String,
    pub role_name: String,
    pub arn: String,
    pub assume_role_policy_document: CompactPolicy,
    pub role_policy_list: Vec<InlinePolicy>,
    pub attached_managed_policies: Vec<AttachedPolicy>,
    pub instance_profile_list: Vec<InstanceProfile>,
    /// Who manages the role may be written here (eksctl's `alpha.eksctl.io/*`, a team's own).
    pub tags: Vec<Tag>,
    /// Evidence before decommission, not the role's state (`{}` when never used).
    pub role_last_used: RoleLastUsed,
}

/// IAM's `RoleLastUsed`: when and in which region the role's credentials were last used.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RoleLastUsed {
    /// The role's ARN, in the tool's own `role-last-used` document only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InlinePolicy {
    pub policy_name: String,
    pub policy_document: CompactPolicy,
}

/// A role's policy document, read as [`PolicyDocument`] reads it and kept as compact text: an
/// authorization-details file of 20,000 roles was held whole as trees of values while it was
/// read (the load's peak), each role's documents several times their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactPolicy(pub CompactJson);

impl Default for CompactPolicy {
    /// The empty policy, as a document read as `null` or absent is.
    fn default() -> CompactPolicy {
        CompactPolicy(CompactJson::new(&PolicyDocument::default().0))
    }
}

impl<'de> Deserialize<'de> for CompactPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CompactPolicy, D::Error> {
        policy_document(deserializer).map(|document| CompactPolicy(CompactJson::new(&document.0)))
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttachedPolicy {
    pub policy_name: String,
    pub policy_arn: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InstanceProfile {
    pub arn: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ManagedPolicyDetail {
    pub arn: String,
    pub policy_name: String,
    pub default_version_id: String,
    pub policy_version_list: Vec<PolicyVersion>,
}

impl ManagedPolicyDetail {
    /// The document IAM evaluates: the default version's.
    pub fn default_document(&self) -> Option<&PolicyDocument> {
        self.policy_version_list
            .iter()
            .find(|v| v.is_default_version || v.version_id == self.default_version_id)
            .map(|v| &v.document)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PolicyVersion {
    #[serde(deserialize_with = "policy_document")]
    pub document: PolicyDocument,
    pub version_id: String,
    pub is_default_version: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OidcProviderEntry {
    pub arn: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EksCluster {
    pub name: String,
    pub arn: String,
    pub version: Option<String>,
    pub platform_version: Option<String>,
    pub identity: Option<EksIdentity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EksIdentity {
    pub oidc: Option<EksOidc>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EksOidc {
    pub issuer: Option<String>,
}

/// A resource of a CloudFormation stack, as `aws cloudformation describe-stack-resources` prints
/// it: the stacks' roles name their owner (CloudFormation does not tag the roles it makes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StackResource {
    pub stack_name: String,
    /// `arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>`: gives the account.
    pub stack_id: String,
    pub logical_resource_id: String,
    /// A role's name, for `AWS::IAM::Role`.
    pub physical_resource_id: Option<String>,
    pub resource_type: String,
}

fn policy_document<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PolicyDocument, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(PolicyDocument::default()),
        Some(value) => PolicyDocument::from_value(value).map_err(serde::de::Error::custom),
    }
}
