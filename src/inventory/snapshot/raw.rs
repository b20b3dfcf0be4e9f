//! The serde shape of one top-level document of a snapshot file: what `kubectl get -o json|yaml`
//! and the `aws` CLI print, read in one pass.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::inventory::aws::{
    EksCluster, ManagedPolicyDetail, OidcProviderEntry, RoleDetail, StackResource,
};
use crate::inventory::kube::{
    LocalObjectReference, ObjectMeta, RawSpec, RoleRef, Subject, Webhook, null_default,
};

/// One top-level document of a snapshot file. The Kubernetes fields and the AWS CLI's top-level
/// keys never collide, so a single parse both recognises and reads any supported file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawObject {
    pub(super) api_version: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) metadata: ObjectMeta,
    // Boxed: most objects lack most of these, and a pod list holds many RawObjects at once.
    pub(super) spec: Option<Box<RawSpec>>,
    pub(super) status: Option<RawStatus>,
    #[serde(deserialize_with = "null_default")]
    pub(super) data: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub(super) subjects: Vec<Subject>,
    pub(super) role_ref: Option<Box<RoleRef>>,
    #[serde(deserialize_with = "null_default")]
    pub(super) webhooks: Vec<Webhook>,
    #[serde(deserialize_with = "null_default")]
    pub(super) image_pull_secrets: Vec<LocalObjectReference>,
    pub(super) automount_service_account_token: Option<bool>,
    pub(super) items: Option<Vec<RawObject>>,
    /// `aws iam get-account-authorization-details`.
    #[serde(rename = "RoleDetailList")]
    pub(super) role_detail_list: Option<Vec<RoleDetail>>,
    #[serde(rename = "Policies")]
    pub(super) policies: Option<Vec<ManagedPolicyDetail>>,
    /// `aws iam get-role`.
    #[serde(rename = "Role")]
    pub(super) role: Option<Box<RoleDetail>>,
    /// `aws iam list-open-id-connect-providers`.
    #[serde(rename = "OpenIDConnectProviderList")]
    pub(super) oidc_providers: Option<Vec<OidcProviderEntry>>,
    /// `aws eks describe-cluster`.
    pub(super) cluster: Option<Box<EksCluster>>,
    /// `aws cloudtrail lookup-events`.
    #[serde(rename = "Events")]
    pub(super) events: Option<Vec<crate::inventory::trail::LookupEvent>>,
    #[serde(rename = "LookupWindow")]
    pub(super) lookup_window: Option<crate::inventory::trail::LookupWindow>,
    /// IAM's `RoleLastUsed` of roles, as `snapshot --out` writes it beside the CloudTrail
    /// (`cloudtrail/role-last-used.json`): evidence, kept out of the roles' own files.
    #[serde(rename = "RoleLastUsed")]
    pub(super) role_last_used: Option<Vec<crate::inventory::aws::RoleLastUsed>>,
    /// `aws cloudformation describe-stack-resources`.
    #[serde(rename = "StackResources")]
    pub(super) stack_resources: Option<Vec<StackResource>>,
}

/// `status` of an object: only a pod's phase (a finished pod uses no credentials) and address
/// (kube2iam's session names) are read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct RawStatus {
    pub(super) phase: Option<String>,
    #[serde(rename = "podIP")]
    pub(super) pod_ip: Option<String>,
}
