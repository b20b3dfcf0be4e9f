//! Fragments: the parts of an object a step touches, as nested JSON at the object's real paths.
//!
//! A fragment's leaves are its non-object values; an empty object stands for "no keys here". Two
//! states are compared by their leaves only, and a step changes an object by setting the leaves of
//! one fragment and removing the leaves the other has and it lacks.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Leaf path → value.
pub type Leaves = BTreeMap<Vec<String>, Value>;

pub fn leaves(fragment: &Value) -> Leaves {
    let mut out = Leaves::new();
    collect(fragment, &mut Vec::new(), &mut out);
    out
}

fn collect(value: &Value, path: &mut Vec<String>, out: &mut Leaves) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(key.clone());
                collect(child, path, out);
                path.pop();
            }
        }
        Value::Null if path.is_empty() => {}
        other => {
            out.insert(path.clone(), other.clone());
        }
    }
}

/// `object` seen through the leaf paths of `shape` (the union of a step's before and after):
/// the fragment of the values present there.
pub fn project(object: &Value, paths: &[Vec<String>]) -> Value {
    let mut out = Value::Object(Map::new());
    for path in paths {
        if let Some(value) = get(object, path) {
            set(&mut out, path, value.clone());
        }
    }
    out
}

/// Whether two fragments have the same leaves.
pub fn same(a: &Value, b: &Value) -> bool {
    leaves(a) == leaves(b)
}

/// Whether an object's fragment is in the state a step's side describes; `null` on either hand
/// is an absent object, the same only as another `null`.
pub fn same_state(observed: &Value, side: &Value) -> bool {
    if observed.is_null() || side.is_null() {
        observed.is_null() && side.is_null()
    } else {
        same(observed, side)
    }
}

/// Moves `object` from fragment `from` to fragment `to`: leaves of `to` are set, leaves only in
/// `from` are removed. Everything else in the object is left as it is.
pub fn transition(object: &mut Value, from: &Value, to: &Value) {
    let target = leaves(to);
    for path in leaves(from).keys().filter(|p| !target.contains_key(*p)) {
        remove(object, path);
    }
    for (path, value) in target {
        set(object, &path, value);
    }
}

/// The JSON merge patch (RFC 7386) that makes the same move as [`transition`] on an object held
/// elsewhere (the API server): `to`'s leaves set, leaves only in `from` removed (`null`).
pub fn merge_patch(from: &Value, to: &Value) -> Value {
    let target = leaves(to);
    let mut patch = Value::Object(Map::new());
    for path in leaves(from).into_keys() {
        if !target.contains_key(&path) {
            set(&mut patch, &path, Value::Null);
        }
    }
    for (path, value) in target {
        set(&mut patch, &path, value);
    }
    patch
}

/// The leaf paths of both sides of a step.
pub fn paths(before: &Value, after: &Value) -> Vec<Vec<String>> {
    let mut all: Vec<Vec<String>> = leaves(before)
        .into_keys()
        .chain(leaves(after).into_keys())
        .collect();
    all.sort();
    all.dedup();
    all
}

fn get<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |current, key| current.as_object()?.get(key))
}

fn set(value: &mut Value, path: &[String], leaf: Value) {
    let mut current = value;
    for key in &path[..path.len().saturating_sub(1)] {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        current = current
            .as_object_mut()
            .expect("made an object above")
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(last) = path.last() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        current
            .as_object_mut()
            .expect("made an object above")
            .insert(last.clone(), leaf);
    }
}

/// Removes a leaf and then any object left empty above it, as the Kubernetes API omits empty
/// maps: a rollback that removes the only annotation leaves no `annotations: {}` behind.
fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(parent) = parents
        .iter()
        .try_fold(&mut *value, |current, key| current.get_mut(key))
    else {
        return;
    };
    let Some(map) = parent.as_object_mut() else {
        return;
    };
    map.remove(last);
    if map.is_empty() && !parents.is_empty() {
        remove(value, parents);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transition_sets_and_removes_only_the_touched_leaves() {
        let mut object = json!({"metadata": {"name": "a", "annotations": {"keep": "1", "iam.amazonaws.com/role": "x"}}, "spec": {"n": 1}});
        let before = json!({"metadata": {"annotations": {"iam.amazonaws.com/role": "x"}}});
        let after = json!({"metadata": {"annotations": {}}});
        let paths = paths(&before, &after);
        assert!(same(&project(&object, &paths), &before));
        transition(&mut object, &before, &after);
        assert_eq!(
            object,
            json!({"metadata": {"name": "a", "annotations": {"keep": "1"}}, "spec": {"n": 1}})
        );
        assert!(same(&project(&object, &paths), &after));
        transition(&mut object, &after, &before);
        assert_eq!(
            object["metadata"]["annotations"]["iam.amazonaws.com/role"],
            "x"
        );
    }

    #[test]
    fn the_merge_patch_sets_the_new_fields_and_removes_the_old_ones() {
        let from = json!({"spec": {"template": {"spec": {"serviceAccount": "default", "serviceAccountName": "default"}}}});
        let to = json!({"spec": {"template": {"spec": {"serviceAccountName": "web-reader"}}}});
        assert_eq!(
            merge_patch(&from, &to),
            json!({"spec": {"template": {"spec": {"serviceAccount": null, "serviceAccountName": "web-reader"}}}})
        );
        // Rolling back is the same computation the other way round.
        assert_eq!(
            merge_patch(&to, &from),
            json!({"spec": {"template": {"spec": {"serviceAccount": "default", "serviceAccountName": "default"}}}})
        );
    }

    #[test]
    fn an_annotation_removal_patches_only_that_key() {
        let from = json!({"metadata": {"annotations": {"iam.amazonaws.com/role": "web"}}});
        let to = json!({"metadata": {"annotations": {}}});
        assert_eq!(
            merge_patch(&from, &to),
            json!({"metadata": {"annotations": {"iam.amazonaws.com/role": null}}})
        );
    }

    #[test]
    fn empty_objects_are_not_leaves() {
        assert!(same(&json!({"a": {}}), &json!({})));
        assert!(!same(&json!({"a": {"b": 1}}), &json!({"a": {}})));
        assert_eq!(leaves(&Value::Null).len(), 0);
    }

    #[test]
    fn projection_of_a_changed_object_matches_neither_side() {
        let object =
            json!({"spec": {"template": {"spec": {"serviceAccountName": "someone-else"}}}});
        let before = json!({"spec": {"template": {"spec": {"serviceAccountName": "default"}}}});
        let after = json!({"spec": {"template": {"spec": {"serviceAccountName": "default-api"}}}});
        let seen = project(&object, &paths(&before, &after));
        assert!(!same(&seen, &before) && !same(&seen, &after));
    }
}
