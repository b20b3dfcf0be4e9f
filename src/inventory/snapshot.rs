//! The snapshot collector: a directory of `kubectl get -o json|yaml` and `aws` CLI outputs,
//! recognised by their content, never by their file names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::aws::{EksCluster, ManagedPolicyDetail, OidcProviderEntry, RoleDetail};
use super::kube::{
    LocalObjectReference, ObjectMeta, RawSpec, RoleRef, Subject, Webhook, null_default,
};
use super::parse;
use super::{
    Cluster, Inventory, LoadWarning, ManagedPolicy, Namespace, Pod, RbacBinding, Role,
    ServiceAccount, Workload, WorkloadKey, WorkloadKind,
};
use crate::iam::arn::{Arn, RoleArn};
use crate::json::CompactJson;

/// Why a snapshot could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value of the wrong type: the file, the object and the field path within the document.
    #[error(
        "{path}{}: {object}, field {field}: {message}; the field must be as `kubectl get -o json|yaml` or the AWS CLI prints it",
        position(*line, *column)
    )]
    Type {
        path: PathBuf,
        /// 0 when the position is unknown (a YAML document read through its merge keys).
        line: usize,
        column: usize,
        object: String,
        field: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A directory that leads back to one it is inside (a symbolic link to an ancestor): read,
    /// it would never end.
    #[error(
        "{path} leads back to {ancestor}, a directory it is inside, so the snapshot tree has a loop; remove the link (nothing was read)"
    )]
    Loop { path: PathBuf, ancestor: PathBuf },
    /// One object twice, with different content: which one the cluster holds cannot be told.
    #[error(
        "{object} is in both {first} and {second}, with different content; keep the copy from the capture to plan from and remove the other (identical copies are fine)"
    )]
    Conflict {
        object: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "{path} holds no .json, .yaml or .yml files; see docs/snapshot.md for the commands that make a snapshot"
    )]
    Empty { path: PathBuf },
}

/// `:line:column`, or nothing when the position is unknown (0).
fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

/// One top-level document of a snapshot file. The Kubernetes fields and the AWS CLI's top-level
/// keys never collide, so a single parse both recognises and reads any supported file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawObject {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: ObjectMeta,
    // Boxed: most objects lack most of these, and a pod list holds many RawObjects at once.
    spec: Option<Box<RawSpec>>,
    status: Option<RawStatus>,
    #[serde(deserialize_with = "null_default")]
    data: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    subjects: Vec<Subject>,
    role_ref: Option<Box<RoleRef>>,
    #[serde(deserialize_with = "null_default")]
    webhooks: Vec<Webhook>,
    #[serde(deserialize_with = "null_default")]
    image_pull_secrets: Vec<LocalObjectReference>,
    automount_service_account_token: Option<bool>,
    items: Option<Vec<RawObject>>,
    /// `aws iam get-account-authorization-details`.
    #[serde(rename = "RoleDetailList")]
    role_detail_list: Option<Vec<RoleDetail>>,
    #[serde(rename = "Policies")]
    policies: Option<Vec<ManagedPolicyDetail>>,
    /// `aws iam get-role`.
    #[serde(rename = "Role")]
    role: Option<Box<RoleDetail>>,
    /// `aws iam list-open-id-connect-providers`.
    #[serde(rename = "OpenIDConnectProviderList")]
    oidc_providers: Option<Vec<OidcProviderEntry>>,
    /// `aws eks describe-cluster`.
    cluster: Option<Box<EksCluster>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawStatus {
    phase: Option<String>,
}

/// A named input: a path on disk, or a file of the embedded demo.
pub struct SnapshotFile<'a> {
    pub path: PathBuf,
    pub text: std::borrow::Cow<'a, str>,
}

