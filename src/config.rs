//! The plugin configuration: JSON as users write it (`PluginConfig`), and the validated form
//! the filter runs with (`Settings`). Parsing happens once, when Envoy configures the plugin;
//! a configuration is either accepted whole or refused with one message naming the field.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cel::SameNameTest;
use crate::exempt::ExemptPaths;
use crate::json::{self, Value};
use crate::server_table::{HostPattern, ServerTable};

/// The 421 body when `response_body` is not set.
pub const DEFAULT_RESPONSE_BODY: &str =
    "421 Misdirected Request: this connection was opened for another host; retry on a new connection\n";
/// The largest `response_body` accepted.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// The configuration as written in WasmPlugin `pluginConfig` or Envoy's `configuration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The gateway's servers, as in an Istio Gateway's `servers[].hosts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerConfig>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub on_missing_sni: OnMissingSni,
    /// Path prefixes never answered 421.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// The CEL text of Envoy's same-name matcher in front of the filter, where one is
    /// (`envoyfilter/envoy.yaml`, `envoyfilter.yaml`): requests it matches never reach the
    /// module, so the module does not test the same name again. Written by sni-guard's own
    /// manifests and CLI; one of `cel::SameNameTest`'s texts, strong enough for `servers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_name_matcher: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Answer 421.
    #[default]
    Enforce,
    /// Count and log the mismatch, let the request through.
    DryRun,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingSni {
    /// Plain-text listeners and clients that send no SNI pass.
    #[default]
    Allow,
    /// Answer 421 (or count it, in dry-run mode).
    Reject,
}

/// A refused configuration: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// A path such as `servers[1].hosts[0]`, or `configuration` for the document as a whole.
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn refuse(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), problem: problem.into() }
}

/// What the filter runs with.
#[derive(Debug, PartialEq)]
pub struct Settings {
    pub servers: ServerTable,
    pub mode: Mode,
    pub on_missing_sni: OnMissingSni,
    pub exempt_paths: ExemptPaths,
    pub response_body: Vec<u8>,
    /// The same-name test Envoy's matcher in front of the filter applies, if one does.
    pub same_name_matcher: Option<SameNameTest>,
    /// Each server's name in the per-pair counters: its first host, without a namespace.
    server_names: Vec<String>,
}

impl Settings {
    /// The name of server `server` in counters and logs.
    pub fn server_name(&self, server: usize) -> Option<&str> {
        self.server_names.get(server).map(String::as_str)
    }
}

impl Default for Settings {
    fn default() -> Self {
        PluginConfig::default().validate().expect("the default configuration is valid")
    }
}

