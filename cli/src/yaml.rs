//! YAML as the CLI writes it (`merge`, `config`): a serializer's value in block style, and
//! comments above the keys they explain. Nothing from the input reaches the output except
//! through this:
//!
//! - a string is a plain scalar only when every YAML reader (YAML 1.1 as kubectl's and Istio's
//!   Go readers, 1.2) reads it back as that same string: ASCII letters, digits and `._/@+=-`
//!   (`:` and single spaces inside), starting with a letter or `/`, and no word a reader takes
//!   for a boolean or null (`yes`, `off`, `null`...); any other string is double-quoted, JSON's
//!   escapes, every unsafe character (`text::is_unsafe`) escaped, so no line break, `---` or `#`
//!   in a value can start a line of its own;
//! - a comment is wrapped and escaped (`text::wrap`), every line starting with `# `, and goes
//!   above the first key of its name: it can neither end inside a value nor create or hide a key.

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

use crate::text::{json_string, wrap};

/// `value` as one YAML document (no `---`), each comment above the first key named `key` (in the
/// order the keys are written), at that key's indentation. A comment whose key is not written is
/// an error: it would be lost.
pub fn document<T: Serialize + ?Sized>(value: &T, comments: &[(&str, String)]) -> Result<String, String> {
    document_with_blocks(value, comments, &[])
}

/// `document`, with the multi-line strings under the keys `blocks` (text the CLI made, such as
/// an Envoy configuration's JSON, never the input's) as literal block scalars (`|`), one line of
/// the string a line of YAML, where they hold nothing to escape.
pub fn document_with_blocks<T: Serialize + ?Sized>(
    value: &T,
    comments: &[(&str, String)],
    blocks: &[&str],
) -> Result<String, String> {
    let value = serde_yaml_ng::to_value(value).map_err(|e| format!("cannot write YAML: {e}"))?;
    let mut writer = Writer {
        out: String::new(),
        comments: comments.iter().map(|(k, c)| (*k, c.as_str(), false)).collect(),
        blocks,
    };
    match &value {
        Value::Mapping(map) if !map.is_empty() => writer.mapping(map, 0)?,
        Value::Sequence(items) if !items.is_empty() => writer.sequence(items, 0)?,
        other => {
            let scalar = writer.inline(other)?;
            writer.out.push_str(&scalar);
            writer.out.push('\n');
        }
    }
    if let Some((key, _, _)) = writer.comments.iter().find(|(_, _, done)| !done) {
        return Err(format!("no key {key:?} for its comment"));
    }
    Ok(writer.out)
}

/// `# ` lines: `text` wrapped within the report's width, escaped.
pub fn comment(text: &str) -> String {
    wrap("# ", "# ", text)
}

struct Writer<'c> {
    out: String,
    /// (key, comment, written)
    comments: Vec<(&'c str, &'c str, bool)>,
    blocks: &'c [&'c str],
}

