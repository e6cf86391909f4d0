//! Kubernetes manifests as documents: files, directories and standard input read as text, and
//! JSON or (multi-document) YAML parsed into values. What the documents are is `inventory`'s
//! business (and `deployed::read`'s, for what a user applies).
//!
//! The input is untrusted, so the work is bounded before any parser runs: all inputs together
//! hold at most `MAX_INPUT_BYTES`, a text nests at most `MAX_NESTING` levels and holds at most
//! `MAX_VALUES` values (`shape`), a directory is walked without loops (each directory and file
//! once, by device and inode), and YAML aliases cannot make the values outgrow that. A mapping with a key twice is refused,
//! as kubectl refuses it (two manifests run together without `---` would otherwise read as one,
//! the later keys winning).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::shape;
use crate::text::{escape, shown};

/// Bad input: not JSON or YAML, not Gateways, or a Gateway that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// The most text read, all inputs together: `kubectl get` of Gateways, Services and the TLS
/// Secrets of a large cluster is tens of megabytes; the values parsed from it take a few times
/// its size in memory.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// The deepest nesting of collections a text may have, as `shape::measure` estimates it. A
/// Kubernetes object nests about 10 levels, an EnvoyFilter with its matcher about 25; the
/// parsers' own limit is 128.
pub const MAX_NESTING: usize = 100;

/// The most values (keys, items, collections) a text may hold, as `shape::measure` estimates
/// them: the YAML reader takes about 160 bytes for each before handing any over, so this keeps
/// it within a few hundred megabytes. 10,000 Gateway servers and as many TLS Secrets, with
/// kubectl's metadata, are about 500,000.
pub const MAX_VALUES: usize = 2_000_000;

/// Reads files, directories (their `.yaml`, `.yml` and `.json` files, recursively, in name
/// order) and standard input (`-`, or no path at all), and hands `each` every text with the name
/// messages give it. Standard input may be named once; a file reached twice (given twice, or
/// through a symbolic link) is read once.
pub fn read_inputs(
    paths: &[PathBuf],
    mut each: impl FnMut(&str, &str) -> Result<(), InputError>,
) -> Result<(), InputError> {
    let stdin = Path::new("-");
    let paths: Vec<&Path> = if paths.is_empty() { vec![stdin] } else { paths.iter().map(PathBuf::as_path).collect() };
    if paths.iter().filter(|p| **p == stdin).count() > 1 {
        return Err(InputError("standard input (-) given twice".into()));
    }
    let mut reader = Reader { left: MAX_INPUT_BYTES, seen: HashSet::new() };
    for path in paths {
        if path == stdin {
            let text = reader.read(&mut std::io::stdin().lock(), "stdin")?;
            each("stdin", &text)?;
        } else if path.is_dir() {
            let mut files = Vec::new();
            reader.manifest_files(path, &mut files)?;
            if files.is_empty() {
                return Err(InputError(format!("{}: no .yaml, .yml or .json file in this directory", shown(path))));
            }
            for file in files {
                let source = shown(&file);
                let text = reader.read_file(&file, &source)?;
                each(&source, &text)?;
            }
        } else if reader.first_visit(path) {
            let source = shown(path);
            let text = reader.read_file(path, &source)?;
            each(&source, &text)?;
        }
    }
    Ok(())
}

/// What the inputs read so far have used up.
struct Reader {
    /// Bytes still allowed.
    left: u64,
    /// Directories and files already read, by device and inode.
    seen: HashSet<(u64, u64)>,
}

impl Reader {
    /// Whether `path` (its target, for a symbolic link) has not been visited yet; records it.
    fn first_visit(&mut self, path: &Path) -> bool {
        match identity(path) {
            Some(id) => self.seen.insert(id),
            // No identity to compare: visited once, since nothing can lead back to it.
            None => true,
        }
    }