/// Lists every `.json`, `.yaml` and `.yml` file under `dir`, sorted so loading is deterministic.
/// Symbolic links are followed, but a directory reached twice is read once, and one that leads
/// back to a directory it is inside (a loop) is an error naming it.
pub fn snapshot_files(dir: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InventoryError::Io { path, source }
    };
    let root = directory_id(dir).map_err(io(dir))?;
    let mut visited = std::collections::HashSet::from([root.clone()]);
    // Each directory to read, with the directories it is inside (identity and path).
    let mut pending = vec![(dir.to_path_buf(), vec![(root, dir.to_path_buf())])];
    let mut files = Vec::new();
    while let Some((current, ancestors)) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(io(&current))? {
            let path = entry.map_err(io(&current))?.path();
            if path.is_dir() {
                let id = directory_id(&path).map_err(io(&path))?;
                if let Some((_, ancestor)) = ancestors.iter().find(|(a, _)| *a == id) {
                    return Err(InventoryError::Loop {
                        path,
                        ancestor: ancestor.clone(),
                    });
                }
                if visited.insert(id.clone()) {
                    let mut inside = ancestors.clone();
                    inside.push((id, path.clone()));
                    pending.push((path, inside));
                }
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(InventoryError::Empty {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// What makes a directory the same directory, however it is reached: device and inode on Unix,
/// the canonical path elsewhere.
#[derive(Clone, PartialEq, Eq, Hash)]
struct DirectoryId(#[cfg(unix)] (u64, u64), #[cfg(not(unix))] PathBuf);

fn directory_id(path: &Path) -> std::io::Result<DirectoryId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path)?;
        Ok(DirectoryId((metadata.dev(), metadata.ino())))
    }
    #[cfg(not(unix))]
    {
        Ok(DirectoryId(std::fs::canonicalize(path)?))
    }
}

/// Loads a snapshot directory. `progress` is told of each file read (a bar on a terminal).
pub fn load_dir(
    dir: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Inventory, InventoryError> {
    let paths = snapshot_files(dir)?;
    progress.set_length(paths.len() as u64);
    let mut builder = Builder::default();
    for path in paths {
        let io = |source| InventoryError::Io {
            path: path.clone(),
            source,
        };
        let size = std::fs::metadata(&path).map_err(io)?.len();
        let streamed = size >= STREAM_BYTES
            && path.extension().is_some_and(|e| e == "json")
            && read_streaming(&mut builder, &path)?;
        if !streamed {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            builder.add_file(&SnapshotFile {
                path,
                text: text.into(),
            })?;
        }
        progress.inc(1);
    }
    Ok(builder.finish())
}

/// JSON files from this size on are read as a stream, their items parsed in parallel.
const STREAM_BYTES: u64 = 8 << 20;

/// Reads a large JSON list without holding the file in memory, adding each item as soon as it
/// is parsed; `false` when the file is not a list, to be read whole instead.
fn read_streaming(builder: &mut Builder, path: &Path) -> Result<bool, InventoryError> {
    use super::stream::{StreamError, split_items};
    use std::io::BufRead;
    let io = |source| InventoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    if parse::starts_with_bom(file.fill_buf().map_err(io)?) {
        file.consume(3);
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let parse: fn(&[u8]) -> Result<RawObject, serde_json::Error> =
        |bytes| serde_json::from_slice(bytes);
    // Items without a kind (typed lists from the API) wait for the list's kind, which follows them.
    let mut kindless = Vec::new();
    let mut delivered = 0usize;
    let mut invalid = None;
    let mut sink = |item: RawObject| {
        delivered += 1;
        match item.kind.clone() {
            Some(kind) if !kind.is_empty() => {
                if let Err(e) = builder.add_kubernetes(path, item, &kind, None) {
                    invalid.get_or_insert(e);
                }
            }
            _ => kindless.push(item),
        }
    };
    let result = split_items(file, parse, workers, &mut sink);
    if let Some(error) = invalid {
        return Err(error);
    }
    let skeleton = match result {
        Ok(skeleton) => skeleton,
        Err(StreamError::Unsupported) if delivered == 0 => return Ok(false),
        Err(StreamError::Unsupported) => {
            return Err(InventoryError::Invalid {
                path: path.to_path_buf(),
                message: "truncated or malformed JSON list".into(),
            });
        }
        Err(StreamError::Io(source)) => return Err(io(source)),
        Err(StreamError::Json {
            item,
            index,
            line,
            column,
        }) => {
            let at = parse::Item {
                index,
                line,
                column,
            };
            return Err(
                match parse::explain_json::<RawObject>(path, &item, Some(at)) {
                    Err(error) => error,
                    // Read again, the item parses: only a parser that disagrees with itself gets here.
                    Ok(_) => InventoryError::Invalid {
                        path: path.to_path_buf(),
                        message: format!("items[{index}] (line {line}) could not be read"),
                    },
                },
            );
        }
    };
    let mut document = match parse::json::<RawObject>(path, &skeleton)? {
        parse::Document::Object(document) => document,
        parse::Document::NotAnObject(what) => {
            builder.not_an_object(path, what);
            return Ok(true);
        }
    };
    // A single large object has no items to put back (it was read whole as the skeleton).
    if document.items.is_some() {
        document.items = Some(kindless);
    }
    builder.add_document(path, document)?;
    Ok(true)
}

/// Loads in-memory files (the embedded demo uses this).
pub fn load_files(files: &[SnapshotFile<'_>]) -> Result<Inventory, InventoryError> {
    extend(Inventory::default(), files)
}

/// Loads successive readings of a live cluster (list pages): where an object was read twice,
/// with different content, the later reading is the newer state and wins.
pub fn load_readings(files: &[SnapshotFile<'_>]) -> Result<Inventory, InventoryError> {
    let mut builder = Builder::default();
    builder.origins.later_wins = true;
    builder.add_files(files)
}

/// Adds in-memory files to an inventory (the live collector reads IAM after Kubernetes).
pub fn extend(
    inventory: Inventory,
    files: &[SnapshotFile<'_>],
) -> Result<Inventory, InventoryError> {
    let builder = Builder {
        inventory,
        origins: Origins::default(),
    };
    builder.add_files(files)
}

#[derive(Default)]
struct Builder {
    inventory: Inventory,
    origins: Origins,
}

/// Which file each object kept so far came from, to tell a second copy of an object (fine when
/// identical) from a conflicting one (an error naming both files). Keyed by a hash of the
/// object's identity: a few bytes an object, at a hundred thousand pods.
#[derive(Default)]
struct Origins {
    /// A different copy replaces the earlier one instead of stopping: for successive readings
    /// of a live cluster (a list restarted after its continue token expired reads newer states).
    later_wins: bool,
    files: Vec<PathBuf>,
    objects: std::collections::HashMap<u64, Origin>,
}

#[derive(Clone, Copy)]
struct Origin {
    file: usize,
    /// Where a list-held object (a pod, an RBAC binding) is in its list.
    slot: usize,
}

/// An object's identity: kind, namespace (none for cluster-scoped objects and IAM) and name.
struct ObjectId<'a> {
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

impl std::fmt::Display for ObjectId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

impl Origins {
    /// Records that `path` holds `id` (at `slot` of its list); returns where a copy of it was
    /// read before, if one was.
    fn claim(&mut self, path: &Path, id: &ObjectId<'_>, slot: usize) -> Option<Origin> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        (id.kind, id.namespace, id.name).hash(&mut hasher);
        if self.files.last().is_none_or(|last| last != path) {
            self.files.push(path.to_path_buf());
        }
        let origin = Origin {
            file: self.files.len() - 1,
            slot,
        };
        match self.objects.entry(hasher.finish()) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(origin);
                None
            }
        }
    }

    fn conflict(&self, first: Origin, path: &Path, id: &ObjectId<'_>) -> InventoryError {
        InventoryError::Conflict {
            object: id.to_string(),
            first: self.files[first.file].clone(),
            second: path.to_path_buf(),
        }
    }

    /// Keeps `value` under `key` unless a copy is there already: an identical one is fine, a
    /// different one is a conflict.
    fn keep<K: Ord, V: PartialEq>(
        &mut self,
        path: &Path,
        id: &ObjectId<'_>,
        map: &mut BTreeMap<K, V>,
        key: K,
        value: V,
    ) -> Result<(), InventoryError> {
        match (self.claim(path, id, 0), map.get(&key)) {
            (Some(first), Some(existing)) if *existing != value && !self.later_wins => {
                Err(self.conflict(first, path, id))
            }
            _ => {
                map.insert(key, value);
                Ok(())
            }
        }
    }

    /// [`Origins::keep`] for objects kept in a list; `same` tells whether a listed object is
    /// the one `id` names (the hash could, in theory, collide).
    fn keep_listed<V: PartialEq>(
        &mut self,
        path: &Path,
        id: &ObjectId<'_>,
        list: &mut Vec<V>,
        value: V,
        same: impl Fn(&V) -> bool,
    ) -> Result<(), InventoryError> {
        if let Some(first) = self.claim(path, id, list.len())
            && let Some(existing) = list.get_mut(first.slot).filter(|e| same(e))
        {
            if *existing == value || self.later_wins {
                *existing = value;
                return Ok(());
            }
            return Err(self.conflict(first, path, id));
        }
        list.push(value);
        Ok(())
    }
}

impl Builder {
    fn add_files(mut self, files: &[SnapshotFile<'_>]) -> Result<Inventory, InventoryError> {
        for file in files {
            self.add_file(file)?;
        }
        Ok(self.finish())
    }

    fn add_file(&mut self, file: &SnapshotFile<'_>) -> Result<(), InventoryError> {
        let path = &file.path;
        let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
        let parsed = if is_json {
            vec![parse::json(path, file.text.as_bytes())?]
        } else {
            parse::yaml(path, &file.text)?
        };
        if parsed.is_empty() {
            self.warn(path, "empty file");
        }
        for document in parsed {
            match document {
                parse::Document::Object(document) => self.add_document(path, document)?,
                parse::Document::NotAnObject(what) => self.not_an_object(path, what),
            }
        }
        Ok(())
    }

    fn not_an_object(&mut self, path: &Path, what: &str) {
        self.warn(
            path,
            format!("{what}, not an object: not a Kubernetes object or list, nor an `aws iam`/`aws eks` output this tool reads; ignored"),
        );
    }

    fn warn(&mut self, path: &Path, message: impl Into<String>) {
        self.inventory.warnings.push(LoadWarning {
            file: path.to_path_buf(),
            message: message.into(),
        });
    }

    fn add_document(&mut self, path: &Path, mut document: RawObject) -> Result<(), InventoryError> {
        let mut recognised = false;
        if let Some(roles) = document.role_detail_list.take() {
            recognised = true;
            let policies = document.policies.take().unwrap_or_default();
            let account = self.add_authorization_details(path, roles, policies)?;
            if account.is_none() {
                self.warn(
                    path,
                    "authorization details list no roles; its account is unknown",
                );
            }
        }
        if let Some(role) = document.role.take() {
            recognised = true;
            self.add_role(path, *role, false)?;
        }
        if let Some(providers) = document.oidc_providers.take() {
            recognised = true;
            let known = self.inventory.iam.oidc_providers.get_or_insert_default();
            known.extend(providers.into_iter().map(|p| p.arn));
        }
        if let Some(cluster) = document.cluster.take() {
            recognised = true;
            self.add_cluster(path, *cluster)?;
        }
        if document.api_version.is_some() || document.kind.is_some() {
            recognised = true;
            let kind = document.kind.clone().unwrap_or_default();
            self.add_kubernetes(path, document, &kind, None)?;
        }
        if !recognised {
            self.warn(
                path,
                "not a Kubernetes object or list, nor an `aws iam`/`aws eks` output this tool reads; ignored",
            );
        }
        Ok(())
    }

    fn add_cluster(&mut self, path: &Path, cluster: EksCluster) -> Result<(), InventoryError> {
        let arn = Arn::parse(&cluster.arn).map_err(|e| InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!("cluster.arn: {e}"),
        })?;
        self.inventory.cluster = Some(Cluster {
            name: cluster.name,
            account: arn.account.clone(),
            region: arn.region.clone(),
            partition: arn.partition.clone(),
            arn: cluster.arn,
            version: cluster.version,
            platform_version: cluster.platform_version,
            oidc_issuer: cluster.identity.and_then(|i| i.oidc).and_then(|o| o.issuer),
        });
        Ok(())
    }

    /// Returns the account the details belong to, read from the role ARNs.
    fn add_authorization_details(
        &mut self,
        path: &Path,
        roles: Vec<RoleDetail>,
        policies: Vec<ManagedPolicyDetail>,
    ) -> Result<Option<String>, InventoryError> {
        let mut account = None;
        for role in roles {
            account = Some(self.add_role(path, role, true)?);
        }
        for policy in policies {
            let document = policy.default_document().cloned();
            self.inventory.iam.policies.insert(
                policy.arn.clone(),
                ManagedPolicy {
                    arn: policy.arn,
                    name: policy.policy_name,
                    document,
                },
            );
        }
        if let Some(account) = &account {
            self.inventory.iam.accounts.insert(account.clone());
        }
        Ok(account)
    }

    fn add_role(
        &mut self,
        path: &Path,
        role: RoleDetail,
        complete: bool,
    ) -> Result<String, InventoryError> {
        let arn = RoleArn::parse(&role.arn).map_err(|e| InventoryError::Invalid {
            path: path.to_path_buf(),
            message: format!("role {:?}, field Arn: {e}", role.role_name),
        })?;
        let account = arn.account().to_string();
        let entry = Role {
            arn: role.arn.clone(),
            name: role.role_name,
            path: role.path,
            trust: CompactJson::new(&role.assume_role_policy_document.0),
            inline: role
                .role_policy_list
                .into_iter()
                .map(|p| (p.policy_name, CompactJson::new(&p.policy_document.0)))
                .collect(),
            attached_policies: role.attached_managed_policies,
            instance_profiles: role
                .instance_profile_list
                .into_iter()
                .map(|p| p.arn)
                .collect(),
            permissions_known: complete,
        };
        // Two readings of one kind (two authorization-details files, two `get-role` files) must
        // agree; a `get-role` file must not hide the permissions an authorization-details file
        // supplied.
        let id = ObjectId {
            kind: if complete { "role" } else { "role (get-role)" },
            namespace: None,
            name: &role.arn,
        };
        let first = self.origins.claim(path, &id, 0);
        let existing = self.inventory.iam.roles.get(&role.arn);
        if let (Some(first), Some(existing)) = (first, existing)
            && existing.permissions_known == complete
            && *existing != entry
            && !self.origins.later_wins
        {
            return Err(self.origins.conflict(first, path, &id));
        }
        let keep_existing = !complete && existing.is_some_and(|r| r.permissions_known);
        if !keep_existing {
            self.inventory.iam.insert_role(entry);
        }
        Ok(account)
    }

    /// Adds one object (or every item of a list). A name that Kubernetes itself would refuse,
    /// and that could reach a file path or a URL (`../../x`), stops loading, naming file and object.
    fn add_kubernetes(
        &mut self,
        path: &Path,
        object: RawObject,
        kind: &str,
        list_kind: Option<&str>,
    ) -> Result<(), InventoryError> {
        // Typed lists (`PodList`) may omit `kind` on their items; it follows from the list's kind.
        let kind = if kind.is_empty() {
            list_kind.unwrap_or_default()
        } else {
            kind
        };
        if let Some(items) = object.items {
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
            if let Some(item_kind) = item_kind {
                self.inventory.kinds_seen.insert(item_kind.to_string());
            }
            for item in items {
                let own_kind = item.kind.clone().unwrap_or_default();
                self.add_kubernetes(path, item, &own_kind, item_kind)?;
            }
            return Ok(());
        }
        self.inventory.kinds_seen.insert(kind.to_string());
        let metadata = object.metadata;
        let namespace = metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        check_names(path, kind, &namespace, &metadata.name)?;
        let name = metadata.name.clone();
        let id = ObjectId {
            kind,
            namespace: Some(&namespace),
            name: &name,
        };
        let cluster_id = ObjectId {
            namespace: None,
            ..id
        };
        let (inventory, origins) = (&mut self.inventory, &mut self.origins);
        if let Some(workload_kind) = WorkloadKind::from_kind(kind) {
            let spec = object.spec.unwrap_or_default();
            if workload_kind == WorkloadKind::Pod {
                // A pod is read for its annotations, owner and account; its labels, identity and
                // version (and its namespace, kept once beside it) only cost memory, which
                // matters at a hundred thousand pods.
                let metadata = ObjectMeta {
                    namespace: None,
                    uid: None,
                    resource_version: None,
                    labels: Default::default(),
                    ..metadata
                };
                let pod = Pod {
                    metadata,
                    namespace: namespace.clone(),
                    // A pod is read for its account, network and user; its containers' commands,
                    // env and images are its controller's business.
                    spec: spec.into_pod_spec().pod_essentials(),
                    phase: object.status.and_then(|s| s.phase),
                };
                return origins.keep_listed(path, &id, &mut inventory.pods, pod, |p| {
                    p.namespace == namespace && p.metadata.name == name
                });
            }
            let mut spec = spec;
            let update = spec.take_update_policy();
            let template = match workload_kind {
                WorkloadKind::CronJob => spec.job_template.map(|j| j.spec.template),
                _ => spec.template.map(|t| *t),
            };
            let Some(template) = template else {
                self.warn(
                    path,
                    format!(
                        "{kind} {namespace}/{}: no pod template; ignored",
                        metadata.name
                    ),
                );
                return Ok(());
            };
            let key = WorkloadKey {
                namespace: namespace.clone(),
                kind: workload_kind,
                name: metadata.name.clone(),
            };
            // Commands and env are read only to configure a legacy agent; everyone else's are
            // dropped, which matters at a hundred thousand workloads. So are the identity and
            // version of the workload: nothing reads them.
            let metadata = ObjectMeta {
                uid: None,
                resource_version: None,
                ..metadata
            };
            let mut template = template;
            for container in template
                .spec
                .containers
                .iter_mut()
                .chain(template.spec.init_containers.iter_mut())
            {
                if !container
                    .image
                    .as_deref()
                    .is_some_and(crate::legacy::is_agent_image)
                {
                    container.command = Vec::new();
                    container.args = Vec::new();
                    container.env = Vec::new();
                } else {
                    redact_agent_container(container);
                }
            }
            let workload = Workload {
                key: key.clone(),
                metadata,
                template,
                replicas: spec.replicas,
                update,
            };
            return origins.keep(path, &id, &mut inventory.workloads, key, workload);
        }
        match kind {
            "Namespace" => {
                let namespace = Namespace { metadata };
                origins.keep(
                    path,
                    &cluster_id,
                    &mut inventory.namespaces,
                    name.clone(),
                    namespace,
                )?;
            }
            "ServiceAccount" => {
                let account = ServiceAccount {
                    metadata,
                    namespace: namespace.clone(),
                    image_pull_secrets: object.image_pull_secrets,
                    automount_service_account_token: object.automount_service_account_token,
                };
                let key = (namespace.clone(), name.clone());
                origins.keep(path, &id, &mut inventory.service_accounts, key, account)?;
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let Some(role_ref) = object.role_ref else {
                    self.warn(
                        path,
                        format!("{kind} {}: no roleRef; ignored", metadata.name),
                    );
                    return Ok(());
                };
                let namespaced = kind == "RoleBinding";
                let binding = RbacBinding {
                    kind: kind.to_string(),
                    namespace: namespaced.then(|| namespace.clone()),
                    metadata,
                    role_ref: *role_ref,
                    subjects: object.subjects,
                };
                let id = if namespaced { id } else { cluster_id };
                origins.keep_listed(path, &id, &mut inventory.rbac_bindings, binding, |b| {
                    b.kind == kind
                        && b.namespace.as_deref() == id.namespace
                        && b.metadata.name == name
                })?;
            }
            "ConfigMap" if namespace == "kube-system" && name == "aws-auth" => {
                let map_roles = object.data.get("mapRoles").cloned();
                match origins.claim(path, &id, 0) {
                    Some(first)
                        if inventory.aws_auth_map_roles != map_roles && !origins.later_wins =>
                    {
                        return Err(origins.conflict(first, path, &id));
                    }
                    _ => inventory.aws_auth_map_roles = map_roles,
                }
            }
            "MutatingWebhookConfiguration" => {
                let hooks = object.webhooks.into_iter().map(|w| w.name).collect();
                origins.keep(
                    path,
                    &cluster_id,
                    &mut inventory.mutating_webhooks,
                    name.clone(),
                    hooks,
                )?;
            }
            // Other kinds (Nodes, Services, other ConfigMaps...) are valid input the scan does not need.
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self) -> Inventory {
        keep_read_annotations(&mut self.inventory);
        // A ReplicaSet under a Deployment (a Job under a CronJob) is reported as its parent and
        // its template is never read: the parent's is. Dropping it halves what Deployments cost.
        let inventory = &mut self.inventory;
        let owned: Vec<WorkloadKey> = inventory
            .workloads
            .values()
            .filter_map(|w| {
                let parent = w.key.kind.parent_kind()?;
                let owner = w
                    .metadata
                    .owner_references
                    .iter()
                    .find(|o| o.kind == parent.as_str())?;
                let parent_key = WorkloadKey {
                    namespace: w.key.namespace.clone(),
                    kind: parent,
                    name: owner.name.clone(),
                };
                inventory
                    .workloads
                    .contains_key(&parent_key)
                    .then(|| w.key.clone())
            })
            .collect();
        for key in owned {
            if let Some(workload) = inventory.workloads.get_mut(&key) {
                workload.template = Default::default();
            }
        }
        // In name order, as scans and fingerprints need (a second copy of an object was kept
        // only when it differed, which stopped loading).
        self.inventory.pods.sort_by(|a, b| {
            (&a.namespace, &a.metadata.name).cmp(&(&b.namespace, &b.metadata.name))
        });
        self.inventory.rbac_bindings.sort_by(|a, b| {
            (&a.kind, &a.namespace, &a.metadata.name).cmp(&(
                &b.kind,
                &b.namespace,
                &b.metadata.name,
            ))
        });
        self.inventory
    }
}

/// The names of an object the loader keeps, checked as Kubernetes checks them: a namespace is a
/// DNS-1123 label; a service account, workload or pod name a DNS-1123 subdomain; an RBAC binding's
/// name a path segment. Kinds the tool does not read are not checked (nor kept).
fn check_names(path: &Path, kind: &str, namespace: &str, name: &str) -> Result<(), InventoryError> {
    use crate::names;
    let checked = match kind {
        "Namespace" => names::namespace(name).map(|_| ()),
        "ClusterRoleBinding" | "MutatingWebhookConfiguration" => {
            names::path_segment("name", name).map(|_| ())
        }
        "RoleBinding" => names::namespace(namespace)
            .and_then(|_| names::path_segment("name", name))
            .map(|_| ()),
        "ServiceAccount" | "ConfigMap" => names::namespace(namespace)
            .and_then(|_| names::subdomain("name", name))
            .map(|_| ()),
        _ if WorkloadKind::from_kind(kind).is_some() => names::namespace(namespace)
            .and_then(|_| names::subdomain("name", name))
            .map(|_| ()),
        _ => Ok(()),
    };
    checked.map_err(|e| InventoryError::Invalid {
        path: path.to_path_buf(),
        message: format!("{kind} {namespace:?}/{name:?}: {e}; refused, as Kubernetes refuses it"),
    })
}

/// Annotation domains the tool reads: the legacy agents' (`iam.amazonaws.com/`), IRSA's
/// (`eks.amazonaws.com/`), its own, and the owners it must not fight (Helm, Argo CD).
const READ_ANNOTATION_PREFIXES: &[&str] = &[
    "iam.amazonaws.com/",
    "eks.amazonaws.com/",
    "irsa-migrate.io/",
    "meta.helm.sh/",
    "argocd.argoproj.io/",
];

/// Drops every annotation the tool does not read (`kubectl.kubernetes.io/last-applied-configuration`
/// holds whole manifests, literal env values included): what the scan reads, snapshots keep,
/// and nothing else. Keys an agent is configured to read (kube2iam `--iam-role-key`…) are kept.
fn keep_read_annotations(inventory: &mut Inventory) {
    use std::collections::BTreeSet;
    let mut configured: BTreeSet<String> = BTreeSet::new();
    for agent in crate::legacy::detect(inventory) {
        configured.insert(agent.role_key.clone());
        configured.insert(agent.external_id_key.clone());
        if let crate::legacy::NamespaceRule::Kube2iamAllowed { key, .. } = &agent.namespace_rule {
            configured.insert(key.clone());
        }
    }
    let keep = |key: &str| {
        READ_ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p)) || configured.contains(key)
    };
    for namespace in inventory.namespaces.values_mut() {
        namespace.metadata.annotations.retain(keep);
    }
    for account in inventory.service_accounts.values_mut() {
        account.metadata.annotations.retain(keep);
    }
    for workload in inventory.workloads.values_mut() {
        workload.metadata.annotations.retain(keep);
        workload.template.metadata.annotations.retain(keep);
    }
    for pod in &mut inventory.pods {
        pod.metadata.annotations.retain(keep);
    }
    for binding in &mut inventory.rbac_bindings {
        binding.metadata.annotations.retain(keep);
    }
}

/// What a kiam or kube2iam container keeps: its command and args (they configure it, so the
/// scan reads them), and only the env entries they refer to (`$(NAME)`). A value that looks like
/// a credential, by its name or its shape, is replaced by `REDACTED`: a snapshot travels.
fn redact_agent_container(container: &mut super::kube::Container) {
    let referenced = |name: &str| {
        let reference = format!("$({name})");
        container
            .command
            .iter()
            .chain(&container.args)
            .any(|a| a.contains(&reference))
    };
    let env: Vec<super::kube::EnvVar> = container
        .env
        .iter()
        .filter(|e| referenced(&e.name))
        .cloned()
        .map(|mut e| {
            if e.value.as_deref().is_some_and(|v| looks_secret(&e.name, v)) {
                e.value = Some(REDACTED.into());
            }
            e
        })
        .collect();
    container.env = env;
    for arg in container
        .command
        .iter_mut()
        .chain(container.args.iter_mut())
    {
        if let Some((flag, value)) = arg.split_once('=')
            && looks_secret(flag, value)
        {
            *arg = format!("{flag}={REDACTED}");
        }
    }
}

const REDACTED: &str = "REDACTED";

/// A name that says secret (`…SECRET…`, `…TOKEN…`, `…PASSWORD…`, an access key), or a value
/// shaped like an AWS access key id.
fn looks_secret(name: &str, value: &str) -> bool {
    let name = name.to_ascii_lowercase().replace(['-', '_'], "");
    let named = [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "accesskey",
        "privatekey",
    ]
    .iter()
    .any(|word| name.contains(word));
    let access_key = value.len() == 20
        && (value.starts_with("AKIA") || value.starts_with("ASIA"))
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    named || access_key
}

/// Roles per rendered IAM file: small files keep each rehearsal write small.
const ROLES_PER_FILE: usize = 50;

/// Visits every object of the inventory in a deterministic order, with the snapshot file it is
/// rendered into and whether it is a list item (Kubernetes) or a whole document (AWS).
///
/// Layout: `kubernetes/<namespace>/<kind>.json` (cluster-scoped objects under `_cluster`, which no
/// namespace can be named), `iam/<account>/roles-<n>.json` (authorization details, 50 roles a
/// file, the account's policies in the first), `iam/role-….json` (roles known only from
/// `get-role`), `iam/oidc-providers.json`, `eks/describe-cluster.json`.
fn render_objects(inventory: &Inventory, visit: &mut dyn FnMut(&str, Value)) {
    use serde_json::json;
    // Kinds go through the fixed set the tool knows; namespaces were checked by the loader (and
    // `write_dir` refuses any path that would leave its directory).
    let kube_file = |namespace: Option<&str>, kind: &str| {
        crate::names::kind_file_stem(kind)
            .map(|stem| format!("kubernetes/{}/{stem}.json", namespace.unwrap_or("_cluster")))
    };
    let mut kinds_rendered = std::collections::BTreeSet::new();
    let mut item = |namespace: Option<&str>, kind: &str, object: Value| {
        kinds_rendered.insert(kind.to_string());
        if let Some(file) = kube_file(namespace, kind) {
            visit(&file, object);
        }
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
            object["status"] = json!({"phase": phase});
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
        if let Some(file) = kube_file(None, kind) {
            visit(&file, Value::Null);
        }
    }

    let iam = &inventory.iam;
    let role_json = |role: &super::Role| {
        json!({"Path": role.path, "RoleName": role.name, "Arn": role.arn, "AssumeRolePolicyDocument": role.trust,
               "RolePolicyList": role.inline.iter().map(|(name, doc)| json!({"PolicyName": name, "PolicyDocument": doc})).collect::<Vec<_>>(),
               "AttachedManagedPolicies": role.attached_policies,
               "InstanceProfileList": role.instance_profiles.iter().map(|arn| json!({"Arn": arn})).collect::<Vec<_>>()})
    };
    for account in &iam.accounts {
        let in_account = |arn: &str| Arn::parse(arn).is_ok_and(|a| &a.account == account);
        let roles: Vec<&super::Role> = iam.roles.values().filter(|r| in_account(&r.arn)).collect();
        for (index, chunk) in roles.chunks(ROLES_PER_FILE).enumerate() {
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
                &format!("iam/{account}/roles-{index:04}.json"),
                json!({"RoleDetailList": roles, "Policies": policies}),
            );
        }
    }
    // Roles known only from `get-role` stay that way, so their account does not become "known".
    for role in iam.roles.values().filter(|r| !r.permissions_known) {
        let in_known_account =
            Arn::parse(&role.arn).is_ok_and(|a| iam.accounts.contains(&a.account));
        if !in_known_account {
            let name = role.arn.replace([':', '/'], "_");
            visit(
                &format!("iam/role-{name}.json"),
                json!({"Role": role_json(role)}),
            );
        }
    }
    if let Some(providers) = &iam.oidc_providers {
        let list: Vec<Value> = providers.iter().map(|arn| json!({"Arn": arn})).collect();
        visit(
            "iam/oidc-providers.json",
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
        visit("eks/describe-cluster.json", json!({"cluster": object}));
    }
}

/// The inventory as snapshot files (`kubectl`/`aws` shapes), sorted by name: what the loader reads
/// back into an equal inventory. Used for a plan's snapshot and rehearsal state.
pub fn render_files(inventory: &Inventory) -> Vec<(String, String)> {
    use serde_json::json;
    let mut lists: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut documents: BTreeMap<String, Value> = BTreeMap::new();
    render_objects(inventory, &mut |file, object| {
        if file.starts_with("kubernetes/") {
            let items = lists.entry(file.to_string()).or_default();
            if !object.is_null() {
                items.push(object);
            }
        } else {
            documents.insert(file.to_string(), object);
        }
    });
    let pretty = |value: &Value| {
        let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
        text.push('\n');
        text
    };
    let mut files: Vec<(String, String)> = lists
        .into_iter()
        .map(|(file, items)| {
            let kind = file
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".json");
            let list_kind = items
                .first()
                .and_then(|i| i["kind"].as_str())
                .map(|k| format!("{k}List"));
            // An empty list's kind comes from its file name, in the capitalisation kubectl uses.
            let list_kind = list_kind.unwrap_or_else(|| {
                inventory
                    .kinds_seen
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(kind))
                    .map(|k| format!("{k}List"))
                    .unwrap_or_else(|| "List".into())
            });
            (
                file,
                pretty(
                    &json!({"apiVersion": "v1", "kind": list_kind, "metadata": {}, "items": items}),
                ),
            )
        })
        .collect();
    files.extend(
        documents
            .iter()
            .map(|(file, value)| (file.clone(), pretty(value))),
    );
    files.sort();
    files
}

/// A digest of the inventory: `sha256:` over its objects in rendering order, each as compact JSON
/// with its file name. The same cluster state gives the same fingerprint, whatever the layout of
/// the snapshot it was read from; nothing the size of the snapshot is held in memory.
pub fn fingerprint(inventory: &Inventory) -> String {
    use sha2::{Digest, Sha256};
    struct Hashing<'h>(&'h mut Sha256);
    impl std::io::Write for Hashing<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = Sha256::new();
    render_objects(inventory, &mut |file, object| {
        hasher.update(file.as_bytes());
        hasher.update([0]);
        let _ = serde_json::to_writer(Hashing(&mut hasher), &object);
        hasher.update([0]);
    });
    format!("sha256:{:x}", hasher.finalize())
}

/// The file every snapshot directory the tool writes carries (ignored by the loader), so that
/// replacing one never removes what the tool did not write.
pub const MARKER: &str = ".irsa-migrate-snapshot";

/// Writes [`render_files`] under `dir`: a new or empty directory, or a snapshot this tool wrote,
/// which is replaced. Any other directory is refused and left as it is. The directory and
/// everything in it are the owner's only (0700, 0600): a snapshot holds the cluster's objects
/// and its IAM policies.
pub fn write_dir(inventory: &Inventory, dir: &Path) -> Result<(), InventoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InventoryError::Io { path, source }
    };
    if dir.exists() {
        if !dir.is_dir() {
            return Err(InventoryError::Invalid {
                path: dir.to_path_buf(),
                message: "not a directory; nothing was written".into(),
            });
        }
        match own_snapshot(dir)? {
            Holds::Nothing => {}
            Holds::Snapshot => std::fs::remove_dir_all(dir).map_err(io(dir))?,
            Holds::Other(entry) => {
                return Err(InventoryError::Invalid {
                    path: dir.to_path_buf(),
                    message: format!(
                        "holds {entry}, so it is not a snapshot irsa-migrate wrote; choose a new or empty directory (nothing was removed or written)"
                    ),
                });
            }
        }
    }
    crate::private::create_dir_all(dir).map_err(io(dir))?;
    let marker = dir.join(MARKER);
    crate::private::write(
        &marker,
        "written by irsa-migrate; replaced whole by the next snapshot written here\n",
    )
    .map_err(io(&marker))?;
    for (name, text) in render_files(inventory) {
        let path = crate::names::join_under(dir, &name).map_err(|e| InventoryError::Invalid {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(parent) = path.parent() {
            crate::private::create_dir_all(parent).map_err(io(parent))?;
        }
        crate::private::write(&path, text).map_err(io(&path))?;
    }
    Ok(())
}

/// What an existing directory holds, as far as replacing it goes.
enum Holds {
    Nothing,
    /// A snapshot the tool wrote: its marker, or (written before there was one) only
    /// `kubernetes/`, `iam/` and `eks/` with `.json` files in them.
    Snapshot,
    /// Something else, named.
    Other(String),
}

fn own_snapshot(dir: &Path) -> Result<Holds, InventoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InventoryError::Io { path, source }
    };
    let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    if entries.is_empty() {
        return Ok(Holds::Nothing);
    }
    let mut pending = Vec::new();
    for entry in &entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        match name.as_str() {
            MARKER if kind.is_file() => {}
            "kubernetes" | "iam" | "eks" if kind.is_dir() => pending.push(entry.path()),
            _ => return Ok(Holds::Other(format!("{name:?}"))),
        }
    }
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(io(&current))? {
            let entry = entry.map_err(io(&current))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                pending.push(path);
            } else if !(kind.is_file() && path.extension().is_some_and(|e| e == "json")) {
                let shown = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                return Ok(Holds::Other(format!("{shown:?}")));
            }
        }
    }
    Ok(Holds::Snapshot)
}
