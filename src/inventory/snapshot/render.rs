//! The inventory rendered back as snapshot files, in the shapes `kubectl` and `aws` print.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fingerprint::Fingerprint;
use super::layout::{self, Layout};
use crate::iam::arn::Arn;
use crate::inventory::{Inventory, Role, WorkloadKind};

/// Where a rendered object goes: an item of the list of `kind` in `namespace` (`None`:
/// cluster-scoped), or a whole AWS document, at the same path in every layout.
pub(super) enum Place<'a> {
    Item {
        namespace: Option<&'a str>,
        kind: &'a str,
    },
    Document(&'a str),
}

impl Place<'_> {
    /// The file of `layout` that holds it; `None` for a kind the tool does not keep.
    pub(super) fn file(&self, layout: Layout) -> Option<String> {
        match self {
            // Namespaces were checked by the loader (and `write_dir` refuses any path that would
            // leave its directory).
            Place::Item { namespace, kind } => layout::kubernetes_file(layout, *namespace, kind),
            Place::Document(path) => Some(path.to_string()),
        }
    }
}

/// Visits every object of the inventory in a deterministic order, with the [`Place`] it is
/// rendered into: an item of a Kubernetes list, or a whole AWS document.
pub(super) fn render_objects(inventory: &Inventory, visit: &mut dyn FnMut(&Place<'_>, Value)) {
    use serde_json::json;
    let mut kinds_rendered = std::collections::BTreeSet::new();
    let mut item = |namespace: Option<&str>, kind: &str, object: Value| {
        kinds_rendered.insert(kind.to_string());
        visit(&Place::Item { namespace, kind }, object);
    };
    for namespace in inventory.namespaces.values() {
        item(
            None,
            "Namespace",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": namespace.metadata}),
        );
    }
    for account in inventory.service_accounts.values() {
        let mut object =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": account.metadata});
        if !account.image_pull_secrets.is_empty() {
            object["imagePullSecrets"] = json!(account.image_pull_secrets);
        }
        if let Some(automount) = account.automount_service_account_token {
            object["automountServiceAccountToken"] = json!(automount);
        }
        item(Some(&account.namespace), "ServiceAccount", object);
    }
    for workload in inventory.workloads.values() {
        let kind = workload.key.kind.as_str();
        let api_version = match workload.key.kind {
            WorkloadKind::CronJob | WorkloadKind::Job => "batch/v1",
            _ => "apps/v1",
        };
        let mut spec = match workload.key.kind {
            WorkloadKind::CronJob => {
                json!({"jobTemplate": {"spec": {"template": workload.template}}})
            }
            _ => json!({"template": workload.template}),
        };
        if let Some(replicas) = workload.replicas {
            spec["replicas"] = json!(replicas);
        }
        if let (Some(spec), Ok(Value::Object(update))) =
            (spec.as_object_mut(), serde_json::to_value(&workload.update))
        {
            spec.extend(update);
        }
        let object = json!({"apiVersion": api_version, "kind": kind, "metadata": workload.metadata, "spec": spec});
        item(Some(&workload.key.namespace), kind, object);
    }
    for pod in &inventory.pods {
        let mut object =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": pod.metadata, "spec": pod.spec});
        object["metadata"]["namespace"] = json!(pod.namespace);
        if let Some(phase) = &pod.phase {
            object["status"]["phase"] = json!(phase);
        }
        if let Some(ip) = &pod.ip {
            object["status"]["podIP"] = json!(ip);
        }
        item(Some(&pod.namespace), "Pod", object);
    }
    for binding in &inventory.rbac_bindings {
        let object = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding.kind, "metadata": binding.metadata,
                            "roleRef": binding.role_ref, "subjects": binding.subjects});
        item(binding.namespace.as_deref(), &binding.kind, object);
    }
    if let Some(map_roles) = &inventory.aws_auth_map_roles {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aws-auth", "namespace": "kube-system"},
                            "data": {"mapRoles": map_roles}});
        item(Some("kube-system"), "ConfigMap", object);
    }
    for (name, hooks) in &inventory.mutating_webhooks {
        let hooks: Vec<Value> = hooks.iter().map(|h| json!({"name": h})).collect();
        let object = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                            "metadata": {"name": name}, "webhooks": hooks});
        item(None, "MutatingWebhookConfiguration", object);
    }
    // Kinds the source held only as empty lists: an empty list keeps "captured, none" known.
    for kind in inventory
        .kinds_seen
        .iter()
        .filter(|k| !k.is_empty() && *k != "List" && !kinds_rendered.contains(*k))
    {
        visit(
            &Place::Item {
                namespace: None,
                kind,
            },
            Value::Null,
        );
    }

    let iam = &inventory.iam;
    let role_json = |role: &Role| {
        let mut detail = json!({"Path": role.path, "RoleName": role.name, "Arn": role.arn, "AssumeRolePolicyDocument": role.trust,
               "RolePolicyList": role.inline.iter().map(|(name, doc)| json!({"PolicyName": name, "PolicyDocument": doc})).collect::<Vec<_>>(),
               "AttachedManagedPolicies": role.attached_policies,
               "InstanceProfileList": role.instance_profiles.iter().map(|arn| json!({"Arn": arn})).collect::<Vec<_>>()});
        if !role.tags.is_empty() {
            detail["Tags"] = role
                .tags
                .iter()
                .map(|(key, value)| json!({"Key": key, "Value": value}))
                .collect();
        }
        detail
    };
    for account in &iam.accounts {
        let in_account = |arn: &str| Arn::parse(arn).is_ok_and(|a| &a.account == account);
        let roles: Vec<&Role> = iam
            .roles
            .values()
            .filter(|r| r.arn.account() == account)
            .collect();
        for (index, chunk) in roles.chunks(layout::ROLES_PER_FILE).enumerate() {
            let policies: Vec<Value> = if index > 0 {
                Vec::new()
            } else {
                iam.policies
                    .values()
                    .filter(|p| in_account(&p.arn) || Arn::parse(&p.arn).is_ok_and(|a| a.account == "aws"))
                    .map(|p| {
                        let versions: Vec<Value> =
                            p.document.iter().map(|d| json!({"Document": d, "VersionId": "v1", "IsDefaultVersion": true})).collect();
                        json!({"Arn": p.arn, "PolicyName": p.name, "DefaultVersionId": "v1", "PolicyVersionList": versions})
                    })
                    .collect()
            };
            let roles: Vec<Value> = chunk.iter().map(|r| role_json(r)).collect();
            visit(
                &Place::Document(&layout::account_roles_file(account, index)),
                json!({"RoleDetailList": roles, "Policies": policies}),
            );
        }
    }
    // Roles known only from `get-role` stay that way, so their account does not become "known".
    for role in iam.roles.values().filter(|r| !r.permissions_known) {
        if !iam.accounts.contains(role.arn.account()) {
            visit(
                &Place::Document(&layout::get_role_file(role.arn.as_str())),
                json!({"Role": role_json(role)}),
            );
        }
    }
    let mut stack_roles: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for ((account, role), stack) in &iam.stack_roles {
        stack_roles.entry(account).or_default().push(json!({
            "StackName": stack.stack_name, "StackId": stack.stack_id,
            "LogicalResourceId": stack.logical_id, "PhysicalResourceId": role,
            "ResourceType": "AWS::IAM::Role",
        }));
    }
    for (account, resources) in stack_roles {
        visit(
            &Place::Document(&layout::stack_resources_file(account)),
            json!({"StackResources": resources}),
        );
    }
    if let Some(providers) = &iam.oidc_providers {
        let list: Vec<Value> = providers.iter().map(|arn| json!({"Arn": arn})).collect();
        visit(
            &Place::Document(layout::OIDC_PROVIDERS_FILE),
            json!({"OpenIDConnectProviderList": list}),
        );
    }
    if let Some(cluster) = &inventory.cluster {
        let mut object = json!({"name": cluster.name, "arn": cluster.arn});
        if let Some(version) = &cluster.version {
            object["version"] = json!(version);
        }
        if let Some(platform) = &cluster.platform_version {
            object["platformVersion"] = json!(platform);
        }
        if let Some(issuer) = &cluster.oidc_issuer {
            object["identity"] = json!({"oidc": {"issuer": issuer}});
        }
        visit(
            &Place::Document(layout::EKS_CLUSTER_FILE),
            json!({"cluster": object}),
        );
    }
}