    /// `*.yaml`, `*.yml` and `*.json` under `dir`, in name order so that output is
    /// reproducible. A symbolic link is followed to a directory or file not visited yet, so a
    /// link back up the tree ends the walk there; only regular files are read (not a FIFO that
    /// would wait for a writer).
    fn manifest_files(&mut self, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
        if !self.first_visit(dir) {
            return Ok(());
        }
        let entries =
            fs::read_dir(dir).map_err(|e| InputError(format!("{}: cannot read directory: {e}", shown(dir))))?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let Ok(metadata) = fs::metadata(&path) else { continue };
            if metadata.is_dir() {
                self.manifest_files(&path, out)?;
            } else if metadata.is_file()
                && path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json")
                && self.first_visit(&path)
            {
                out.push(path);
            }
        }
        Ok(())
    }

    fn read_file(&mut self, path: &Path, source: &str) -> Result<String, InputError> {
        let mut file = fs::File::open(path).map_err(|e| InputError(format!("{source}: cannot read: {e}")))?;
        if file.metadata().is_ok_and(|m| m.is_file() && m.len() > self.left) {
            return Err(self.too_much(source));
        }
        self.read(&mut file, source)
    }

    /// Reads `input` to its end, or refuses it once it passes what is left of the limit.
    fn read(&mut self, input: &mut dyn Read, source: &str) -> Result<String, InputError> {
        let mut bytes = Vec::new();
        input
            .take(self.left + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| InputError(format!("{source}: cannot read: {e}")))?;
        if bytes.len() as u64 > self.left {
            return Err(self.too_much(source));
        }
        self.left -= bytes.len() as u64;
        String::from_utf8(bytes).map_err(|_| InputError(format!("{source}: not UTF-8 text")))
    }

    fn too_much(&self, source: &str) -> InputError {
        InputError(format!(
            "{source}: the input is larger than sni-guard's limit of {} MiB (all inputs together); \
             read fewer objects at once (e.g. one namespace, or only kubernetes.io/tls Secrets: \
             `kubectl get secrets -A --field-selector type=kubernetes.io/tls`)",
            MAX_INPUT_BYTES >> 20
        ))
    }
}

/// The device and inode of what `path` leads to.
#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// One file's text as documents: JSON, or YAML of any number of documents (`---`), empty ones
/// left out. `source` names the file in messages.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Value>, InputError> {
    let shape = shape::measure_within(text, shape::Shape { depth: MAX_NESTING, values: MAX_VALUES });
    if shape.depth > MAX_NESTING {
        return Err(InputError(format!(
            "{source}: nested {} levels deep, more than sni-guard's limit of {MAX_NESTING} (checked before \
             parsing; a Kubernetes object nests about 10)",
            shape.depth
        )));
    }
    if shape.values > MAX_VALUES {
        return Err(InputError(format!(
            "{source}: more than {MAX_VALUES} values in one file, sni-guard's limit (counted before parsing); \
             read fewer objects at once"
        )));
    }
    // The scan's count is an estimate, within a small factor: twice the limit for what the
    // parser makes, aliases included.
    parse(text, source, 2 * MAX_VALUES)
}

/// `parse_documents` after the scan: at most `max_nodes` values.
fn parse(text: &str, source: &str, max_nodes: usize) -> Result<Vec<Value>, InputError> {
    // JSON first when it looks like JSON, for serde_json's clearer messages; YAML is a
    // superset, so everything else goes to the YAML parser.
    let json = text.trim_start().starts_with(['{', '[']);
    let reading = Reading { path: RefCell::new(Vec::new()), nodes: Cell::new(0), max_nodes, yaml: !json };
    if json {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = reading
            .seed()
            .deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|e| InputError(format!("{source}: {}", reading.problem("not valid JSON", &e))))?;
        return Ok(vec![value]);
    }
    let mut documents = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = reading.seed().deserialize(document).map_err(|e| {
            InputError(format!("{source}: document {}: {}", i + 1, reading.problem("not valid YAML", &e)))
        })?;
        // `---` followed by nothing, or a comment-only document.
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// How a message names the type of a value it did not expect.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A step into a document: a mapping's key or a list's index.
enum Step {
    Key(String),
    Index(usize),
}

