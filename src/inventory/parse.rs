//! Parsing snapshot files into documents: JSON and YAML (a UTF-8 byte-order mark accepted, YAML
//! merge keys honoured), with errors that name the file, the object and the field path.
//!
//! Documents are parsed straight into their type (the fast path every file takes); only a
//! document that fails is parsed again, generically and with its path tracked, to say why.

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::snapshot::InventoryError;

/// One top-level document of a file.
pub enum Document<T> {
    Object(T),
    /// Valid JSON or YAML that is not an object (a top-level array, string, number): not a
    /// snapshot document, so the file is ignored with a warning, as other unknown files are.
    NotAnObject(&'static str),
}

const BOM: char = '\u{feff}';

/// The text without a leading UTF-8 byte-order mark (some editors and PowerShell write one).
fn without_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// Whether `bytes` start with a UTF-8 byte-order mark.
pub fn starts_with_bom(bytes: &[u8]) -> bool {
    bytes.starts_with(BOM.encode_utf8(&mut [0; 3]).as_bytes())
}

/// Parses a JSON file holding one document.
pub fn json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Document<T>, InventoryError> {
    let bytes = if starts_with_bom(bytes) {
        &bytes[BOM.len_utf8()..]
    } else {
        bytes
    };
    match serde_json::from_slice(bytes) {
        Ok(document) => Ok(Document::Object(document)),
        Err(_) => explain_json::<T>(path, bytes, None),
    }
}

/// Why `bytes` (a whole file, or the item `item` of a streamed list) do not parse as `T`: a
/// syntax error with its position, a document that is not an object, or the object and field
/// whose value has the wrong type.
pub fn explain_json<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    item: Option<Item>,
) -> Result<Document<T>, InventoryError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let (line, column) = item.map_or((e.line(), e.column()), |i| i.position(&e));
        InventoryError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: plain(&e.to_string(), ""),
            source: e.into(),
        }
    })?;
    if let Some(kind) = not_an_object(&value) {
        return Ok(Document::NotAnObject(kind));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(document) => return Ok(Document::Object(document)),
        Err(error) => error,
    };
    let field = error.path().to_string();
    let inner = error.into_inner();
    let (line, column) = item.map_or((inner.line(), inner.column()), |i| i.position(&inner));
    let (object, field) = match item {
        Some(item) => (
            describe(&value, None).unwrap_or_else(|| format!("item {}", item.index)),
            format!("items[{}].{field}", item.index),
        ),
        None => (describe_field(&value, &field), field),
    };
    Err(InventoryError::Type {
        path: path.to_path_buf(),
        line,
        column,
        object,
        field,
        message: plain(&inner.to_string(), ""),
        source: inner.into(),
    })
}

/// Where a streamed list's item starts in its file, to turn positions in the item into
/// positions in the file.
#[derive(Debug, Clone, Copy)]
pub struct Item {
    /// The item's index in the list's `items`.
    pub index: usize,
    pub line: usize,
    pub column: usize,
}

impl Item {
    fn position(self, error: &serde_json::Error) -> (usize, usize) {
        let column = if error.line() == 1 {
            (self.column + error.column()).saturating_sub(1)
        } else {
            error.column()
        };
        ((self.line + error.line()).saturating_sub(1), column)
    }
}

/// Parses a YAML file: every document of it, empty ones left out.
pub fn yaml<T: DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<Vec<Document<T>>, InventoryError> {
    let text = without_bom(text);
    // Merge keys need the generic form (the typed one ignores `<<` as an unknown field); only a
    // file that may hold one pays for it.
    let merges = text.contains("<<");
    let mut documents = Vec::new();
    for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let parsed = if merges {
            merged_yaml(path, document)?
        } else {
            match Option::<T>::deserialize(document) {
                Ok(parsed) => parsed.map(Document::Object),
                Err(error) => Some(explain_yaml(path, text, index, error)?),
            }
        };
        documents.extend(parsed);
    }
    Ok(documents)
}

fn yaml_position(error: &yaml_serde::Error) -> (usize, usize) {
    error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0))
}

