//! The rehearsal backend: applies steps to a snapshot directory (the layout
//! [`crate::inventory::snapshot::layout`] defines and `render_files` writes), so a whole
//! migration, failures and rollback included, can be rehearsed offline and then scanned like any
//! snapshot.
//!
//! Each write replaces one file atomically (write, fsync, rename, fsync the directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Backend, BackendError, TrailReading};
use crate::inventory::snapshot::layout;
use crate::plan::{Step, Target, fragment};

pub struct Rehearsal {
    dir: PathBuf,
    files: BTreeMap<String, Value>,
    /// Role ARN → the IAM file that holds it, filled on first IAM access.
    role_files: Option<BTreeMap<String, String>>,
}

impl Rehearsal {
    /// Opens the rehearsal state in `dir`, creating it from `snapshot` (the plan's inventory) the
    /// first time.
    pub fn open(dir: &Path, snapshot: &Path) -> Result<Rehearsal, BackendError> {
        if !dir.exists() {
            create_state(snapshot, dir)?;
        }
        Ok(Rehearsal {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            role_files: None,
        })
    }

    /// Role ARN → the IAM file (relative to the state directory) that holds it, read once.
    fn load_role_index(&mut self) -> Result<(), BackendError> {
        if self.role_files.is_some() {
            return Ok(());
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BackendError::Io { path, source }
        };
        let mut names = Vec::new();
        let iam = self.dir.join(layout::IAM_DIR);
        if iam.is_dir() {
            for account in std::fs::read_dir(&iam).map_err(io(&iam))? {
                let account = account.map_err(io(&iam))?.path();
                if account.is_dir() {
                    for file in std::fs::read_dir(&account).map_err(io(&account))? {
                        let file = file.map_err(io(&account))?.path();
                        if let Ok(relative) = file.strip_prefix(&self.dir) {
                            names.push(relative.to_string_lossy().into_owned());
                        }
                    }
                }
            }
        }
        let mut index = BTreeMap::new();
        for name in names {
            let arns: Vec<String> = self.file(&name)?["RoleDetailList"]
                .as_array()
                .map(|roles| {
                    roles
                        .iter()
                        .filter_map(|r| r["Arn"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            index.extend(arns.into_iter().map(|arn| (arn, name.clone())));
        }
        self.role_files = Some(index);
        Ok(())
    }

    fn locate(&mut self, target: &Target) -> Result<Location, BackendError> {
        self.load_role_index()?;
        locate(target, self.role_files.as_ref().expect("loaded above"))
    }

    /// The path of a state file, proven to be under the state directory.
    fn path(&self, name: &str) -> Result<PathBuf, BackendError> {
        crate::names::join_under(&self.dir, name).map_err(|e| BackendError::State {
            path: self.dir.clone(),
            message: e.to_string(),
        })
    }

    fn file(&mut self, name: &str) -> Result<&mut Value, BackendError> {
        if !self.files.contains_key(name) {
            let path = self.path(name)?;
            let value = if path.exists() {
                let text = std::fs::read_to_string(&path).map_err(|source| BackendError::Io {
                    path: path.clone(),
                    source,
                })?;
                serde_json::from_str(&text).map_err(|e| BackendError::State {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            } else {
                Value::Null
            };
            self.files.insert(name.to_string(), value);
        }
        Ok(self.files.get_mut(name).expect("inserted above"))
    }

    fn save(&mut self, name: &str) -> Result<(), BackendError> {
        let path = self.path(name)?;
        let mut text =
            serde_json::to_string_pretty(&self.files[name]).expect("JSON values serialize");
        text.push('\n');
        atomic_write(&path, &text)?;
        crate::fault::durable_point();
        Ok(())
    }
}

/// Which file holds a target, and how to find it there.
enum Location {
    /// An item of a Kubernetes list file.
    Object {
        file: String,
        object: ListItem,
    },
    Role {
        file: String,
        arn: String,
    },
    Inline {
        file: String,
        arn: String,
        policy: String,
    },
    Provider {
        arn: String,
    },
}

/// A Kubernetes object, as an item of a list file.
struct ListItem {
    kind: String,
    namespace: Option<String>,
    name: String,
}

impl ListItem {
    fn is(&self, item: &Value) -> bool {
        item["kind"] == self.kind.as_str()
            && item["metadata"]["name"] == self.name.as_str()
            && item["metadata"]["namespace"].as_str() == self.namespace.as_deref()
    }

    /// Its index in `list`'s items.
    fn find(&self, list: &Value) -> Option<usize> {
        list["items"]
            .as_array()?
            .iter()
            .position(|item| self.is(item))
    }
}

/// Stands for the file of a role the state does not hold: reading it finds nothing.
const MISSING_ROLE: &str = "iam/missing-role.json";

/// Where a target is kept. Its kind goes through the fixed set the tool knows and its namespace
/// must be a namespace name, so no target names a file outside the state directory.
fn locate(
    target: &Target,
    role_files: &BTreeMap<String, String>,
) -> Result<Location, BackendError> {
    let kube = |kind: &str, namespace: Option<&str>, name: &str| {
        let refused = |message: String| BackendError::Target {
            target: target.to_string(),
            message,
        };
        let file = layout::kubernetes_file(layout::Layout::PerNamespace, namespace, kind)
            .ok_or_else(|| refused(format!("the tool does not write {kind:?} objects")))?;
        if let Some(namespace) = namespace {
            crate::names::namespace(namespace).map_err(|e| refused(e.to_string()))?;
        }
        Ok(Location::Object {
            file,
            object: ListItem {
                kind: kind.to_string(),
                namespace: namespace.map(str::to_string),
                name: name.to_string(),
            },
        })
    };
    Ok(match target {
        Target::ServiceAccount { namespace, name } => {
            kube("ServiceAccount", Some(namespace), name)?
        }
        Target::RbacBinding {
            kind,
            namespace,
            name,
        } => kube(kind, namespace.as_deref(), name)?,
        Target::Workload {
            namespace,
            kind,
            name,
        } => kube(kind.as_str(), Some(namespace), name)?,
        Target::Role { arn, .. } => Location::Role {
            file: role_files
                .get(arn.as_str())
                .cloned()
                .unwrap_or_else(|| MISSING_ROLE.into()),
            arn: arn.to_string(),
        },
        Target::InlinePolicy {
            role_arn,
            policy_name,
            ..
        } => Location::Inline {
            file: role_files
                .get(role_arn.as_str())
                .cloned()
                .unwrap_or_else(|| MISSING_ROLE.into()),
            arn: role_arn.to_string(),
            policy: policy_name.clone(),
        },
        Target::OidcProvider { arn, .. } => Location::Provider { arn: arn.clone() },
    })
}

impl Backend for Rehearsal {
    fn describe(&self) -> String {
        format!("the rehearsal snapshot {}", self.dir.display())
    }

    /// The trail recorded in the state (`cloudtrail/`, `lookup-events` documents), as of the end
    /// of its readings, and the state's pods: the evidence a rehearsal judges decommission by.
    fn trail(
        &mut self,
        regions: &[String],
        _start: i64,
        _roles: &[crate::iam::arn::RoleArn],
    ) -> Result<TrailReading, BackendError> {
        let state = crate::inventory::snapshot::load_dir(&self.dir, &crate::progress::Silent)
            .map_err(|source| BackendError::Snapshot {
                doing: "reading the rehearsal's trail",
                source: Box::new(source),
            })?;
        Ok(TrailReading {
            as_of: state
                .trail
                .reached(regions)
                .unwrap_or_else(crate::time::now),
            trail: state.trail,
            pods: crate::evidence::Pods::of(&state.pods),
        })
    }

    fn read(&mut self, step: &Step) -> Result<Value, BackendError> {
        let paths = fragment::paths(&step.before.value(), &step.after.value());
        let location = self.locate(&step.target)?;
        Ok(match location {
            Location::Object { file, object } => {
                let list = self.file(&file)?;
                match object.find(list) {
                    Some(index) => fragment::project(&list["items"][index], &paths),
                    None => Value::Null,
                }
            }
            Location::Role { file, arn } => {
                let details = self.file(&file)?;
                find_role(details, &arn)
                    .map(|i| details["RoleDetailList"][i]["AssumeRolePolicyDocument"].clone())
                    .unwrap_or(Value::Null)
            }
            Location::Inline { file, arn, policy } => {
                let details = self.file(&file)?;
                find_role(details, &arn)
                    .and_then(|i| {
                        find_inline(&details["RoleDetailList"][i], &policy).map(|p| {
                            details["RoleDetailList"][i]["RolePolicyList"][p]["PolicyDocument"]
                                .clone()
                        })
                    })
                    .unwrap_or(Value::Null)
            }
            Location::Provider { arn } => {
                let list = self.file(layout::OIDC_PROVIDERS_FILE)?;
                let entries = list["OpenIDConnectProviderList"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                match entries.into_iter().find(|e| e["Arn"] == arn.as_str()) {
                    Some(entry) => {
                        json!({"Url": entry["Url"], "ClientIDList": entry["ClientIDList"]})
                    }
                    None => Value::Null,
                }
            }
        })
    }

    fn write(&mut self, step: &Step, from: &Value, to: &Value) -> Result<(), BackendError> {
        let missing = |what: &str| BackendError::Target {
            target: step.target.to_string(),
            message: format!("{what} not found in the rehearsal state"),
        };
        let location = self.locate(&step.target)?;
        let file = match location {
            Location::Object { file, object } => {
                let list = self.file(&file)?;
                if list.is_null() {
                    *list = json!({"apiVersion": "v1", "kind": format!("{}List", object.kind), "metadata": {}, "items": []});
                }
                let items = list["items"]
                    .as_array_mut()
                    .ok_or_else(|| missing("items"))?;
                let index = items.iter().position(|item| object.is(item));
                match (index, to.is_null(), from.is_null()) {
                    (Some(i), true, _) => {
                        items.remove(i);
                    }
                    (None, false, true) => items.push(to.clone()),
                    (Some(i), false, _) => fragment::transition(&mut items[i], from, to),
                    (None, _, _) => return Err(missing("object")),
                }
                file
            }
            Location::Role { file, arn } => {
                let details = self.file(&file)?;
                let index = find_role(details, &arn).ok_or_else(|| missing("role"))?;
                details["RoleDetailList"][index]["AssumeRolePolicyDocument"] = to.clone();
                file
            }
            Location::Inline { file, arn, policy } => {
                let details = self.file(&file)?;
                let index = find_role(details, &arn).ok_or_else(|| missing("role"))?;
                let role = &mut details["RoleDetailList"][index];
                let position = find_inline(role, &policy);
                let policies = role["RolePolicyList"]
                    .as_array_mut()
                    .ok_or_else(|| missing("RolePolicyList"))?;
                match (position, to.is_null()) {
                    (Some(p), true) => {
                        policies.remove(p);
                    }
                    (Some(p), false) => policies[p]["PolicyDocument"] = to.clone(),
                    (None, false) => {
                        policies.push(json!({"PolicyName": policy, "PolicyDocument": to}))
                    }
                    (None, true) => {}
                }
                file
            }
            Location::Provider { arn } => {
                let list = self.file(layout::OIDC_PROVIDERS_FILE)?;
                if list.is_null() {
                    *list = json!({"OpenIDConnectProviderList": []});
                }
                let entries = list["OpenIDConnectProviderList"]
                    .as_array_mut()
                    .ok_or_else(|| missing("provider list"))?;
                entries.retain(|e| e["Arn"] != arn.as_str());
                if !to.is_null() {
                    entries.push(
                        json!({"Arn": arn, "Url": to["Url"], "ClientIDList": to["ClientIDList"]}),
                    );
                }
                layout::OIDC_PROVIDERS_FILE.to_string()
            }
        };
        self.save(&file)
    }
}

fn find_role(details: &Value, arn: &str) -> Option<usize> {
    details["RoleDetailList"]
        .as_array()?
        .iter()
        .position(|r| r["Arn"] == arn)
}

fn find_inline(role: &Value, policy: &str) -> Option<usize> {
    role["RolePolicyList"]
        .as_array()?
        .iter()
        .position(|p| p["PolicyName"] == policy)
}

fn atomic_write(path: &Path, text: &str) -> Result<(), BackendError> {
    use std::io::Write;
    let io = |source| BackendError::Io {
        path: path.to_path_buf(),
        source,
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    crate::private::create_dir_all(parent).map_err(io)?;
    let temporary = path.with_extension("json.tmp");
    let mut file = crate::private::create(&temporary).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// Writes the rehearsal state `to`: the plan's snapshot `from` (of any layout, as `plan` wrote
/// it), read and written again in [`layout::Layout::PerNamespace`], whose small files each
/// rehearsed write replaces. A symbolic link in the snapshot is refused, not followed: it could
/// bring in a file from outside the tree, or loop.
fn create_state(from: &Path, to: &Path) -> Result<(), BackendError> {
    refuse_links(from)?;
    let snapshot_error = |doing| {
        move |source| BackendError::Snapshot {
            doing,
            source: Box::new(source),
        }
    };
    let inventory = crate::inventory::snapshot::load_dir(from, &crate::progress::Silent).map_err(
        snapshot_error("the rehearsal was not created: reading the plan's snapshot"),
    )?;
    // Written beside it and renamed, so a crash never leaves a half-written state.
    let staging = to.with_extension("staging");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackendError::Io { path, source }
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    crate::inventory::snapshot::write_dir(&inventory, &staging, layout::Layout::PerNamespace)
        .map_err(snapshot_error(
            "the rehearsal was not created: writing its state",
        ))?;
    std::fs::rename(&staging, to).map_err(io(to))
}

/// Refuses a tree with a symbolic link anywhere in it (a plan's snapshot holds only the
/// directories and files `plan` wrote).
fn refuse_links(dir: &Path) -> Result<(), BackendError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackendError::Io { path, source }
    };
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(io(&current))? {
            let entry = entry.map_err(io(&current))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_symlink() {
                return Err(BackendError::State {
                    path,
                    message: "is a symbolic link; a plan's snapshot holds only the directories and files `plan` wrote, so the rehearsal was not created (remove the link)".into(),
                });
            }
            if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Regression (issue 12): the copy followed links, out of the tree (and round a loop).
    #[test]
    fn the_snapshot_copy_refuses_symbolic_links() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("snapshot");
        std::fs::create_dir_all(snapshot.join("kubernetes")).unwrap();
        std::fs::write(snapshot.join("kubernetes/pods.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret.json"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.json"), snapshot.join("x.json"))
            .unwrap();
        let rehearsal = dir.path().join("rehearsal");
        let error = Rehearsal::open(&rehearsal, &snapshot)
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("x.json: is a symbolic link"),
            "{error}"
        );
        assert!(!rehearsal.exists());
        std::fs::remove_file(snapshot.join("x.json")).unwrap();
        std::os::unix::fs::symlink("..", snapshot.join("kubernetes/loop")).unwrap();
        assert!(Rehearsal::open(&rehearsal, &snapshot).is_err());
        assert!(!rehearsal.exists());
    }
}