/// The state of parsing one text: where in the document the parser is, how many values it has
/// made, and why it was stopped (a refusal of ours, rather than the parser's syntax error).
struct Reading {
    path: RefCell<Vec<Step>>,
    nodes: Cell<usize>,
    /// No more values than this: only YAML aliases can make many more than the scan counted,
    /// each standing for a whole tree.
    max_nodes: usize,
    /// YAML, where a key `<<` is a merge key (in JSON it is a key like any other).
    yaml: bool,
}

impl Reading {
    fn seed(&self) -> Seed<'_> {
        Seed(self)
    }

    /// The path as messages show it: `spec.servers[0].tls`.
    fn shown_path(&self, last: Option<&str>) -> String {
        let mut out = String::new();
        let path = self.path.borrow();
        let keys = path.iter().map(|step| match step {
            Step::Key(key) => (true, escape(key).into_owned()),
            Step::Index(i) => (false, format!("[{i}]")),
        });
        for (is_key, text) in keys.chain(last.map(|key| (true, escape(key).into_owned()))) {
            if is_key && !out.is_empty() {
                out.push('.');
            }
            out.push_str(&text);
        }
        out
    }

    /// The message for a parser error: ours when we stopped it, else the parser's (`what`: "not
    /// valid YAML").
    fn problem(&self, what: &str, error: &dyn fmt::Display) -> String {
        let text = error.to_string();
        // The YAML reader puts the path of the value before the message, and its place after.
        match text.find(REFUSED) {
            Some(at) => escape(&text[at + REFUSED.len()..]).into_owned(),
            None => format!("{what}: {}", escape(&text)),
        }
    }

    fn refuse<E: de::Error>(&self, message: String) -> E {
        E::custom(format!("{REFUSED}{message}"))
    }

    fn count<E: de::Error>(&self) -> Result<(), E> {
        let nodes = self.nodes.get() + 1;
        self.nodes.set(nodes);
        if nodes > self.max_nodes {
            return Err(self.refuse(format!(
                "{}: more than {} values: YAML aliases (*name) repeat what their anchor holds, and sni-guard \
                 reads no more values than it would from a file written out",
                self.shown_path(None),
                self.max_nodes
            )));
        }
        Ok(())
    }
}

/// The marker our own refusals start with in the parser's error text.
const REFUSED: &str = "sni-guard: ";

