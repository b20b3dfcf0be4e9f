//! Kubernetes changes as Kustomize components: per owner and phase, a strategic-merge patch per
//! object it changes and the objects it creates (dedicated service accounts, RBAC copies), which
//! the owner adds to its own kustomization (`components:`), or Argo CD and Flux sync from Git.
//! Helm releases also get a post-renderer, a kustomization over the rendered release, and a
//! values hint for charts that follow `helm create`'s conventions.

use serde_json::{Map, Value, json};

use super::{ExportFile, file_name, owner_dir, phase_dir};
use crate::kubernetes::Resource;
use crate::ownership::Owner;
use crate::plan::{Phase, Step, fragment};

/// The files of `owner`'s Kubernetes steps, phase by phase.
pub(super) fn files(owner: Option<&Owner>, phases: &[(Phase, Vec<&Step>)]) -> Vec<ExportFile> {
    let owner_name = owner_dir(owner);
    let root = format!("kubernetes/{owner_name}");
    let mut files = Vec::new();
    let helm = matches!(
        owner,
        Some(Owner::HelmRelease { .. } | Owner::FluxHelmRelease { .. })
    );
    for (index, (phase, steps)) in phases.iter().enumerate() {
        let dir = format!("{root}/{}", phase_dir(*phase));
        files.extend(component(&dir, owner, *phase, steps));
        if helm {
            let up_to: Vec<Phase> = phases[..=index].iter().map(|(p, _)| *p).collect();
            files.extend(post_renderer(&root, &owner_name, *phase, &up_to));
            files.push(values_hint(&root, *phase, steps));
        }
    }
    files
}

/// The objects `steps` change, each with its steps, in the order of their first step.
fn by_object<'s>(steps: &[&'s Step]) -> Vec<Vec<&'s Step>> {
    let mut objects: Vec<Vec<&Step>> = Vec::new();
    for step in steps {
        match objects.iter_mut().find(|o| o[0].target == step.target) {
            Some(object) => object.push(step),
            None => objects.push(vec![step]),
        }
    }
    objects
}

/// An object's file name: its kind, namespace and name.
fn object_file(step: &Step) -> String {
    let (kind, namespace, name) = step.target.kubernetes_object().unwrap_or(("", None, ""));
    let namespace = namespace.map(|ns| format!("{ns}-")).unwrap_or_default();
    format!("{}.yaml", file_name(&format!("{kind}-{namespace}{name}")))
}

/// The object as it must be after `steps`, when the first creates it; the strategic-merge patch
/// that makes their changes otherwise (their fields set, those they remove `null`), under the
/// object's `apiVersion`, `kind` and name. Whether it is a new object.
fn object_change(steps: &[&Step]) -> (Value, bool) {
    let first = steps[0];
    if first.before.value().is_null() {
        let mut object = first.after.value();
        for step in &steps[1..] {
            fragment::transition(&mut object, &step.before.value(), &step.after.value());
        }
        return (object, true);
    }
    let (kind, namespace, name) = first.target.kubernetes_object().unwrap_or(("", None, ""));
    let api_version = Resource::by_kind(kind).map_or("v1", |r| r.api_version);
    let mut metadata = json!({ "name": name });
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    let mut patch = json!({"apiVersion": api_version, "kind": kind, "metadata": metadata});
    for step in steps {
        crate::json::merge(
            &mut patch,
            &fragment::merge_patch(&step.before.value(), &step.after.value()),
        );
    }
    (patch, false)
}

fn yaml(value: &Value) -> String {
    yaml_serde::to_string(value).unwrap_or_default()
}

/// The lines naming `steps`, as YAML comments.
fn step_comments(steps: &[&Step]) -> String {
    steps
        .iter()
        .map(|s| format!("#   {}: {}\n", s.id, s.description))
        .collect()
}

/// A phase's component: its kustomization, and a file per object.
fn component(dir: &str, owner: Option<&Owner>, phase: Phase, steps: &[&Step]) -> Vec<ExportFile> {
    let mut files = Vec::new();
    let mut resources = Vec::new();
    let mut patches = Vec::new();
    for object in by_object(steps) {
        let (change, created) = object_change(&object);
        let name = object_file(object[0]);
        files.push(ExportFile::new(
            format!("{dir}/{name}"),
            format!(
                "# {}\n{}{}",
                object[0].target,
                step_comments(&object),
                yaml(&change)
            ),
        ));
        if created {
            resources.push(json!(name));
        } else {
            patches.push(json!({ "path": name }));
        }
    }
    let mut kustomization = Map::new();
    kustomization.insert(
        "apiVersion".into(),
        json!("kustomize.config.k8s.io/v1alpha1"),
    );
    kustomization.insert("kind".into(), json!("Component"));
    if !resources.is_empty() {
        kustomization.insert("resources".into(), Value::Array(resources));
    }
    if !patches.is_empty() {
        kustomization.insert("patches".into(), Value::Array(patches));
    }
    let whose = owner.map_or("objects nobody owns".to_string(), ToString::to_string);
    files.push(ExportFile::new(
        format!("{dir}/kustomization.yaml"),
        format!(
            "# irsa-migrate export: phase {phase} for {whose}. Add this directory to the\n# kustomization that renders these objects (`components:`), after the earlier phases'.\n# Steps:\n{}{}",
            step_comments(steps),
            yaml(&Value::Object(kustomization))
        ),
    ));
    files
}

