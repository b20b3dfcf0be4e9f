//! Slim Kubernetes types: only the fields the scanner reads, as `kubectl get -o json|yaml` prints them.
//!
//! Deserializing into these instead of full `k8s-openapi` objects keeps snapshot loading fast and
//! memory small on clusters with a hundred thousand pods; unknown fields are skipped by serde.

use serde::{Deserialize, Serialize};

use super::rollout_hold::{Strategy, UpdatePolicy};

/// `metadata` of any object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(
        skip_serializing_if = "StringMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub labels: StringMap,
    #[serde(
        skip_serializing_if = "StringMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub annotations: StringMap,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub owner_references: Vec<OwnerReference>,
    /// The managers that server-side apply the object (`operation: Apply`), each once: who
    /// re-applies it (`crate::ownership`). The others (controllers' updates, `kubectl edit`) are
    /// dropped as they are read, so pods, which controllers write, carry none.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "appliers")]
    pub managed_fields: Vec<ManagedFieldsEntry>,
}

/// One entry of `metadata.managedFields`, without the fields it owns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ManagedFieldsEntry {
    pub manager: String,
    pub operation: String,
}

fn appliers<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ManagedFieldsEntry>, D::Error> {
    let mut entries: Vec<ManagedFieldsEntry> = null_default(deserializer)?;
    entries.retain(|entry| entry.operation == "Apply");
    entries.sort_by(|a, b| a.manager.cmp(&b.manager));
    entries.dedup_by(|a, b| a.manager == b.manager);
    Ok(entries)
}

/// Labels and annotations: a sorted vector, not a `BTreeMap`, because objects carry a handful of
/// entries and a B-tree node costs over 500 bytes even for one; on a 150,000-pod cluster that
/// difference is hundreds of megabytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringMap(Vec<(String, String)>);

impl StringMap {
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the entries whose key `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|(k, _)| keep(k));
    }
}

impl FromIterator<(String, String)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Self {
        let mut map = StringMap::default();
        for (key, value) in entries {
            map.insert(key, value);
        }
        map
    }
}

impl Serialize for StringMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = StringMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<StringMap, A::Error> {
                let mut entries: Vec<(String, String)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0));
                while let Some(entry) = access.next_entry::<String, String>()? {
                    entries.push(entry);
                }
                // Sort once; a later duplicate key wins, as in a map.
                entries.reverse();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                entries.dedup_by(|later, earlier| later.0 == earlier.0);
                entries.shrink_to_fit();
                Ok(StringMap(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// An owner reference, used to walk a pod up to the workload that manages it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnerReference {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
}

/// The parts of a pod spec that decide how a pod gets AWS credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Deprecated alias of `serviceAccountName`, still honoured by the API server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub containers: Vec<Container>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub init_containers: Vec<Container>,
}

impl PodSpec {
    /// The service account the pod runs as: Kubernetes falls back to `default`.
    pub fn service_account(&self) -> &str {
        self.service_account_name
            .as_deref()
            .or(self.service_account.as_deref())
            .filter(|name| !name.is_empty())
            .unwrap_or("default")
    }

    /// The spec without what only a controller's template needs (commands, env, images) and
    /// without the deprecated account alias where the name it stands for is set: what the
    /// inventory keeps of each of possibly hundreds of thousands of pods.
    pub fn pod_essentials(mut self) -> PodSpec {
        if self.service_account_name.is_some() {
            self.service_account = None;
        }
        for container in self
            .containers
            .iter_mut()
            .chain(self.init_containers.iter_mut())
        {
            container.image = None;
            container.command = Vec::new();
            container.args = Vec::new();
            container.env = Vec::new();
        }
        self
    }

    /// All containers, init containers first, as the pod identity webhook mutates both.
    pub fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.init_containers.iter().chain(self.containers.iter())
    }
}

/// Pod- or container-level security context; only the fields that decide who owns the token file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub command: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub args: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVar {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `spec.template` of a workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodTemplate {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobTemplate {
    pub spec: JobTemplateSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobTemplateSpec {
    pub template: PodTemplate,
}

/// A RoleBinding or ClusterRoleBinding subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleRef {
    pub api_group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalObjectReference {
    pub name: String,
}

/// One webhook of a MutatingWebhookConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Webhook {
    pub name: String,
}

/// The union of the fields the scanner reads from any `spec`: a pod's own, a workload's template,
/// a CronJob's job template. One type for all kinds lets a mixed `List` be read in one pass.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawSpec {
    pub service_account_name: Option<String>,
    pub service_account: Option<String>,
    pub host_network: bool,
    pub security_context: Option<SecurityContext>,
    #[serde(deserialize_with = "null_default")]
    pub containers: Vec<Container>,
    #[serde(deserialize_with = "null_default")]
    pub init_containers: Vec<Container>,
    pub template: Option<Box<PodTemplate>>,
    pub job_template: Option<Box<JobTemplate>>,
    pub replicas: Option<i64>,
    pub suspend: Option<bool>,
    pub strategy: Option<Strategy>,
    pub update_strategy: Option<Strategy>,
    pub paused: Option<bool>,
}

impl RawSpec {
    /// The fields that decide whether a template change rolls out, taken out of the spec.
    pub fn take_update_policy(&mut self) -> UpdatePolicy {
        UpdatePolicy {
            strategy: self.strategy.take(),
            update_strategy: self.update_strategy.take(),
            paused: self.paused.take(),
        }
    }

    /// The spec read as a pod's own spec.
    pub fn into_pod_spec(self) -> PodSpec {
        PodSpec {
            service_account_name: self.service_account_name,
            service_account: self.service_account,
            host_network: self.host_network,
            security_context: self.security_context,
            containers: self.containers,
            init_containers: self.init_containers,
        }
    }
}

/// `kubectl` prints `null` for some empty collections (`subjects: null`); read it as empty.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