impl PluginConfig {
    /// Parses the JSON bytes Envoy hands the plugin. Empty (or blank) means the defaults.
    ///
    /// The reader is `json.rs`, not serde_json: it keeps the module small, and its errors name
    /// the field (`servers[0].hosts[1]: invalid type: ...`). The serde derives above stay for
    /// writing configurations (the CLI), and a test checks both readers agree. This reader is
    /// the stricter one: serde also reads a struct from a list (`[["a"]]` for a server) and a
    /// unit variant from a map (`{"dry_run": null}` for a mode); this one refuses both.
    pub fn parse(json: &[u8]) -> Result<PluginConfig, ConfigError> {
        // JSON's white space only (RFC 8259): a form feed is not blank here.
        if json.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            return Ok(PluginConfig::default());
        }
        let value = json::parse(json).map_err(|e| refuse("configuration", e.to_string()))?;
        let Value::Object(members) = value else {
            return Err(refuse("configuration", "expected a JSON object, such as {\"servers\": [...]}"));
        };
        let mut config = PluginConfig::default();
        for (key, value) in members {
            match key.as_str() {
                "servers" => config.servers = list(&key, value, server)?,
                "mode" => config.mode = variant(&key, value, &[("enforce", Mode::Enforce), ("dry_run", Mode::DryRun)])?,
                "on_missing_sni" => {
                    config.on_missing_sni =
                        variant(&key, value, &[("allow", OnMissingSni::Allow), ("reject", OnMissingSni::Reject)])?
                }
                "exempt_paths" => config.exempt_paths = list(&key, value, string)?,
                "same_name_matcher" => {
                    config.same_name_matcher = match value {
                        Value::Null => None,
                        value => Some(string(&key, value)?),
                    }
                }
                "response_body" => {
                    config.response_body = match value {
                        Value::Null => None,
                        value => Some(string(&key, value)?),
                    }
                }
                _ => return Err(unknown_field(&key, &key, FIELDS)),
            }
        }
        Ok(config)
    }

    /// Checks every field and builds the settings the filter runs with.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let mut patterns = Vec::new();
        for (s, server) in self.servers.iter().enumerate() {
            if server.hosts.is_empty() {
                return Err(refuse(format!("servers[{s}].hosts"), "a server needs at least one host"));
            }
            for (h, host) in server.hosts.iter().enumerate() {
                let pattern = parse_host_pattern(host)
                    .map_err(|problem| refuse(format!("servers[{s}].hosts[{h}]"), format!("{host:?}: {problem}")))?;
                patterns.push((pattern, s));
            }
        }
        let servers = ServerTable::new(patterns).map_err(|dup| {
            let shown = dup.pattern.to_string();
            refuse(
                format!("servers[{}].hosts", dup.second),
                format!("host {shown:?} is already listed by servers[{}]; a host belongs to one server", dup.first),
            )
        })?;

        for (i, prefix) in self.exempt_paths.iter().enumerate() {
            ExemptPaths::check_prefix(prefix)
                .map_err(|problem| refuse(format!("exempt_paths[{i}]"), format!("{prefix:?}: {problem}")))?;
        }
        let exempt_paths = ExemptPaths::new(self.exempt_paths.iter().cloned());

        let response_body = match &self.response_body {
            Some(body) if body.len() > MAX_RESPONSE_BODY => {
                return Err(refuse("response_body", format!("{} bytes; at most {MAX_RESPONSE_BODY}", body.len())))
            }
            Some(body) => body.as_bytes().to_vec(),
            None => DEFAULT_RESPONSE_BODY.as_bytes().to_vec(),
        };

        let same_name_matcher = match &self.same_name_matcher {
            None => None,
            Some(text) => Some(check_matcher(text, servers.catch_all().is_some(), self.on_missing_sni)?),
        };

        let server_names = self
            .servers
            .iter()
            .map(|server| {
                let first = &server.hosts[0];
                first.split_once('/').map_or(first.as_str(), |(_, host)| host).to_ascii_lowercase()
            })
            .collect();

        Ok(Settings {
            server_names,
            servers,
            mode: self.mode,
            on_missing_sni: self.on_missing_sni,
            exempt_paths,
            response_body,
            same_name_matcher,
        })
    }
}

impl Settings {
    /// Parses and validates in one step: what `proxy_on_configure` does.
    pub fn from_json(json: &[u8]) -> Result<Settings, ConfigError> {
        PluginConfig::parse(json)?.validate()
    }
}

const FIELDS: &[&str] = &["servers", "mode", "on_missing_sni", "exempt_paths", "response_body", "same_name_matcher"];

/// The matcher's test, if it is one sni-guard knows and strong enough for this configuration:
/// a weaker one would let Envoy skip the filter for a request the full check refuses.
fn check_matcher(text: &str, has_catch_all: bool, on_missing_sni: OnMissingSni) -> Result<SameNameTest, ConfigError> {
    let known: Vec<String> = SameNameTest::ALL.iter().map(|t| format!("{:?}", t.text())).collect();
    let test = SameNameTest::from_text(text).ok_or_else(|| {
        refuse("same_name_matcher", format!("{text:?} is not a matcher sni-guard knows; one of {}", known.join(", ")))
    })?;
    let required = SameNameTest::required(has_catch_all, on_missing_sni);
    if test < required {
        let why = if has_catch_all {
            "with a catch-all server (\"*\"), Envoy puts a connection whose SNI ends with '.' in the catch-all \
             chain, and the matcher would skip the filter for its requests"
        } else {
            "with on_missing_sni: reject, the matcher would skip the filter for a connection without SNI and an \
             empty :authority"
        };
        return Err(refuse(
            "same_name_matcher",
            format!(
                "{text:?} is too weak for this configuration: {why}; use {:?} in the matcher and here",
                required.text()
            ),
        ));
    }
    Ok(test)
}

