//! Where each workload kind keeps its pod template, and the template fields a switch writes:
//! the step builders wrap template fragments at that path, and the validator unwraps them.

use serde_json::{Value, json};

use crate::inventory::WorkloadKind;

/// A pod spec's service account as the API server stores it: `serviceAccountName` and its
/// deprecated alias `serviceAccount`, which the server always writes back equal
/// (`Convert_core_PodSpec_To_v1_PodSpec`). A switch writes both, so that the object read back
/// after the write (or after a write whose answer was lost) is in the step's `after` state.
pub(super) fn served_service_account(name: &str) -> Value {
    json!({"serviceAccountName": name, "serviceAccount": name})
}

/// Wraps a pod-template fragment in the path where the workload kind keeps its template.
pub(super) fn template_fragment(kind: WorkloadKind, template: Value) -> Value {
    match kind {
        WorkloadKind::CronJob => json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
        WorkloadKind::Pod => template,
        _ => json!({"spec": {"template": template}}),
    }
}

/// The pod template inside a workload fragment (the inverse of `template_fragment`); `null` when
/// the fragment holds anything beside it.
pub(super) fn template_inner(kind: WorkloadKind, fragment: &Value) -> Value {
    let only = |value: &Value, key: &str| -> Value {
        match value.as_object() {
            Some(object) if object.len() == 1 => object.get(key).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        }
    };
    match kind {
        WorkloadKind::CronJob => only(
            &only(&only(&only(fragment, "spec"), "jobTemplate"), "spec"),
            "template",
        ),
        WorkloadKind::Pod => fragment.clone(),
        _ => only(&only(fragment, "spec"), "template"),
    }
}