impl Writer<'_> {
    fn indent(&mut self, width: usize) {
        self.out.extend(std::iter::repeat_n(' ', width));
    }

    /// The comment for `key`, if it has one not written yet, above a line indented `width`.
    fn comment_for(&mut self, key: &Value, width: usize) {
        let Value::String(key) = key else { return };
        if let Some(entry) = self.comments.iter_mut().find(|(k, _, done)| !done && *k == key.as_str()) {
            entry.2 = true;
            let prefix = format!("{}# ", " ".repeat(width));
            let text = entry.1.to_owned();
            self.out.push_str(&wrap(&prefix, &prefix, &text));
        }
    }

    /// A mapping's entries at `width`; the first one's indentation already written when
    /// `first_inline` (a list item's `- `).
    fn entries(&mut self, map: &Mapping, width: usize, first_inline: bool) -> Result<(), String> {
        for (i, (key, value)) in map.iter().enumerate() {
            if i > 0 || !first_inline {
                self.comment_for(key, width);
                self.indent(width);
            }
            let key_text = self.inline(key)?;
            // A key of more than 1024 characters cannot be an implicit key: `? KEY` then `: VALUE`.
            if key_text.len() > 1000 {
                self.out.push_str("? ");
                self.out.push_str(&key_text);
                self.out.push('\n');
                self.indent(width);
                self.out.push(':');
            } else {
                self.out.push_str(&key_text);
                self.out.push(':');
            }
            match value {
                Value::String(text) if self.is_block(key, text) => {
                    self.out.push_str(if text.ends_with('\n') { " |\n" } else { " |-\n" });
                    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
                        if !line.is_empty() {
                            self.indent(width + 2);
                            self.out.push_str(line);
                        }
                        self.out.push('\n');
                    }
                }
                Value::Mapping(inner) if !inner.is_empty() => {
                    self.out.push('\n');
                    self.mapping(inner, width + 2)?;
                }
                Value::Sequence(items) if !items.is_empty() => {
                    self.out.push('\n');
                    self.sequence(items, width)?;
                }
                scalar => {
                    let text = self.inline(scalar)?;
                    self.out.push(' ');
                    self.out.push_str(&text);
                    self.out.push('\n');
                }
            }
        }
        Ok(())
    }

    fn mapping(&mut self, map: &Mapping, width: usize) -> Result<(), String> {
        self.entries(map, width, false)
    }

    /// A sequence's items, `- ` at `width`.
    fn sequence(&mut self, items: &[Value], width: usize) -> Result<(), String> {
        for item in items {
            // A comment on the key written on the `- ` line goes above it.
            if let Some(key) = first_inline_key(item) {
                self.comment_for(key, width);
            }
            self.indent(width);
            self.out.push_str("- ");
            self.item(item, width + 2)?;
        }
        Ok(())
    }

    /// What follows a `- ` whose content is at `width`.
    fn item(&mut self, item: &Value, width: usize) -> Result<(), String> {
        match item {
            Value::Mapping(map) if !map.is_empty() => self.entries(map, width, true),
            Value::Sequence(items) if !items.is_empty() => {
                // `- - a`: the inner list starts on the same line.
                for (i, inner) in items.iter().enumerate() {
                    if i > 0 {
                        if let Some(key) = first_inline_key(inner) {
                            self.comment_for(key, width);
                        }
                        self.indent(width);
                    }
                    self.out.push_str("- ");
                    self.item(inner, width + 2)?;
                }
                Ok(())
            }
            scalar => {
                let text = self.inline(scalar)?;
                self.out.push_str(&text);
                self.out.push('\n');
                Ok(())
            }
        }
    }

    /// Whether `text`, under `key`, is written as a literal block: a key for blocks, more than
    /// one line, nothing to escape, and a first line and an end a block scalar keeps as they are.
    fn is_block(&self, key: &Value, text: &str) -> bool {
        let Value::String(key) = key else { return false };
        self.blocks.contains(&key.as_str())
            && text.contains('\n')
            && !text.starts_with([' ', '\n'])
            && !text.ends_with("\n\n")
            && !text.chars().any(|c| c != '\n' && crate::text::is_unsafe(c))
    }

    /// A scalar, or an empty collection, on one line.
    fn inline(&self, value: &Value) -> Result<String, String> {
        Ok(match value {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => number(n),
            Value::String(s) => scalar(s),
            Value::Sequence(items) if items.is_empty() => "[]".to_owned(),
            Value::Mapping(map) if map.is_empty() => "{}".to_owned(),
            Value::Sequence(_) | Value::Mapping(_) => return Err("a collection as a mapping key".into()),
            Value::Tagged(tagged) => return Err(format!("a tagged value ({})", tagged.tag)),
        })
    }
}

/// The key written on a `- ` line when `item` is a list item: a mapping's first, or that of the
/// first item of a list in it (`- - key: v`).
fn first_inline_key(item: &Value) -> Option<&Value> {
    match item {
        Value::Mapping(map) => map.keys().next(),
        Value::Sequence(items) => first_inline_key(items.first()?),
        _ => None,
    }
}

/// A number every YAML reader reads as that number: a float in digits with a `.` (YAML 1.1
/// reads `1e3` as a string, and `1000` would be an integer).
fn number(n: &serde_yaml_ng::Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        if f.is_nan() {
            return ".nan".into();
        }
        if f.is_infinite() {
            return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
        }
        let text = f.to_string();
        return if text.contains('.') { text } else { text + ".0" };
    }
    n.to_string()
}

/// A string as a scalar: plain when no reader can take it for anything else, else quoted.
pub fn scalar(text: &str) -> String {
    if is_plain(text) {
        text.to_owned()
    } else {
        json_string(text)
    }
}

/// Words YAML 1.1 or 1.2 readers take for a boolean or null in any letter case.
const SPECIAL_WORDS: [&str; 10] = ["y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan"];

