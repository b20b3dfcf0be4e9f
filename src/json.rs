//! JSON kept as compact text and parsed when used. A large cluster's inventory and plan hold
//! hundreds of thousands of small documents (trust policies, step sides); as `serde_json::Value`
//! trees, whose every map is a B-tree, they cost several times their text.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Held as serde_json's raw JSON, so that it is written as its text, never parsed to be written
/// (plan.json, the plan's digest).
#[derive(Debug, Clone)]
pub struct CompactJson(Box<RawValue>);

impl CompactJson {
    pub fn new(value: &Value) -> CompactJson {
        // Objects are B-tree maps: the text of equal values is equal.
        CompactJson(serde_json::value::to_raw_value(value).expect("a JSON value serializes"))
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(self.as_str()).expect("compact JSON holds the JSON it was made from")
    }

    pub fn is_null(&self) -> bool {
        self.as_str() == "null"
    }

    /// The compact text itself.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Appends the JSON as `serde_json::to_string_pretty` of its value prints it, each line after
    /// the first indented by `depth` more levels (to nest it in a pretty document): re-spaced from
    /// the text, no tree built.
    pub fn write_pretty(&self, depth: usize, out: &mut String) {
        pretty_into(self.as_str(), depth, out);
    }
}

impl PartialEq for CompactJson {
    fn eq(&self, other: &CompactJson) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CompactJson {}

/// Serialized as the JSON it holds, so documents read the same as with a `Value`: verbatim by a
/// compact writer, re-spaced by [`to_writer_pretty`].
impl Serialize for CompactJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CompactJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<CompactJson, D::Error> {
        // Through a value: the text read may be spaced any way, the text held is compact.
        Value::deserialize(deserializer).map(|value| CompactJson::new(&value))
    }
}

/// `serde_json::to_writer_pretty`, with the [`CompactJson`] inside written as pretty as the rest
/// (serde_json's own writer puts raw JSON in as it is, on one line).
pub fn to_writer_pretty<W: std::io::Write, T: Serialize + ?Sized>(
    out: W,
    value: &T,
) -> serde_json::Result<()> {
    let formatter = NestedPretty {
        pretty: serde_json::ser::PrettyFormatter::new(),
        depth: 0,
    };
    value.serialize(&mut serde_json::Serializer::with_formatter(out, formatter))
}

/// serde_json's pretty formatter, counting how deep it is to indent raw JSON by as much.
struct NestedPretty {
    pretty: serde_json::ser::PrettyFormatter<'static>,
    depth: usize,
}

impl serde_json::ser::Formatter for NestedPretty {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.pretty.begin_array(out)
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        self.pretty.end_array(out)
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.pretty.begin_array_value(out, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.pretty.end_array_value(out)
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.pretty.begin_object(out)
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        self.pretty.end_object(out)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.pretty.begin_object_key(out, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        out: &mut W,
    ) -> std::io::Result<()> {
        self.pretty.begin_object_value(out)
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.pretty.end_object_value(out)
    }

    fn write_raw_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        out: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut text = String::with_capacity(fragment.len() * 2);
        pretty_into(fragment, self.depth, &mut text);
        out.write_all(text.as_bytes())
    }
}

/// `text` (compact JSON as serde_json writes it: no whitespace outside strings) re-spaced as its
/// pretty printer would: two spaces a level, `": "` after keys, empty objects and arrays as `{}`
/// and `[]`.
fn pretty_into(text: &str, mut depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    let bytes = text.as_bytes();
    let mut index = 0;
    // Runs of bytes copied as they are: strings, numbers and literals.
    let mut copied = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'"' => {
                index += 1;
                while index < bytes.len() && bytes[index] != b'"' {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
                index += 1;
                continue;
            }
            b'{' | b'[' | b'}' | b']' | b',' | b':' => {}
            _ => {
                index += 1;
                continue;
            }
        }
        out.push_str(&text[copied..index]);
        match byte {
            b'{' | b'[' if matches!(bytes.get(index + 1), Some(b'}' | b']')) => {
                out.push_str(&text[index..index + 2]);
                index += 1;
            }
            b'{' | b'[' => {
                out.push(byte as char);
                depth += 1;
                newline(out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(byte as char);
            }
            b',' => {
                out.push(',');
                newline(out, depth);
            }
            _ => out.push_str(": "),
        }
        index += 1;
        copied = index;
    }
    out.push_str(&text[copied.min(text.len())..]);
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

    #[test]
    fn pretty_text_is_what_serde_json_prints_pretty() {
        let values = [
            json!({"b": [1, {"c": null}, [], {}], "a": "x"}),
            json!({"Statement": [{"Condition": {"StringEquals": {"k:sub": "system:serviceaccount:a:b"}}}], "Version": "2012-10-17"}),
            json!("a \"quoted\" {brace}, [colon]: \\"),
            json!({"\\\"": "\u{1b}", "e": -1.5e300, "t": true}),
            json!([]),
            json!(null),
            json!(12),
        ];
        for value in values {
            let mut pretty = String::new();
            CompactJson::new(&value).write_pretty(0, &mut pretty);
            assert_eq!(pretty, serde_json::to_string_pretty(&value).unwrap());
            let mut nested = String::new();
            CompactJson::new(&value).write_pretty(2, &mut nested);
            let wrapped = serde_json::to_string_pretty(&json!([[value]])).unwrap();
            assert!(wrapped.contains(&nested), "{wrapped}\n{nested}");
        }
    }

    #[test]
    fn documents_holding_compact_json_are_written_as_their_values_are() {
        let value = json!({"steps": [{"after": {"b": [1, {}], "a": "x"}, "id": "s"}], "z": []});
        let held = json!({"steps": [{"after": CompactJson::new(&value["steps"][0]["after"]), "id": "s"}], "z": []});
        let mut pretty = Vec::new();
        to_writer_pretty(&mut pretty, &held).unwrap();
        assert_eq!(
            String::from_utf8(pretty).unwrap(),
            serde_json::to_string_pretty(&value).unwrap()
        );
        #[derive(Serialize)]
        struct Step {
            after: CompactJson,
        }
        let step = Step {
            after: CompactJson::new(&value["steps"][0]["after"]),
        };
        assert_eq!(
            serde_json::to_string(&step).unwrap(),
            serde_json::to_string(&json!({"after": value["steps"][0]["after"]})).unwrap()
        );
        let mut pretty = Vec::new();
        to_writer_pretty(&mut pretty, &step).unwrap();
        assert_eq!(
            String::from_utf8(pretty).unwrap(),
            serde_json::to_string_pretty(&json!({"after": value["steps"][0]["after"]})).unwrap()
        );
    }
}