/// The name of the Helm plugin that post-renders `phase` for the owner (plugin names are
/// letters, digits, `_` and `-`).
pub(super) fn plugin_name(owner_name: &str, phase: Phase) -> String {
    format!("irsa-migrate-{owner_name}-{}", phase_dir(phase)).replace('.', "-")
}

/// A Helm post-renderer for `phase`: the rendered release with the components of `up_to` (every
/// exported phase of the owner up to this one, since an upgrade renders the chart afresh). Helm 4
/// runs post-renderers as plugins (`plugin.yaml`, installed with `helm plugin install DIR`);
/// Helm 3 runs the script by its path.
fn post_renderer(root: &str, owner_name: &str, phase: Phase, up_to: &[Phase]) -> Vec<ExportFile> {
    // Named as the plugin: `helm plugin install` links the directory under its own name, so
    // two releases' post-renderers must not share one.
    let dir = format!("{root}/{}", plugin_name(owner_name, phase));
    let components: Vec<Value> = up_to
        .iter()
        .map(|p| json!(format!("../{}", phase_dir(*p))))
        .collect();
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["rendered.yaml"],
        "components": components,
    });
    let plugin = json!({
        "apiVersion": "v1",
        "name": plugin_name(owner_name, phase),
        "version": "0.1.0",
        "type": "postrenderer/v1",
        "runtime": "subprocess",
        "runtimeConfig": {"platformCommand": [{"command": "${HELM_PLUGIN_DIR}/post-render"}]},
    });
    vec![
        ExportFile::new(
            format!("{dir}/kustomization.yaml"),
            format!(
                "# The release as Helm renders it (rendered.yaml, written by ./post-render) with the\n# changes of phase {phase} and of the phases before it.\n{}",
                yaml(&kustomization)
            ),
        ),
        ExportFile::new(
            format!("{dir}/plugin.yaml"),
            format!(
                "# Helm 4 runs post-renderers as plugins: `helm plugin install` this directory, then\n# `helm upgrade ... --post-renderer {}`.\n{}",
                plugin_name(owner_name, phase),
                yaml(&plugin)
            ),
        ),
        ExportFile::script(
            format!("{dir}/post-render"),
            "#!/bin/sh\n# A Helm post-renderer: reads the rendered release on stdin, prints it with this\n# directory's kustomization applied. Needs kubectl (its built-in kustomize) on PATH.\nset -eu\n# The directory itself, not a link to it (`helm plugin install` links it): the kustomization\n# names the phases' components beside it.\ndir=$(cd \"$(dirname \"$0\")\" && pwd -P)\ncat > \"$dir/rendered.yaml\"\nexec kubectl kustomize \"$dir\"\n"
                .to_string(),
        ),
    ]
}

/// For charts that follow `helm create`'s conventions (`serviceAccount.create/name/annotations`,
/// `podAnnotations`): the values that make `phase`'s changes, one document per object.
fn values_hint(root: &str, phase: Phase, steps: &[&Step]) -> ExportFile {
    let mut text = format!(
        "# Values for charts that follow `helm create`'s conventions, phase {phase}: check each\n# against the chart's values.yaml first (the post-renderer makes the same changes to any chart).\n"
    );
    for object in by_object(steps) {
        let (change, created) = object_change(&object);
        let mut values = json!({});
        if object[0].target.kubernetes_object().map(|(kind, ..)| kind) == Some("ServiceAccount") {
            let mut account = json!({ "name": change["metadata"]["name"] });
            if created {
                account["create"] = json!(true);
            }
            let annotations = &change["metadata"]["annotations"];
            if !annotations.is_null() {
                account["annotations"] = annotations.clone();
            }
            values["serviceAccount"] = account;
        } else {
            let template = if change["spec"]["jobTemplate"].is_null() {
                &change["spec"]["template"]
            } else {
                &change["spec"]["jobTemplate"]["spec"]["template"]
            };
            if let Some(name) = template["spec"]["serviceAccountName"].as_str() {
                values["serviceAccount"] = json!({ "name": name });
            }
            let annotations = &template["metadata"]["annotations"];
            if !annotations.is_null() {
                values["podAnnotations"] = annotations.clone();
            }
        }
        text.push_str(&format!("---\n# {}\n{}", object[0].target, yaml(&values)));
    }
    ExportFile::new(
        format!("{root}/values-hint-{}.yaml", phase_dir(phase)),
        text,
    )
}
