//! The rollout and cleanup phases: each moved workload is switched to its dedicated service
//! account or restarted so the webhook injects the token, then its legacy annotations are removed.

use serde_json::{Value, json};

use super::assemble::Planner;
use super::document::ServiceAccountAction;
use super::step::{RESTART_ANNOTATION, Step, StepKind, Target};
use super::template::{served_service_account, template_fragment};
use crate::inventory::WorkloadKind;

impl Planner<'_> {
    pub(super) fn rollout_and_cleanup_steps(&self) -> Vec<Step> {
        let legacy_keys = self.scan.legacy_annotations().keys();
        let mut steps = Vec::new();
        for binding in &self.bindings {
            for workload in &binding.workloads {
                let key = crate::inventory::WorkloadKey {
                    namespace: binding.namespace.clone(),
                    kind: workload.kind,
                    name: workload.name.clone(),
                };
                let Some(object) = self.inventory.workloads.get(&key) else {
                    continue;
                };
                let target = Target::Workload {
                    namespace: key.namespace.clone(),
                    kind: key.kind,
                    name: key.name.clone(),
                };
                let template = &object.template;
                match binding.service_account_action {
                    ServiceAccountAction::Create => {
                        // The account fields as the template has them (a real server's reads
                        // always carry both, equal).
                        let mut before = serde_json::Map::new();
                        if let Some(name) = &template.spec.service_account_name {
                            before.insert("serviceAccountName".into(), json!(name));
                        }
                        if let Some(name) = &template.spec.service_account {
                            before.insert("serviceAccount".into(), json!(name));
                        }
                        steps.push(Step::new(
                            StepKind::SwitchServiceAccount,
                            target.clone(),
                            format!(
                                "run {key} as {} instead of {}{}",
                                binding.service_account,
                                binding.from_service_account,
                                restart_note(key.kind)
                            ),
                            template_fragment(key.kind, json!({"spec": before})),
                            template_fragment(key.kind, json!({"spec": served_service_account(&binding.service_account)})),
                        ));
                    }
                    // A CronJob's next Jobs pick up the annotated account by themselves.
                    ServiceAccountAction::Reuse | ServiceAccountAction::Keep if key.kind != WorkloadKind::CronJob => steps.push(Step::new(
                        StepKind::RestartWorkload,
                        target.clone(),
                        format!("restart {key} so the webhook injects the token for {}", binding.role_arn),
                        template_fragment(key.kind, json!({"metadata": {"annotations": {}}})),
                        template_fragment(key.kind, json!({"metadata": {"annotations": {RESTART_ANNOTATION: binding.role_arn}}})),
                    )),
                    ServiceAccountAction::Reuse | ServiceAccountAction::Keep => {}
                }
                let present: serde_json::Map<String, Value> = legacy_keys
                    .iter()
                    .filter_map(|k| {
                        Some((k.to_string(), json!(template.metadata.annotations.get(k)?)))
                    })
                    .collect();
                steps.push(Step::new(
                    StepKind::RemoveLegacyAnnotation,
                    target,
                    format!(
                        "remove the legacy annotations from {key}{}",
                        restart_note(key.kind)
                    ),
                    template_fragment(key.kind, json!({"metadata": {"annotations": present}})),
                    template_fragment(key.kind, json!({"metadata": {"annotations": {}}})),
                ));
            }
        }
        steps
    }
}

/// What a pod-template change does to running pods, by kind.
fn restart_note(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::CronJob => " (Jobs created from now on)",
        _ => " (rolling restart)",
    }
}
