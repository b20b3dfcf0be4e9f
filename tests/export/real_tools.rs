//! The export checked by the real tools owners run: kubectl's kustomize builds each owner's
//! components over the snapshot's objects, and every object it gives is in the plan's `after`
//! state for each step of the phases merged so far.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use irsa_migrate::plan::{Plan, Step, fragment};
use serde_json::Value;

use crate::cli::{PLAN, demo, export};
use crate::support::control_plane::objects_in;
use crate::support::files_under;

/// kubectl, as the control plane build gives it (its kustomize is the one owners' `kubectl
/// apply -k` and Argo CD's default run).
fn kubectl() -> PathBuf {
    let output =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/control-plane/build"))
            .output()
            .expect("scripts/control-plane/build runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("bin/kubectl")
}

/// The plan as written.
fn plan(dir: &Path) -> Plan {
    serde_json::from_str(&std::fs::read_to_string(dir.join(PLAN)).unwrap()).unwrap()
}

/// Every Kubernetes object of the demo's snapshot, by `kind/namespace/name`.
fn snapshot_objects(dir: &Path) -> BTreeMap<String, Value> {
    let root = dir.join("migrations/demo/snapshot/kubernetes");
    let mut dirs: Vec<PathBuf> = files_under(&root)
        .into_iter()
        .filter_map(|p| root.join(p).parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs.iter()
        .flat_map(|d| objects_in(d))
        .map(|o| (key(&o), o))
        .collect()
}

fn key(object: &Value) -> String {
    let metadata = &object["metadata"];
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap_or_default(),
        metadata["namespace"].as_str().unwrap_or_default(),
        metadata["name"].as_str().unwrap_or_default()
    )
}

/// The step ids a component's kustomization names in its header.
fn component_steps(component: &Path) -> Vec<String> {
    std::fs::read_to_string(component.join("kustomization.yaml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| l.split(": ").next().unwrap().to_string())
        .collect()
}

/// The objects a component patches (those it creates are its own), by key.
fn patched(component: &Path) -> Vec<String> {
    let kustomization: Value = yaml_serde::from_str(
        &std::fs::read_to_string(component.join("kustomization.yaml")).unwrap(),
    )
    .unwrap();
    kustomization["patches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let text =
                std::fs::read_to_string(component.join(p["path"].as_str().unwrap())).unwrap();
            key(&yaml_serde::from_str(&text).unwrap())
        })
        .collect()
}

/// Every document of a multi-document YAML stream, by key.
pub fn documents(text: &str) -> BTreeMap<String, Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .map(|o| (key(&o), o))
        .collect()
}

/// Checks that each step's target, in `rendered`, reads as the step's `after`.
pub fn assert_after(steps: &[&Step], rendered: &BTreeMap<String, Value>, context: &str) {
    for step in steps {
        let (kind, namespace, name) = step.target.kubernetes_object().unwrap();
        let key = format!("{kind}/{}/{name}", namespace.unwrap_or_default());
        let object = rendered
            .get(&key)
            .unwrap_or_else(|| panic!("{context}: {key} is rendered: {rendered:#?}"));
        let (before, after) = (step.before.value(), step.after.value());
        let observed = fragment::project(object, &fragment::paths(&before, &after));
        assert!(
            fragment::same_state(&observed, &after),
            "{context}: {}: expected {after}, rendered {observed}",
            step.id
        );
    }
}

/// The phase directories (`<n>-<phase>`) of an owner's export, in order.
pub fn phase_dirs(owner: &Path) -> Vec<String> {
    let mut phases: Vec<String> = std::fs::read_dir(owner)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    phases.sort();
    phases
}

#[test]
#[ignore = "needs kubectl from the control plane build; scripts/test builds it"]
fn kustomize_builds_each_owners_components_over_the_snapshot_into_the_plans_after() {
    let kubectl = kubectl();
    let dir = demo();
    export(dir.path(), "out", &[]);
    let plan = plan(dir.path());
    let objects = snapshot_objects(dir.path());
    let owners = dir.path().join("out/kubernetes");
    let mut checked = 0;
    for owner in std::fs::read_dir(&owners).unwrap() {
        let owner = owner.unwrap().path();
        let phases = phase_dirs(&owner);
        // As an owner merges them: each phase's component on top of the earlier phases'.
        for merged in 1..=phases.len() {
            let base = owner.join(format!("check-{merged}"));
            std::fs::create_dir(&base).unwrap();
            let mut targets: Vec<String> = phases[..merged]
                .iter()
                .flat_map(|p| patched(&owner.join(p)))
                .collect();
            targets.sort();
            targets.dedup();
            let resources: String = targets
                .iter()
                .map(|k| {
                    let object = objects
                        .get(k)
                        .unwrap_or_else(|| panic!("{k} in the snapshot"));
                    format!("---\n{}", yaml_serde::to_string(object).unwrap())
                })
                .collect();
            std::fs::write(base.join("objects.yaml"), resources).unwrap();
            let components: String = phases[..merged]
                .iter()
                .map(|p| format!("- ../{p}\n"))
                .collect();
            std::fs::write(
                base.join("kustomization.yaml"),
                format!("resources:\n- objects.yaml\ncomponents:\n{components}"),
            )
            .unwrap();
            let output = Command::new(&kubectl)
                .arg("kustomize")
                .arg(&base)
                .output()
                .unwrap();
            let context = format!("{} up to {}", owner.display(), phases[merged - 1]);
            assert!(
                output.status.success(),
                "{context}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let rendered = documents(&String::from_utf8_lossy(&output.stdout));
            let ids: Vec<String> = phases[..merged]
                .iter()
                .flat_map(|p| component_steps(&owner.join(p)))
                .collect();
            let steps: Vec<&Step> = plan.steps.iter().filter(|s| ids.contains(&s.id)).collect();
            assert_eq!(steps.len(), ids.len(), "{context}: {ids:?}");
            assert_after(&steps, &rendered, &context);
            checked += steps.len();
        }
    }
    // Every Kubernetes step of the plan was checked at least once.
    let kubernetes = plan.steps.iter().filter(|s| !s.target.is_iam()).count();
    assert!(checked >= kubernetes, "{checked} of {kubernetes}");
}

/// A directory holding the objects of `keys` as a chart's only template, as a chart renders them.
fn chart_of(dir: &Path, objects: &BTreeMap<String, Value>, keys: &[String]) -> PathBuf {
    let chart = dir.join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: payments\nversion: 0.1.0\n",
    )
    .unwrap();
    let templates: String = keys
        .iter()
        .map(|k| format!("---\n{}", yaml_serde::to_string(&objects[k]).unwrap()))
        .collect();
    assert!(!templates.contains("{{"), "the objects hold no template");
    std::fs::write(chart.join("templates/objects.yaml"), templates).unwrap();
    chart
}

#[test]
#[ignore = "needs helm from scripts/owner-tools/build and kubectl from the control plane build; scripts/test builds them"]
fn helm_with_the_exported_post_renderer_plugin_renders_the_plans_after() {
    let (helm, kubectl) = (crate::support::owner_tools::helm(), kubectl());
    let dir = demo();
    export(dir.path(), "out", &[]);
    let plan = plan(dir.path());
    let objects = snapshot_objects(dir.path());
    let owner = dir
        .path()
        .join("out/kubernetes/helm-release-payments-payments");
    let phases = phase_dirs(&owner);
    let mut targets: Vec<String> = phases
        .iter()
        .flat_map(|p| patched(&owner.join(p)))
        .collect();
    targets.sort();
    targets.dedup();
    let chart = chart_of(dir.path(), &objects, &targets);
    let home = dir.path().join("helm");
    let path = std::env::join_paths([kubectl.parent().unwrap().to_path_buf()].into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let helm_command = |args: &[&str]| {
        let output = Command::new(&helm)
            .args(args)
            // Where `helm plugin install` installs and the post-renderer is looked up (Helm 4
            // installs under HELM_DATA_HOME even when HELM_PLUGINS names another directory).
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for merged in 1..=phases.len() {
        let phase = &phases[merged - 1];
        let renderer = owner.join(format!(
            "irsa-migrate-helm-release-payments-payments-{phase}"
        ));
        let plugin: Value =
            yaml_serde::from_str(&std::fs::read_to_string(renderer.join("plugin.yaml")).unwrap())
                .unwrap();
        let name = plugin["name"].as_str().unwrap();
        helm_command(&["plugin", "install", renderer.to_str().unwrap()]);
        let rendered = helm_command(&[
            "template",
            "payments",
            chart.to_str().unwrap(),
            "--namespace",
            "payments",
            "--post-renderer",
            name,
        ]);
        let ids: Vec<String> = phases[..merged]
            .iter()
            .flat_map(|p| component_steps(&owner.join(p)))
            .collect();
        let steps: Vec<&Step> = plan.steps.iter().filter(|s| ids.contains(&s.id)).collect();
        assert!(!steps.is_empty());
        assert_after(
            &steps,
            &documents(&rendered),
            &format!("helm up to {phase}"),
        );
    }
}

/// The heredoc documents of a Terraform file's `aws_iam_role` resources, by role name.
fn role_policies(terraform: &str) -> BTreeMap<String, Value> {
    let mut policies = BTreeMap::new();
    for block in terraform.split("resource \"aws_iam_role\" ").skip(1) {
        let name = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .expect("the role's name");
        let start = block.find("<<-EOT\n").expect("a heredoc") + "<<-EOT\n".len();
        let end = block[start..].find("\n  EOT").expect("the heredoc's end") + start;
        let document: Value = serde_json::from_str(&block[start..end]).expect("heredoc JSON");
        policies.insert(name, document);
    }
    policies
}

#[test]
#[ignore = "needs hcl-check from scripts/owner-tools/build; scripts/test builds it"]
fn the_terraform_parses_is_formatted_and_its_trust_policies_are_the_plans() {
    let dir = demo();
    export(dir.path(), "out", &[]);
    let plan = plan(dir.path());
    let iam = dir.path().join("out/iam");
    let mut checked = 0;
    for phase in phase_dirs(&iam) {
        let terraform = iam.join(&phase).join("main.tf");
        let output = Command::new(crate::support::owner_tools::hcl_check())
            .arg(&terraform)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            terraform.display(),
            String::from_utf8_lossy(&output.stdout)
        );
        let policies = role_policies(&std::fs::read_to_string(&terraform).unwrap());
        let roles: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| phase.ends_with(s.phase.as_str()))
            .filter(|s| matches!(s.target, irsa_migrate::plan::Target::Role { .. }))
            .collect();
        assert_eq!(policies.len(), roles.len(), "{phase}: {policies:?}");
        for step in roles {
            let irsa_migrate::plan::Target::Role { arn, account } = &step.target else {
                unreachable!()
            };
            assert_eq!(policies[arn.name()], step.after.value(), "{}", step.id);
            // The JSON files hold the same documents, and the one before it.
            let file = |suffix: &str| -> Value {
                let name = format!("{account}-{}.{suffix}", arn.name().to_lowercase());
                serde_json::from_str(&std::fs::read_to_string(iam.join(&phase).join(name)).unwrap())
                    .unwrap()
            };
            assert_eq!(file("json"), step.after.value(), "{}", step.id);
            assert_eq!(file("before.json"), step.before.value(), "{}", step.id);
            checked += 1;
        }
    }
    assert!(checked > 5, "{checked}");
}