/// The inventory as snapshot files (`kubectl`/`aws` shapes) of [`Layout::PerNamespace`], sorted
/// by name: what the loader reads back into an equal inventory.
pub fn render_files(inventory: &Inventory) -> Vec<(String, String)> {
    let mut files = Vec::new();
    render_each(inventory, &mut |file, text| files.push((file, text)));
    files.sort();
    files
}

/// The files of [`render_files`], each handed to `visit` as soon as it is complete (in no
/// particular order), so that no more than one file's text is held at a time.
///
/// Each list item is written out as text when it is visited, so no file is ever held as a tree
/// of values (a tree takes several times the memory of its text). A list file is complete when
/// the next object belongs to another file: [`render_objects`] visits each file's objects one
/// after another in this layout (namespaces, service accounts, workloads and pods by namespace;
/// bindings by kind, then namespace).
pub fn render_each(inventory: &Inventory, visit: &mut dyn FnMut(String, String)) {
    render_each_digested(inventory, None, visit);
}

/// [`render_each`], adding every object to `digest` as it is rendered.
pub(super) fn render_each_digested(
    inventory: &Inventory,
    mut digest: Option<&mut Fingerprint>,
    visit: &mut dyn FnMut(String, String),
) {
    let layout = Layout::PerNamespace;
    let mut open: Option<(String, ListWriter<Vec<u8>>)> = None;
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap_or_default();
    render_objects(inventory, &mut |place, object| {
        if let Some(digest) = digest.as_deref_mut() {
            digest.add(place, &object);
        }
        let Some(file) = place.file(layout) else {
            return;
        };
        if let Place::Document(_) = place {
            return visit(file, pretty(&object));
        }
        if open.as_ref().is_some_and(|(name, _)| *name != file)
            && let Some((name, list)) = open.take()
        {
            let done = list.finish(&name, inventory).unwrap_or_default();
            visit(name, text(done));
        }
        let (_, list) =
            open.get_or_insert_with(|| (file.to_string(), ListWriter::new(Vec::new(), layout)));
        list.push(&object);
    });
    if let Some((name, list)) = open {
        // Writes to memory do not fail.
        let done = list.finish(&name, inventory).unwrap_or_default();
        visit(name, text(done));
    }
    trail_files(inventory, &mut |name, text| visit(name, text));
}

