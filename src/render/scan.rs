//! The scan as a terminal summary: per namespace, each workload's service account, role,
//! verdict and status; then findings by severity.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::iam::written_arn::WrittenRoleArn;
use crate::legacy::Component;
use crate::scan::{Scan, ScannedWorkload, Status, Trust, Usage};

pub fn text(scan: &Scan) -> String {
    let mut out = String::new();
    match &scan.cluster {
        Some(cluster) => {
            let _ = writeln!(
                out,
                "Cluster {} (account {}, {}, Kubernetes {})",
                cluster.name,
                cluster.account,
                cluster.region,
                cluster.version.as_deref().unwrap_or("?")
            );
        }
        None => out.push_str("Cluster: unknown (no describe-cluster output)\n"),
    }
    for agent in &scan.agents {
        let component = match agent.component {
            Component::KiamServer => "kiam server",
            Component::KiamAgent => "kiam agent",
            Component::Kube2iam => "kube2iam",
        };
        let _ = writeln!(
            out,
            "Legacy agent: {component} {} ({})",
            agent.workload, agent.image
        );
    }
    if !scan.legacy_principals.is_empty() {
        let _ = writeln!(
            out,
            "Legacy principal: {}",
            scan.legacy_principals.join(", ")
        );
    }
    let mut by_namespace: BTreeMap<&str, Vec<(&ScannedWorkload, &Usage)>> = BTreeMap::new();
    for (workload, usage) in scan.usages() {
        by_namespace
            .entry(&workload.namespace)
            .or_default()
            .push((workload, usage));
    }
    for (namespace, usages) in by_namespace {
        let _ = writeln!(out, "\nnamespace {namespace}");
        let uncaptured = scan.findings.iter().any(|f| {
            f.code == crate::findings::Code::NamespaceNotCaptured && f.subject.name == *namespace
        });
        let rows: Vec<Vec<String>> = usages
            .iter()
            .map(|(workload, usage)| row(workload, usage, uncaptured))
            .collect();
        out.push_str(&super::table(
            &["WORKLOAD", "SERVICE ACCOUNT", "ROLE", "VERDICT", "STATUS"],
            &rows,
        ));
    }
    let s = &scan.summary;
    let _ = writeln!(
        out,
        "\n{} workloads, {} use AWS roles: {} legacy only, {} IRSA only, {} both; {} work today through the legacy agent",
        s.workloads, s.usages, s.legacy, s.irsa, s.both, s.works_today
    );
    for (severity, findings) in crate::findings::by_severity(&scan.findings) {
        let _ = writeln!(
            out,
            "\n{} {}{}",
            findings.len(),
            severity,
            if findings.len() == 1 { "" } else { "s" }
        );
        for finding in findings {
            let _ = writeln!(
                out,
                "  [{}] {}: {}",
                finding.code, finding.subject, finding.message
            );
        }
    }
    out
}

/// A usage's table row; `uncaptured`: its namespace is not in the source (namespace-not-captured).
fn row(workload: &ScannedWorkload, usage: &Usage, uncaptured: bool) -> Vec<String> {
    let (role, verdict) = match &usage.legacy {
        Some(legacy) => {
            let role = legacy
                .arn
                .as_ref()
                .map(WrittenRoleArn::to_string)
                .or_else(|| legacy.annotation.clone())
                .unwrap_or_else(|| "?".into());
            let verdict = if usage.works_today {
                "works".to_string()
            } else if usage.host_network {
                "hostNetwork: node role".to_string()
            } else if uncaptured {
                "namespace not captured".to_string()
            } else if !legacy.verdict.permitted {
                "denied by namespace".to_string()
            } else {
                match &legacy.trust {
                    Trust::RoleNotFound => "role not found".to_string(),
                    Trust::Missing => "no legacy trust".to_string(),
                    Trust::Unknown { .. } => "unknown".to_string(),
                    Trust::Trusted { .. } => "works".to_string(),
                }
            };
            (role, verdict)
        }
        None => (
            usage
                .irsa_role_arn
                .as_ref()
                .map(WrittenRoleArn::to_string)
                .unwrap_or_default(),
            "-".to_string(),
        ),
    };
    let status = match usage.status {
        Status::Legacy => "legacy",
        Status::Irsa => "irsa",
        Status::Both => "both",
    };
    vec![
        format!("{}/{} ({} pods)", workload.kind, workload.name, usage.pods),
        workload.service_account.clone(),
        role,
        verdict,
        status.to_string(),
    ]
}
