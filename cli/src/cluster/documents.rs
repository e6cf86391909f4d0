//! Kubernetes manifests as documents: files, directories and standard input read as text, and
//! JSON or (multi-document) YAML parsed into values. What the documents are is `inventory`'s
//! business (and `deployed::read`'s, for what a user applies).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::text::shown;

/// Bad input: not JSON or YAML, not Gateways, or a Gateway that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// `*.yaml`, `*.yml` and `*.json` under `dir`, in name order so that output is reproducible.
pub fn manifest_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let entries = fs::read_dir(dir).map_err(|e| InputError(format!("{}: cannot read directory: {e}", shown(dir))))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            manifest_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// A file's text; it must be UTF-8.
pub fn read_file(path: &Path) -> Result<String, InputError> {
    let bytes = fs::read(path).map_err(|e| InputError(format!("{}: cannot read: {e}", shown(path))))?;
    String::from_utf8(bytes).map_err(|_| InputError(format!("{}: not UTF-8 text", shown(path))))
}

/// Standard input's text; it must be UTF-8.
pub fn read_stdin() -> Result<String, InputError> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
        .map_err(|e| InputError(format!("stdin: cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| InputError("stdin: not UTF-8 text".into()))
}

pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Value>, InputError> {
    // JSON first when it looks like JSON, for serde_json's clearer messages; YAML is a
    // superset, so everything else goes to the YAML parser.
    if text.trim_start().starts_with(['{', '[']) {
        let value: Value =
            serde_json::from_str(text).map_err(|e| InputError(format!("{source}: not valid JSON: {e}")))?;
        return Ok(vec![value]);
    }
    let mut documents = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .map_err(|e| InputError(format!("{source}: document {}: not valid YAML: {e}", i + 1)))?;
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