fn unknown_field(path: &str, key: &str, expected: &[&str]) -> ConfigError {
    let expected: Vec<String> = expected.iter().map(|f| format!("`{f}`")).collect();
    refuse(path, format!("unknown field `{key}`, expected one of {}", expected.join(", ")))
}

fn invalid_type(path: &str, value: &Value, expected: &str) -> ConfigError {
    refuse(path, format!("invalid type: {}, expected {expected}", value.describe()))
}

fn string(path: &str, value: Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(invalid_type(path, &other, "a string")),
    }
}

fn list<T>(path: &str, value: Value, item: fn(&str, Value) -> Result<T, ConfigError>) -> Result<Vec<T>, ConfigError> {
    match value {
        Value::Array(items) => items.into_iter().enumerate().map(|(i, v)| item(&format!("{path}[{i}]"), v)).collect(),
        other => Err(invalid_type(path, &other, "a list")),
    }
}

fn variant<T: Copy>(path: &str, value: Value, variants: &[(&str, T)]) -> Result<T, ConfigError> {
    let name = string(path, value)?;
    match variants.iter().find(|(n, _)| *n == name) {
        Some((_, v)) => Ok(*v),
        None => {
            let expected: Vec<String> = variants.iter().map(|(n, _)| format!("`{n}`")).collect();
            Err(refuse(path, format!("unknown variant `{name}`, expected one of {}", expected.join(", "))))
        }
    }
}

fn server(path: &str, value: Value) -> Result<ServerConfig, ConfigError> {
    let Value::Object(members) = value else {
        return Err(invalid_type(path, &value, "an object such as {\"hosts\": [...]}"));
    };
    let mut hosts = None;
    for (key, value) in members {
        let field = format!("{path}.{key}");
        match key.as_str() {
            "hosts" => hosts = Some(list(&field, value, string)?),
            _ => return Err(unknown_field(&field, &key, &["hosts"])),
        }
    }
    let hosts = hosts.ok_or_else(|| refuse(path, "missing field `hosts`"))?;
    Ok(ServerConfig { hosts })
}

