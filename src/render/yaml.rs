//! Kubernetes fragments as YAML, written here for the plain shapes a plan's sides have (maps,
//! lists, names, ARNs, booleans and integers) and by `yaml_serde` for anything else, the text the
//! same either way. A fleet's report shows a hundred thousand fragments, and `yaml_serde`'s
//! emitter (a port of libyaml, with its events and analysis of every scalar) was most of the time
//! of a diff.

use serde_json::{Map, Value};

/// `value` as `yaml_serde::to_string` writes it.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    if write(value, &mut out).is_none() {
        return yaml_serde::to_string(value).unwrap_or_default();
    }
    out
}

/// Writes `value` into `out`; `None` (with `out` to be dropped) for what only `yaml_serde` is
/// trusted to write.
fn write(value: &Value, out: &mut String) -> Option<()> {
    write_node(value, At::Top, out)
}

/// Where a node is written: the whole document, a map's value (its key at `indent`), or a list's
/// item (its `-` at `indent`).
#[derive(Clone, Copy)]
enum At {
    Top,
    Key(usize),
    Item(usize),
}

/// One node at `at`: a non-empty map or list in block style on the lines that follow (a map's
/// under a key, indented) or on the item's own line (after `- `), anything else a word after it.
fn write_node(value: &Value, at: At, out: &mut String) -> Option<()> {
    let (opening, map_indent, list_indent, inline) = match at {
        At::Top => ("", 0, 0, false),
        // A list under a key is not indented: its `- ` starts where the key does.
        At::Key(indent) => ("\n", indent + 2, indent, false),
        At::Item(indent) => (" ", indent + 2, indent + 2, true),
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str(opening);
            write_map(map, map_indent, inline, out)
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str(opening);
            write_list(items, list_indent, inline, out)
        }
        _ => {
            if !matches!(at, At::Top) {
                out.push(' ');
            }
            scalar(value, out)?;
            out.push('\n');
            Some(())
        }
    }
}

/// A non-empty map's entries at `indent`; `inline`: its first line's indent is already written
/// (after a list's `- `).
fn write_map(
    map: &Map<String, Value>,
    indent: usize,
    inline: bool,
    out: &mut String,
) -> Option<()> {
    for (index, (key, value)) in map.iter().enumerate() {
        if index > 0 || !inline {
            push_indent(indent, out);
        }
        out.push_str(plain(key)?);
        out.push(':');
        write_node(value, At::Key(indent), out)?;
    }
    Some(())
}

/// A non-empty list's items at `indent`, as [`write_map`]'s entries.
fn write_list(items: &[Value], indent: usize, inline: bool, out: &mut String) -> Option<()> {
    for (index, item) in items.iter().enumerate() {
        if index > 0 || !inline {
            push_indent(indent, out);
        }
        out.push('-');
        write_node(item, At::Item(indent), out)?;
    }
    Some(())
}

fn push_indent(indent: usize, out: &mut String) {
    for _ in 0..indent {
        out.push(' ');
    }
}

/// Writes a scalar (or an empty map or list) as a plain YAML word; `None` for one that may need
/// quotes or another style.
fn scalar(value: &Value, out: &mut String) -> Option<()> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::String(text) => out.push_str(plain(text)?),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        // Integers only: a float's text is yaml_serde's to choose.
        Value::Number(number) if number.is_i64() || number.is_u64() => {
            out.push_str(&number.to_string())
        }
        _ => return None,
    }
    Some(())
}

/// `text` when YAML reads it back as this string, plain: a letter first, then letters, digits
/// and `._/-:` (a `:` never last), no word YAML reads as a boolean, null or number, and short
/// enough to be a simple key.
fn plain(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let first_is_letter = bytes.first().is_some_and(u8::is_ascii_alphabetic);
    let rest_is_plain = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-' | b':'));
    let reserved = [
        "true", "false", "null", "y", "n", "yes", "no", "on", "off", "inf", "infinity", "nan",
    ]
    .iter()
    .any(|word| text.eq_ignore_ascii_case(word));
    (first_is_letter && rest_is_plain && !text.ends_with(':') && !reserved && text.len() <= 128)
        .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fragments_are_written_as_yaml_serde_writes_them() {
        let values = [
            json!({"metadata": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/payments-api"}}}),
            json!({"spec": {"template": {"spec": {"serviceAccountName": "default-api"}}}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": false,
                   "imagePullSecrets": [{"name": "registry"}, {"name": "mirror"}],
                   "metadata": {"name": "api", "namespace": "shop", "labels": {}}}),
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "api", "namespace": "shop"}]}),
            json!({"a": [["x", "y"], [], {}], "b": [{"c": {"d": ["e"]}, "f": null}], "g": 3, "h": -4, "i": 1.5}),
            json!({"annotations": {"iam.amazonaws.com/role": null}}),
            json!({"x": "true", "y": "yes", "z": "", "w": "1.0", "v": "a b", "u": "a: b", "t": "x:",
                   "s": "-a", "r": "#a", "q": "Null", "p": "a\nb", "o": "~", "n": "ünï", "m": "0x1f",
                   "l": "Infinity", "k": "'q'", "j": "a".repeat(200), "k8s": "a:b::c/d_e.f-g"}),
            json!({"a".repeat(129): "long key", "b".repeat(128): "key at the limit"}),
            json!(["a", ["b", ["c"]], {"d": "e"}]),
            json!("word"),
            json!({}),
            json!([]),
            json!(null),
            json!(7),
        ];
        for value in values {
            assert_eq!(
                to_string(&value),
                yaml_serde::to_string(&value).unwrap(),
                "{value}"
            );
        }
    }

    #[test]
    fn only_plain_words_are_written_here() {
        assert!(
            write(
                &json!({"a": "arn:aws:iam::1:role/x", "b": [true, {}]}),
                &mut String::new()
            )
            .is_some()
        );
        for value in [
            json!({"a": "yes"}),
            json!(["1"]),
            json!({"a": 1.5}),
            json!({"a b": 1}),
        ] {
            assert!(write(&value, &mut String::new()).is_none(), "{value}");
        }
    }
}