/// The CloudTrail readings as files: evidence, not cluster state (written, but not part of the
/// fingerprint).
pub(super) fn trail_files(inventory: &Inventory, visit: &mut dyn FnMut(String, String)) {
    for (region, document) in inventory.trail.documents() {
        visit(layout::trail_file(&region), pretty(&document));
    }
}

/// A whole document as its file's text, as `aws` prints it.
pub(super) fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// A Kubernetes list file written item by item into `out`: the same text as `serde_json`'s
/// pretty printing of `{"apiVersion": "v1", "items": [...], "kind": KIND, "metadata": {}}`,
/// except, where the layout says so, each item compact on a line of its own.
pub(super) struct ListWriter<W> {
    out: W,
    /// The first item's kind.
    kind: Option<String>,
    items: usize,
    one_a_line: bool,
    /// The first write error: the rest are skipped, and `finish` reports it.
    failed: Option<std::io::Error>,
}

impl<W: std::io::Write> ListWriter<W> {
    pub(super) fn new(out: W, layout: Layout) -> ListWriter<W> {
        let mut list = ListWriter {
            out,
            kind: None,
            items: 0,
            one_a_line: layout.items_one_a_line(),
            failed: None,
        };
        list.write(|out| out.write_all(b"{\n  \"apiVersion\": \"v1\",\n  \"items\": "));
        list
    }

    /// Appends a list item (a null is none: the list of a kind seen only empty). A write error
    /// is kept for [`finish`](Self::finish) to return.
    pub(super) fn push(&mut self, item: &Value) {
        self.push_as(item, None);
    }

    /// [`push`](Self::push) of an item whose compact JSON the caller has already written, which
    /// a layout of [`Layout::items_one_a_line`] writes as it is.
    pub(super) fn push_compact(&mut self, item: &Value, compact: &[u8]) {
        self.push_as(item, Some(compact));
    }

    fn push_as(&mut self, item: &Value, compact: Option<&[u8]>) {
        if item.is_null() {
            return;
        }
        if self.kind.is_none() {
            self.kind = item["kind"].as_str().map(str::to_string);
        }
        let separator: &[u8] = if self.items == 0 { b"[\n" } else { b",\n" };
        self.items += 1;
        let one_a_line = self.one_a_line;
        self.write(|out| {
            out.write_all(separator)?;
            if one_a_line {
                out.write_all(b"    ")?;
                return match compact {
                    Some(text) => out.write_all(text),
                    None => serde_json::to_writer(&mut *out, item).map_err(std::io::Error::from),
                };
            }
            let text = serde_json::to_string_pretty(item).map_err(std::io::Error::from)?;
            for (index, line) in text.lines().enumerate() {
                if index > 0 {
                    out.write_all(b"\n")?;
                }
                out.write_all(b"    ")?;
                out.write_all(line.as_bytes())?;
            }
            Ok(())
        });
    }

    /// Ends the list file `file` and gives back its sink, or the first error writing to it. An
    /// empty list's kind comes from its file name, in the capitalisation kubectl uses (one of the
    /// inventory's kinds seen).
    pub(super) fn finish(mut self, file: &str, inventory: &Inventory) -> std::io::Result<W> {
        let stem = layout::kubernetes_file_stem(file).unwrap_or_default();
        let kind = self
            .kind
            .take()
            .map(|k| format!("{k}List"))
            .unwrap_or_else(|| {
                inventory
                    .kinds_seen
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(stem))
                    .map(|k| format!("{k}List"))
                    .unwrap_or_else(|| "List".into())
            });
        let kind = serde_json::to_string(&kind).unwrap_or_default();
        let items: &[u8] = if self.items == 0 { b"[]" } else { b"\n  ]" };
        self.write(|out| {
            out.write_all(items)?;
            write!(out, ",\n  \"kind\": {kind},\n  \"metadata\": {{}}\n}}\n")
        });
        self.failed.map_or(Ok(self.out), Err)
    }

    fn write(&mut self, write: impl FnOnce(&mut W) -> std::io::Result<()>) {
        if self.failed.is_none() {
            self.failed = write(&mut self.out).err();
        }
    }
}