fn yaml_syntax(path: &Path, error: yaml_serde::Error) -> InventoryError {
    let (line, column) = yaml_position(&error);
    InventoryError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: plain(&error.to_string(), ""),
        source: error.into(),
    }
}

/// A document parsed generically, its merge keys applied, then read as `T`.
fn merged_yaml<T: DeserializeOwned>(
    path: &Path,
    document: yaml_serde::Deserializer<'_>,
) -> Result<Option<Document<T>>, InventoryError> {
    let mut value = yaml_serde::Value::deserialize(document).map_err(|e| yaml_syntax(path, e))?;
    apply_merges(&mut value).map_err(|e| InventoryError::Invalid {
        path: path.to_path_buf(),
        message: format!(
            "YAML merge key `<<`: {e}; a merge key takes a mapping or a list of mappings"
        ),
        source: Some(Box::new(e)),
    })?;
    if value.is_null() {
        return Ok(None);
    }
    if let Some(kind) = yaml_not_an_object(&value) {
        return Ok(Some(Document::NotAnObject(kind)));
    }
    let generic = serde_json::to_value(&value).unwrap_or(Value::Null);
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(document) => Ok(Some(Document::Object(document))),
        Err(error) => {
            let field = error.path().to_string();
            let inner = error.into_inner();
            Err(InventoryError::Type {
                path: path.to_path_buf(),
                line: 0,
                column: 0,
                object: describe_field(&generic, &field),
                message: plain(&inner.to_string(), &field),
                field,
                source: inner.into(),
            })
        }
    }
}

/// Applies `<<` merge keys until none is left: a merged mapping may itself hold one (chained
/// anchors), which one pass of [`yaml_serde::Value::apply_merge`] leaves in place.
fn apply_merges(value: &mut yaml_serde::Value) -> Result<(), yaml_serde::Error> {
    fn has_merge_key(value: &yaml_serde::Value) -> bool {
        match value {
            yaml_serde::Value::Mapping(mapping) => mapping
                .iter()
                .any(|(k, v)| k.as_str() == Some("<<") || has_merge_key(v)),
            yaml_serde::Value::Sequence(sequence) => sequence.iter().any(has_merge_key),
            yaml_serde::Value::Tagged(tagged) => has_merge_key(&tagged.value),
            _ => false,
        }
    }
    // Each pass resolves one level of chaining; nesting is bounded by the parser's depth limit.
    while has_merge_key(value) {
        value.apply_merge()?;
    }
    Ok(())
}

/// Why document `index` of `text` did not parse as `T` (`error` says where).
fn explain_yaml<T>(
    path: &Path,
    text: &str,
    index: usize,
    error: yaml_serde::Error,
) -> Result<Document<T>, InventoryError> {
    let document = yaml_serde::Deserializer::from_str(text).nth(index);
    let value = match document.map(yaml_serde::Value::deserialize) {
        Some(Ok(value)) => value,
        Some(Err(syntax)) => return Err(yaml_syntax(path, syntax)),
        None => return Err(yaml_syntax(path, error)),
    };
    if let Some(kind) = yaml_not_an_object(&value) {
        return Ok(Document::NotAnObject(kind));
    }
    // Only to describe the object: a mapping with keys JSON cannot hold is "the document".
    let generic = serde_json::to_value(&value).unwrap_or(Value::Null);
    let field = yaml_field(&error);
    let (line, column) = yaml_position(&error);
    Err(InventoryError::Type {
        path: path.to_path_buf(),
        line,
        column,
        object: describe_field(&generic, &field),
        message: plain(&error.to_string(), &field),
        field,
        source: error.into(),
    })
}

/// The field path `yaml_serde` puts before its message (`spec.template: invalid type…`).
fn yaml_field(error: &yaml_serde::Error) -> String {
    let message = error.to_string();
    match message.split_once(": ") {
        Some((field, _)) if !field.contains(' ') => field.to_string(),
        _ => ".".to_string(),
    }
}