/// Deserialises one value as serde_json's `Value`, refusing what `Reading` refuses.
struct Seed<'a>(&'a Reading);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON or YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.count()?;
        // NaN and the infinities have no JSON form: null, as serde_json's own `Value` reads them.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::String(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.0.count()?;
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.visit_none()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        self.0.count()?;
        let mut out = Vec::new();
        loop {
            self.0.path.borrow_mut().push(Step::Index(out.len()));
            let item = items.next_element_seed(Seed(self.0));
            self.0.path.borrow_mut().pop();
            match item? {
                Some(item) => out.push(item),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        self.0.count()?;
        let mut out = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(self.0.refuse(format!(
                    "{}: the key is in this mapping twice; kubectl refuses that (two manifests run together \
                     without `---` between them?)",
                    self.0.shown_path(Some(&key))
                )));
            }
            if key == "<<" && self.0.yaml {
                return Err(self.0.refuse(format!(
                    "{}: a YAML merge key, which sni-guard does not expand: write the keys out",
                    self.0.shown_path(Some(&key))
                )));
            }
            self.0.path.borrow_mut().push(Step::Key(key.clone()));
            let value = entries.next_value_seed(Seed(self.0));
            self.0.path.borrow_mut().pop();
            out.insert(key, value?);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        parse_documents(text, "f").unwrap_err().0
    }

    #[test]
    fn documents_as_before() {
        let docs = parse_documents("a: 1\n---\n---\n# only a comment\n---\nb: [x, {c: .nan}]\n", "f").unwrap();
        assert_eq!(docs, [serde_json::json!({"a": 1}), serde_json::json!({"b": ["x", {"c": null}]})]);
        assert_eq!(
            parse_documents("{\"a\": [1, 2.5, true]}", "f").unwrap(),
            [serde_json::json!({"a": [1, 2.5, true]})]
        );
        assert!(refused("a: [unclosed").starts_with("f: document 1: not valid YAML: "));
        assert!(refused("{\"a\": }").starts_with("f: not valid JSON: "));
    }

    #[test]
    fn a_key_twice_is_refused_with_its_path() {
        assert_eq!(
            refused("apiVersion: v1\nkind: Secret\nmetadata: {name: a}\napiVersion: v1\nkind: Service\n"),
            "f: document 1: apiVersion: the key is in this mapping twice; kubectl refuses that (two manifests \
             run together without `---` between them?)"
        );
        assert!(
            refused("spec:\n  servers:\n  - tls: {mode: SIMPLE, mode: MUTUAL}\n")
                .starts_with("f: document 1: spec.servers[0].tls.mode: the key is in this mapping twice"),
            "{}",
            refused("spec:\n  servers:\n  - tls: {mode: SIMPLE, mode: MUTUAL}\n")
        );
        assert!(refused("{\"a\": {\"b\": 1, \"b\": 2}}").starts_with("f: a.b: the key is in this mapping twice"));
        // A key from the input is escaped in the message.
        assert!(refused(r#"{"a\u001b": 1, "a\u001b": 2}"#).starts_with("f: a\\u{1b}: the key"));
        assert!(refused("a: &x {b: 1}\nc:\n  <<: *x\n").contains("c.<<: a YAML merge key"));
        assert_eq!(parse_documents(r#"{"<<": 1}"#, "f").unwrap(), [serde_json::json!({"<<": 1})]);
    }

    #[test]
    fn aliases_cannot_outgrow_the_text() {
        // Each level doubles: 2^24 values from a few hundred bytes. The YAML reader stops
        // replaying at 100 times the values written...
        let mut text = String::from("a0: &a0 [x, x]\n");
        for i in 1..=24 {
            text.push_str(&format!("a{i}: &a{i} [*a{}, *a{}]\n", i - 1, i - 1));
        }
        assert!(refused(&text).ends_with("not valid YAML: repetition limit exceeded"), "{}", refused(&text));
        // ...which, for a larger anchor, sni-guard's own count stops first (here at 1,000 values
        // rather than the 4,000,000 of a real run).
        let text = format!("a: &a [{}x]\nb: [{}*a]\n", "x, ".repeat(100), "*a, ".repeat(20));
        let message = parse(&text, "f", 1000).unwrap_err().0;
        assert!(message.contains("b[8][79]: more than 1000 values: YAML aliases"), "{message}");
        assert_eq!(parse_documents(&text, "f").unwrap()[0]["b"].as_array().unwrap().len(), 21);
        // A few aliases within the text's size are read.
        let small = parse_documents("a: &a [x]\nb: *a\n", "f").unwrap();
        assert_eq!(small[0]["b"], serde_json::json!(["x"]));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let message = refused(&deep);
        assert_eq!(
            message,
            "f: nested 100001 levels deep, more than sni-guard's limit of 100 (checked before parsing; a \
             Kubernetes object nests about 10)"
        );
        assert!(parse_documents(&format!("a: {}{}\n", "[".repeat(99), "]".repeat(99)), "f").is_ok());
    }

    #[test]
    fn too_many_values_are_refused_before_parsing() {
        let flat = format!("a: [{}1]\n", "1,".repeat(MAX_VALUES));
        let message = refused(&flat);
        assert!(message.starts_with("f: more than 2000000 values in one file, sni-guard's limit"), "{message}");
    }
}