fn is_plain(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else { return false };
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'@' | b'+' | b'=' | b'-' | b':' | b' ');
    (first.is_ascii_alphabetic() || first == b'/')
        && bytes.iter().all(|&b| allowed(b))
        && !bytes.ends_with(b":")
        && !bytes.ends_with(b" ")
        && !text.contains(": ")
        && !text.contains("  ")
        && !SPECIAL_WORDS.iter().any(|word| text.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn read_back(text: &str) -> serde_json::Value {
        serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    }

    #[test]
    fn block_style_as_kubectl_writes_it() {
        let value = json!({"apiVersion": "v1", "spec": {"servers": [{"hosts": ["a.example.com", "*.b"], "port": 443}],
            "empty": [], "none": {}, "nested": [[1, 2], []], "off": "off", "sha256": "00ff", "x": null, "f": 1.5}});
        let text = document(&value, &[("servers", "Why.".into()), ("hosts", "Hosts.".into())]).unwrap();
        assert_eq!(
            text,
            "apiVersion: v1\nspec:\n  empty: []\n  f: 1.5\n  nested:\n  - - 1\n    - 2\n  - []\n  none: {}\n  \
             \"off\": \"off\"\n  # Why.\n  servers:\n  # Hosts.\n  - hosts:\n    - a.example.com\n    - \"*.b\"\n    port: 443\n  \
             sha256: \"00ff\"\n  x: null\n"
        );
        assert_eq!(read_back(&text), value);
        assert!(document(&value, &[("missing", "x".into())]).is_err());
    }

    #[test]
    fn a_hostile_string_stays_a_value() {
        let evil = "shared\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n---\n#";
        let value = json!({"credentialName": evil, evil: [evil], "k": "a\u{202e}b\u{1b}[2J\u{85}\u{2028}\u{fffe}"});
        let text = document(&value, &[("credentialName", format!("It is {evil}."))]).unwrap();
        assert_eq!(read_back(&text), value);
        // One document, every comment line a comment, no unsafe character but line ends.
        assert_eq!(serde_yaml_ng::Deserializer::from_str(&text).count(), 1);
        assert!(text.lines().all(|l| !l.starts_with("---") && !l.starts_with("kind:")), "{text}");
        assert!(!text.chars().any(|c| crate::text::is_unsafe(c) && c != '\n'), "{text}");
    }

    #[test]
    fn the_clis_own_multi_line_text_as_a_block() {
        let json = "{\"servers\": [\n  {\"hosts\":[\"a\"]}\n],\n\"mode\":\"dry_run\"}\n";
        let value = json!({"config": {"value": json, "other": json}, "value": "a\n---\n# b"});
        let text = document_with_blocks(&value, &[], &["value"]).unwrap();
        assert!(text.contains("  value: |\n    {\"servers\": [\n      {\"hosts\":[\"a\"]}\n    ],\n"), "{text}");
        assert!(text.contains("  other: \"{"), "{text}");
        assert!(text.contains("value: |-\n  a\n  ---\n  # b\n"), "{text}");
        assert_eq!(read_back(&text), value);
        for odd in [" lead\nx", "x\n\n", "\nx", "x\r\ny", "x\n\u{1b}"] {
            let text = document_with_blocks(&json!({"value": odd}), &[], &["value"]).unwrap();
            assert!(text.starts_with("value: \""), "{odd:?}: {text}");
        }
    }

    #[test]
    fn plain_only_when_unambiguous() {
        for plain in ["a.example.com", "oci://registry.example.com/sni-guard:0.1.0", "/var/lib/x.wasm", "HTTPS", "a b"]
        {
            assert_eq!(scalar(plain), plain);
        }
        for quoted in [
            "",
            "yes",
            "No",
            "ON",
            "null",
            "Null",
            "true",
            "1",
            "0x1F",
            "1e3",
            "12:30",
            "2001-12-14",
            "~",
            "*.a",
            "&a",
            "!t",
            "-a",
            "a:",
            "a: b",
            "a #b",
            " a",
            "a ",
            "a  b",
            "<<",
            "=",
            "é",
            ".inf",
            "@a",
            "%a",
            "'a'",
        ] {
            assert!(scalar(quoted).starts_with('"'), "{quoted:?}");
            assert_eq!(read_back(&format!("k: {}\n", scalar(quoted)))["k"], quoted, "{quoted:?}");
        }
        let long = "k".repeat(2000);
        assert_eq!(read_back(&document(&json!({long.clone(): 1}), &[]).unwrap())[&long], 1);
    }

    fn hostile() -> impl Strategy<Value = String> {
        crate::test_hostile::string(10)
    }

    fn value() -> impl Strategy<Value = serde_json::Value> {
        crate::test_hostile::value(6)
    }

    proptest! {
        // Failures are printed, never written into the source tree.
        #![proptest_config(proptest::test_runner::Config { failure_persistence: None, ..Default::default() })]
        /// Whatever strings the value and the comments hold, the document reads back as the
        /// value: no key created, none hidden, one document.
        #[test]
        fn reads_back_as_written(value in value(), comments in proptest::collection::vec(hostile(), 0..4)) {
            // Comments on keys the value has, so that each is written.
            let mut keys = Vec::new();
            fn collect<'v>(value: &'v serde_json::Value, keys: &mut Vec<&'v str>) {
                match value {
                    serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| { keys.push(k); collect(v, keys) }),
                    serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, keys)),
                    _ => {}
                }
            }
            collect(&value, &mut keys);
            keys.dedup();
            let comments: Vec<(&str, String)> = keys.iter().zip(&comments).map(|(k, c)| (*k, c.clone())).collect();
            // Every key may hold a literal block: what qualifies is written as one.
            let text = document_with_blocks(&value, &comments, &keys).unwrap();
            prop_assert_eq!(serde_yaml_ng::Deserializer::from_str(&text).count(), 1, "{}", text);
            let back: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
            prop_assert_eq!(&back, &value, "{}", text);
            prop_assert!(!text.chars().any(|c| crate::text::is_unsafe(c) && c != '\n'), "{}", text);
        }
    }
}
