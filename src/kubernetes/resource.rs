//! The kinds the tool reads and writes, and where their objects live in the API.

/// A kind the tool reads or writes: where its objects live in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub kind: &'static str,
    /// `v1` for the core group, `group/version` otherwise.
    pub api_version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl Resource {
    const fn new(
        kind: &'static str,
        api_version: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Resource {
        Resource {
            kind,
            api_version,
            plural,
            namespaced,
        }
    }

    /// The collection's URL path, across namespaces when `namespace` is `None`.
    pub fn collection(&self, namespace: Option<&str>) -> String {
        let base = if self.api_version == "v1" {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}", self.api_version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!(
                "{base}/namespaces/{}/{}",
                crate::names::url_segment(ns),
                self.plural
            ),
            _ => format!("{base}/{}", self.plural),
        }
    }

    pub fn by_kind(kind: &str) -> Option<Resource> {
        SCANNED.iter().copied().find(|r| r.kind == kind)
    }
}

/// Every kind the scanner reads, listed cluster-wide. `ConfigMap` is read as one object
/// (`kube-system/aws-auth`), never listed: config maps are many and mostly irrelevant.
pub const SCANNED: &[Resource] = &[
    Resource::new("Namespace", "v1", "namespaces", false),
    Resource::new("ServiceAccount", "v1", "serviceaccounts", true),
    Resource::new("Pod", "v1", "pods", true),
    Resource::new("Deployment", "apps/v1", "deployments", true),
    Resource::new("StatefulSet", "apps/v1", "statefulsets", true),
    Resource::new("DaemonSet", "apps/v1", "daemonsets", true),
    Resource::new("ReplicaSet", "apps/v1", "replicasets", true),
    Resource::new("Job", "batch/v1", "jobs", true),
    Resource::new("CronJob", "batch/v1", "cronjobs", true),
    Resource::new(
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        true,
    ),
    Resource::new(
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        false,
    ),
    Resource::new(
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        false,
    ),
];

pub const CONFIG_MAP: Resource = Resource::new("ConfigMap", "v1", "configmaps", true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_paths_follow_the_api_groups() {
        let pods = Resource::by_kind("Pod").unwrap();
        assert_eq!(pods.collection(None), "/api/v1/pods");
        assert_eq!(
            pods.collection(Some("payments")),
            "/api/v1/namespaces/payments/pods"
        );
        let bindings = Resource::by_kind("ClusterRoleBinding").unwrap();
        assert_eq!(
            bindings.collection(Some("ignored")),
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
        );
        assert_eq!(
            Resource::by_kind("Deployment")
                .unwrap()
                .collection(Some("a")),
            "/apis/apps/v1/namespaces/a/deployments"
        );
    }
}
