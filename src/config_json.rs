//! Reading the configuration's JSON text into `PluginConfig`: `json` reads the text into a
//! `Value` tree, this maps the tree onto the fields, with errors that name the field
//! (`servers[0].hosts[1]: invalid type: ...`). `Settings::from_json` reads and validates in one
//! step, what `proxy_on_configure` runs.

use crate::config::{ConfigError, FieldPath, Mode, OnMissingSni, PluginConfig, ServerConfig, Settings};
use crate::json::{self, Value};

impl PluginConfig {
    /// Parses the JSON bytes Envoy hands the plugin. Empty (or blank) means the defaults.
    ///
    /// The reader is `json.rs`, not serde_json: it keeps the module small, and its errors name
    /// the field (`servers[0].hosts[1]: invalid type: ...`). The types' serde derives stay for
    /// writing configurations (the CLI), and a test checks both readers agree. This reader is
    /// the stricter one: serde also reads a struct from a list (`[["a"]]` for a server) and a
    /// unit variant from a map (`{"dry_run": null}` for a mode); this one refuses both.
    pub fn parse(json: &[u8]) -> Result<PluginConfig, ConfigError> {
        // JSON's white space only (RFC 8259): a form feed is not blank here.
        if json.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            return Ok(PluginConfig::default());
        }
        let value = json::parse(json).map_err(|e| ConfigError::invalid(FieldPath::root(), e.to_string()))?;
        let Value::Object(members) = value else {
            return Err(ConfigError::invalid(
                FieldPath::root(),
                "expected a JSON object, such as {\"servers\": [...]}",
            ));
        };
        let mut config = PluginConfig::default();
        for (key, value) in members {
            let path = FieldPath::root().field(&key);
            match key.as_str() {
                "servers" => config.servers = list(&path, value, server)?,
                "mode" => {
                    config.mode = variant(&path, value, &[("enforce", Mode::Enforce), ("dry_run", Mode::DryRun)])?
                }
                "on_missing_sni" => {
                    config.on_missing_sni =
                        variant(&path, value, &[("allow", OnMissingSni::Allow), ("reject", OnMissingSni::Reject)])?
                }
                "exempt_paths" => config.exempt_paths = list(&path, value, string)?,
                "same_name_matcher" => {
                    config.same_name_matcher = match value {
                        Value::Null => None,
                        value => Some(string(&path, value)?),
                    }
                }
                "response_body" => {
                    config.response_body = match value {
                        Value::Null => None,
                        value => Some(string(&path, value)?),
                    }
                }
                _ => return Err(unknown_field(path, &key, FIELDS)),
            }
        }
        Ok(config)
    }
}

impl Settings {
    /// Parses and validates in one step: what `proxy_on_configure` does.
    pub fn from_json(json: &[u8]) -> Result<Settings, ConfigError> {
        PluginConfig::parse(json)?.validate()
    }
}

const FIELDS: &[&str] = &["servers", "mode", "on_missing_sni", "exempt_paths", "response_body", "same_name_matcher"];

fn unknown_field(path: FieldPath, key: &str, expected: &[&str]) -> ConfigError {
    let expected: Vec<String> = expected.iter().map(|f| format!("`{f}`")).collect();
    ConfigError::invalid(path, format!("unknown field `{key}`, expected one of {}", expected.join(", ")))
}

fn invalid_type(path: &FieldPath, value: &Value, expected: &str) -> ConfigError {
    ConfigError::invalid(path.clone(), format!("invalid type: {}, expected {expected}", value.describe()))
}

fn string(path: &FieldPath, value: Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(invalid_type(path, &other, "a string")),
    }
}

fn list<T>(
    path: &FieldPath,
    value: Value,
    item: fn(&FieldPath, Value) -> Result<T, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    match value {
        Value::Array(items) => items.into_iter().enumerate().map(|(i, v)| item(&path.index(i), v)).collect(),
        other => Err(invalid_type(path, &other, "a list")),
    }
}

fn variant<T: Copy>(path: &FieldPath, value: Value, variants: &[(&str, T)]) -> Result<T, ConfigError> {
    let name = string(path, value)?;
    match variants.iter().find(|(n, _)| *n == name) {
        Some((_, v)) => Ok(*v),
        None => {
            let expected: Vec<String> = variants.iter().map(|(n, _)| format!("`{n}`")).collect();
            Err(ConfigError::invalid(
                path.clone(),
                format!("unknown variant `{name}`, expected one of {}", expected.join(", ")),
            ))
        }
    }
}

fn server(path: &FieldPath, value: Value) -> Result<ServerConfig, ConfigError> {
    let Value::Object(members) = value else {
        return Err(invalid_type(path, &value, "an object such as {\"hosts\": [...]}"));
    };
    let mut hosts = None;
    for (key, value) in members {
        let field = path.field(&key);
        match key.as_str() {
            "hosts" => hosts = Some(list(&field, value, string)?),
            _ => return Err(unknown_field(field, &key, &["hosts"])),
        }
    }
    let hosts = hosts.ok_or_else(|| ConfigError::invalid(path.clone(), "missing field `hosts`"))?;
    Ok(ServerConfig { hosts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_RESPONSE_BODY, MAX_RESPONSE_BODY};

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
    fn what_is_not_the_configurations_json_names_the_field() {
        let e = refused(r#"{"mode":"enforcing"}"#);
        assert!(e.to_string().contains("enforcing"), "{e}");
        let e = refused(r#"{"exempt_paths":"/x"}"#);
        assert_eq!(e.field.to_string(), "exempt_paths");
        assert!(e.problem.to_string().contains("invalid type"), "{e}");
        let e = refused(r#"{"servers":[{"hosts":["a.example.com", 7]}]}"#);
        assert_eq!(e.field.to_string(), "servers[0].hosts[1]");
        let e = refused(r#"{"response_body":42}"#);
        assert_eq!(e.field.to_string(), "response_body");
        let e = refused(r#"{"mode":"dry_run"} trailing"#);
        assert_eq!(e.field.to_string(), "configuration");
        let e = refused(r#"{"sever":[]}"#);
        assert!(e.problem.to_string().contains("unknown field `sever`"), "{e}");
        let e = refused(r#"{"servers":[{"hosts":["a.example.com"],"port":443}]}"#);
        assert!(e.problem.to_string().contains("unknown field `port`"), "{e}");
        let e = refused("not json");
        assert_eq!(e.field.to_string(), "configuration");
        for not_object in ["[]", "[[]]", "null", "\"servers\"", "1"] {
            let e = refused(not_object);
            assert_eq!(e.field.to_string(), "configuration", "{not_object}");
            assert!(e.problem.to_string().contains("JSON object"), "{e}");
        }
        let body = format!(r#"{{"response_body":"{}"}}"#, "x".repeat(MAX_RESPONSE_BODY + 1));
        assert_eq!(refused(&body).field.to_string(), "response_body", "read, then refused by validation");
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
