//! JSON kept as compact text and parsed when used. A large cluster's inventory and plan hold
//! hundreds of thousands of small documents (trust policies, step sides); as `serde_json::Value`
//! trees, whose every map is a B-tree, they cost several times their text.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactJson(Box<str>);

impl CompactJson {
    pub fn new(value: &Value) -> CompactJson {
        // Objects are B-tree maps: the text of equal values is equal.
        CompactJson(value.to_string().into_boxed_str())
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).expect("compact JSON holds the JSON it was made from")
    }

    pub fn is_null(&self) -> bool {
        &*self.0 == "null"
    }
}

/// Serialized as the JSON it holds, so documents read the same as with a `Value`.
impl Serialize for CompactJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CompactJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<CompactJson, D::Error> {
        Value::deserialize(deserializer).map(|value| CompactJson::new(&value))
    }
}

/// `from` merged into `into`, objects key by key, anything else replaced: how a patch's fields
/// land on an object (a `null` is kept as a value, as a strategic-merge patch carries it).
pub fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                merge(into.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (into, from) => *into = from.clone(),
    }
}

/// Writes into a SHA-256 hasher: a document is digested as it is serialized, never held.
pub struct HashWriter<'h>(pub &'h mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_json_round_trips_and_compares_by_value() {
        let value = json!({"b": [1, {"c": null}], "a": "x"});
        let compact = CompactJson::new(&value);
        assert_eq!(compact.value(), value);
        assert_eq!(
            compact,
            CompactJson::new(&json!({"a": "x", "b": [1, {"c": null}]}))
        );
        assert_eq!(serde_json::to_value(&compact).unwrap(), value);
        let back: CompactJson = serde_json::from_value(value).unwrap();
        assert_eq!(back, compact);
        assert!(CompactJson::new(&Value::Null).is_null());
    }
}
