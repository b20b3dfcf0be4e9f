//! Findings: what the scan and the plan tell the operator, each with a stable code.
//!
//! Codes are a public contract: users gate CI on them, and `docs/findings.md` documents each one.
//! Add codes; never rename or reuse one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much a finding matters. `Error`: a workload cannot be migrated as it stands (or does not
/// work today); `Warning`: it can, but someone must act or check; `Info`: context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Error];

    /// The name reports, the JSON documents and `--fail-on` spell it with.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident;)*) => {
        /// Every finding code. The string form is the public code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The severity a finding of this code has.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }
        }
    };
}

codes! {
    NamespaceNotPermitted = "namespace-not-permitted", Error;
    NamespaceNotCaptured = "namespace-not-captured", Error;
    RoleNotFound = "role-not-found", Error;
    LegacyTrustMissing = "legacy-trust-missing", Error;
    InvalidAnnotation = "invalid-annotation", Error;
    LegacyAgentConfig = "legacy-agent-config", Error;
    WebhookMissing = "webhook-missing", Error;
    CrossAccountRole = "cross-account-role", Warning;
    SharedServiceAccount = "shared-service-account", Warning;
    DefaultRole = "default-role", Warning;
    HostNetwork = "host-network", Warning;
    BarePod = "bare-pod", Warning;
    JobImmutable = "job-immutable", Warning;
    RolloutHeld = "rollout-held", Warning;
    ManagedByHelm = "managed-by-helm", Warning;
    ManagedByArgocd = "managed-by-argocd", Warning;
    ManagedByFlux = "managed-by-flux", Warning;
    ManagedByFieldManager = "managed-by-field-manager", Warning;
    ExternalId = "external-id", Warning;
    NodeRoleExtraPermissions = "node-role-extra-permissions", Warning;
    NodeRoleAssumeRole = "node-role-assume-role", Warning;
    MissingOidcProvider = "missing-oidc-provider", Warning;
    NonRootTokenPermission = "non-root-token-permission", Warning;
    NoLegacyAgent = "no-legacy-agent", Warning;
    MultipleLegacyAgents = "multiple-legacy-agents", Warning;
    ClusterUnknown = "cluster-unknown", Warning;
    RoleUnknown = "role-unknown", Warning;
    TrustPolicyTooLarge = "trust-policy-too-large", Error;
    ServiceAccountMissing = "service-account-missing", Error;
    DedicatedServiceAccount = "dedicated-service-account", Info;
    AlreadyIrsa = "already-irsa", Info;
    ReadDenied = "read-denied", Warning;
    LegacyUsedElsewhere = "legacy-used-elsewhere", Warning;
    UnrecognizedInput = "unrecognized-input", Info;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown finding code {text:?}")))
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What a finding is about: a workload, a namespace, a service account, a role, a file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub kind: String,
    pub name: String,
}

impl Subject {
    pub fn new(
        namespace: Option<&str>,
        kind: impl Into<String>,
        name: impl Into<String>,
    ) -> Subject {
        Subject {
            namespace: namespace.map(str::to_string),
            kind: kind.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One finding. Serialized as `{code, severity, subject: {namespace?, kind, name}, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub subject: Subject,
    pub message: String,
}

impl Finding {
    pub fn new(code: Code, subject: Subject, message: impl Into<String>) -> Finding {
        Finding {
            code,
            severity: code.severity(),
            subject,
            message: message.into(),
        }
    }
}

/// The non-empty groups of `findings` by severity, most severe first, as reports list them.
pub fn by_severity(findings: &[Finding]) -> Vec<(Severity, Vec<&Finding>)> {
    [Severity::Error, Severity::Warning, Severity::Info]
        .into_iter()
        .map(|severity| {
            (
                severity,
                findings
                    .iter()
                    .filter(|f| f.severity == severity)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, group)| !group.is_empty())
        .collect()
}

/// The order findings are reported in: most severe first, then by code, subject and message;
/// duplicates (the same finding reached twice) dropped.
pub fn sort_and_dedup(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        (b.severity, a.code, &a.subject, &a.message)
            .cmp(&(a.severity, b.code, &b.subject, &b.message))
    });
    findings.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_documented() {
        let docs = include_str!("../docs/findings.md");
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "duplicate code {text}");
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{text}"
            );
            assert!(
                docs.contains(&format!("## `{text}`")),
                "docs/findings.md lacks a section for {text}"
            );
        }
    }
}