/// Reads one entry of `servers[].hosts`; see `HostPattern::parse`.
pub fn parse_host_pattern(host: &str) -> Result<HostPattern, String> {
    HostPattern::parse(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> ConfigError {
        Settings::from_json(json.as_bytes()).expect_err(json)
    }

    #[test]
    fn empty_means_defaults() {
        for json in ["", "  \n", "{}"] {
            let settings = Settings::from_json(json.as_bytes()).unwrap();
            assert!(settings.servers.is_empty());
            assert_eq!(settings.mode, Mode::Enforce);
            assert_eq!(settings.on_missing_sni, OnMissingSni::Allow);
            assert_eq!(settings.response_body, DEFAULT_RESPONSE_BODY.as_bytes());
        }
    }

    #[test]
    fn every_field_parses() {
        let settings = Settings::from_json(
            br#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["istio-system/*.b.example.com","./C.example.com"]}],
                "mode":"dry_run","on_missing_sni":"reject","exempt_paths":["/.well-known/acme-challenge/"],
                "response_body":"go away"}"#,
        )
        .unwrap();
        assert_eq!(settings.servers.server_of(b"a.example.com"), Some(0));
        assert_eq!(settings.servers.server_of(b"x.b.example.com"), Some(1));
        assert_eq!(settings.servers.server_of(b"c.example.com"), Some(1));
        assert_eq!(settings.mode, Mode::DryRun);
        assert_eq!(settings.on_missing_sni, OnMissingSni::Reject);
        assert!(settings.exempt_paths.contains(b"/.well-known/acme-challenge/x"));
        assert_eq!(settings.response_body, b"go away");
    }

    #[test]
    fn bad_configurations_name_the_field() {
        let e = refused(r#"{"servers":[{"hosts":["a.*.com"]}]}"#);
        assert_eq!(e.field, "servers[0].hosts[0]");
        assert!(e.problem.contains("wildcard"), "{e}");
        let e = refused(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com","A.example.com"]}]}"#);
        assert_eq!(e.field, "servers[1].hosts");
        assert!(e.problem.contains("servers[0]"), "{e}");
        let e = refused(r#"{"servers":[{"hosts":["not a host"]}]}"#);
        assert_eq!(e.field, "servers[0].hosts[0]");
        let e = refused(r#"{"servers":[{"hosts":[]}]}"#);
        assert_eq!(e.field, "servers[0].hosts");
        let e = refused(r#"{"servers":[{"hosts":["*example.com"]}]}"#);
        assert_eq!(e.field, "servers[0].hosts[0]");
        let e = refused(r#"{"servers":[{"hosts":["a/b/c.example.com"]}]}"#);
        assert_eq!(e.field, "servers[0].hosts[0]");
        let e = refused(r#"{"exempt_paths":["well-known"]}"#);
        assert_eq!(e.field, "exempt_paths[0]");
        let e = refused(r#"{"exempt_paths":["/ok/","/a/../b"]}"#);
        assert_eq!(e.field, "exempt_paths[1]");
        let e = refused(r#"{"servers":[{"hosts":["a.example.com."]}]}"#);
        assert!(e.problem.contains("trailing dot"), "{e}");
        let e = refused(r#"{"mode":"enforcing"}"#);
        assert!(e.to_string().contains("enforcing"), "{e}");
        let e = refused(r#"{"exempt_paths":"/x"}"#);
        assert_eq!(e.field, "exempt_paths");
        assert!(e.problem.contains("invalid type"), "{e}");
        let e = refused(r#"{"servers":[{"hosts":["a.example.com", 7]}]}"#);
        assert_eq!(e.field, "servers[0].hosts[1]");
        let e = refused(r#"{"response_body":42}"#);
        assert_eq!(e.field, "response_body");
        let e = refused(r#"{"mode":"dry_run"} trailing"#);
        assert_eq!(e.field, "configuration");
        let e = refused(r#"{"sever":[]}"#);
        assert!(e.problem.contains("unknown field `sever`"), "{e}");
        let e = refused(r#"{"servers":[{"hosts":["a.example.com"],"port":443}]}"#);
        assert!(e.problem.contains("unknown field `port`"), "{e}");
        let e = refused("not json");
        assert_eq!(e.field, "configuration");
        for not_object in ["[]", "[[]]", "null", "\"servers\"", "1"] {
            let e = refused(not_object);
            assert_eq!(e.field, "configuration", "{not_object}");
            assert!(e.problem.contains("JSON object"), "{e}");
        }
        let body = format!(r#"{{"response_body":"{}"}}"#, "x".repeat(MAX_RESPONSE_BODY + 1));
        assert_eq!(refused(&body).field, "response_body");
    }

    #[test]
    fn the_matcher_in_front_must_be_strong_enough() {
        let plain = SameNameTest::Plain.text();
        let no_dot = SameNameTest::NoTrailingDot.text();
        let ok = |json: String| Settings::from_json(json.as_bytes()).unwrap().same_name_matcher;
        assert_eq!(ok(format!(r#"{{"same_name_matcher":"{plain}"}}"#)), Some(SameNameTest::Plain));
        assert_eq!(
            ok(format!(r#"{{"servers":[{{"hosts":["*"]}}],"same_name_matcher":"{no_dot}"}}"#)),
            Some(SameNameTest::NoTrailingDot)
        );
        let e = refused(&format!(r#"{{"servers":[{{"hosts":["*"]}}],"same_name_matcher":"{plain}"}}"#));
        assert_eq!(e.field, "same_name_matcher");
        assert!(e.problem.contains("catch-all") && e.problem.contains("endsWith"), "{e}");
        let e = refused(&format!(r#"{{"on_missing_sni":"reject","same_name_matcher":"{no_dot}"}}"#));
        assert!(e.problem.contains("reject"), "{e}");
        let e = refused(r#"{"same_name_matcher":"true"}"#);
        assert!(e.problem.contains("not a matcher sni-guard knows"), "{e}");
    }

    #[test]
    fn round_trips_through_json() {
        let config = PluginConfig {
            servers: vec![ServerConfig { hosts: vec!["a.example.com".into(), "*.b.example.com".into()] }],
            mode: Mode::DryRun,
            ..PluginConfig::default()
        };
        let json = serde_json::to_vec(&config).unwrap();
        assert_eq!(PluginConfig::parse(&json).unwrap(), config);
    }
}