/// What a document that is not an object is, for the warning; `None` for an object.
fn not_an_object(value: &Value) -> Option<&'static str> {
    match value {
        Value::Object(_) => None,
        Value::Array(_) => Some("a list"),
        Value::String(_) => Some("a string"),
        Value::Number(_) => Some("a number"),
        Value::Bool(_) => Some("a boolean"),
        Value::Null => Some("null"),
    }
}

/// [`not_an_object`] for a YAML document.
fn yaml_not_an_object(value: &yaml_serde::Value) -> Option<&'static str> {
    use yaml_serde::Value as Yaml;
    match value {
        Yaml::Mapping(_) => None,
        Yaml::Sequence(_) => Some("a list"),
        Yaml::String(_) => Some("a string"),
        Yaml::Number(_) => Some("a number"),
        Yaml::Bool(_) => Some("a boolean"),
        Yaml::Null => Some("null"),
        Yaml::Tagged(tagged) => yaml_not_an_object(&tagged.value),
    }
}

/// The object a field path leads into, in words: the list item or top-level entry it starts
/// with (`items[3]`, `RoleDetailList[2]`, `Role`) when that names an object, else the document.
fn describe_field(document: &Value, field: &str) -> String {
    let first = field.split('.').next().unwrap_or_default();
    let (key, index) = match first.split_once('[') {
        Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
        None => (first, None),
    };
    let list_kind = document["kind"]
        .as_str()
        .and_then(|k| k.strip_suffix("List"))
        .filter(|k| !k.is_empty());
    let entry = match (key, index) {
        (_, Some(index)) => describe(&document[key][index], list_kind),
        ("Role", None) => describe(&document[key], None),
        ("cluster", None) => document[key]["name"]
            .as_str()
            .map(|name| format!("cluster {name}")),
        _ => None,
    };
    entry
        .or_else(|| describe(document, None))
        .unwrap_or_else(|| "the document".to_string())
}

/// An object in words (`Deployment payments/api`, `role app`), if it carries a name.
fn describe(node: &Value, list_kind: Option<&str>) -> Option<String> {
    let name = node["metadata"]["name"].as_str();
    let kind = node["kind"]
        .as_str()
        .filter(|k| !k.is_empty())
        .or(list_kind);
    let qualified = |name: &str| match node["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    };
    match (kind, name) {
        (Some(kind), Some(name)) => Some(format!("{kind} {}", qualified(name))),
        (Some(kind), None) => Some(format!("{kind} without a name")),
        (None, Some(name)) => Some(format!("object {}", qualified(name))),
        (None, None) => [("RoleName", "role"), ("PolicyName", "policy")]
            .iter()
            .find_map(|(key, what)| node[*key].as_str().map(|n| format!("{what} {n}"))),
    }
}

/// A parser's message in the user's terms: without the position (the error shows it), the field
/// path (shown beside it) and the tool's internal type names (`expected struct RawSpec`).
fn plain(message: &str, field: &str) -> String {
    let message = message
        .strip_prefix(&format!("{field}: "))
        .unwrap_or(message);
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    let internal = regex::Regex::new(r"expected struct \w+").expect("a valid regexp");
    internal
        .replace_all(message, "expected an object (a mapping)")
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lose_positions_paths_and_internal_type_names() {
        assert_eq!(
            plain(
                "spec.template: invalid type: string \"x\", expected struct PodTemplate at line 3 column 5",
                "spec.template"
            ),
            "invalid type: string \"x\", expected an object (a mapping)"
        );
        assert_eq!(plain("EOF while parsing", ""), "EOF while parsing");
    }

    #[test]
    fn objects_are_described_by_kind_namespace_and_name() {
        let list = serde_json::json!({"kind": "PodList", "items": [
            {"metadata": {"name": "a", "namespace": "ns"}}]});
        assert_eq!(describe_field(&list, "items[0].spec"), "Pod ns/a");
        let details = serde_json::json!({"RoleDetailList": [{"RoleName": "app"}]});
        assert_eq!(
            describe_field(&details, "RoleDetailList[0].Path"),
            "role app"
        );
        assert_eq!(
            describe_field(&serde_json::json!({"x": 1}), "x"),
            "the document"
        );
    }
}
