//! The plugin configuration: its fields as users write them (`PluginConfig`), the validated
//! form the filter runs with (`Settings`), and the refusal naming the field (`ConfigError`,
//! with its `FieldPath`). Reading the JSON text into `PluginConfig` is `config_json`'s job.
//! Validation happens once, when Envoy configures the plugin; a configuration is either
//! accepted whole or refused with one message naming the field.

use std::fmt;

use crate::cel::SameNameTest;
use crate::exempt::ExemptPaths;
use crate::server_table::{HostPattern, ServerTable};

/// The 421 body when `response_body` is not set.
pub const DEFAULT_RESPONSE_BODY: &str =
    "421 Misdirected Request: this connection was opened for another host; retry on a new connection\n";
/// The largest `response_body` accepted.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// The configuration as written in WasmPlugin `pluginConfig` or Envoy's `configuration`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(deny_unknown_fields))]
pub struct PluginConfig {
    /// The gateway's servers, as in an Istio Gateway's `servers[].hosts`.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Vec::is_empty"))]
    pub servers: Vec<ServerConfig>,
    #[cfg_attr(feature = "serde", serde(default))]
    pub mode: Mode,
    #[cfg_attr(feature = "serde", serde(default))]
    pub on_missing_sni: OnMissingSni,
    /// Path prefixes never answered 421.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Vec::is_empty"))]
    pub exempt_paths: Vec<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub response_body: Option<String>,
    /// The CEL text of Envoy's same-name matcher in front of the filter, where one is
    /// (`envoyfilter/envoy.yaml`, `envoyfilter.yaml`): requests it matches never reach the
    /// module, so the module does not test the same name again. Written by sni-guard's own
    /// manifests and CLI; one of `cel::SameNameTest`'s texts, strong enough for `servers`.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub same_name_matcher: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(deny_unknown_fields))]
pub struct ServerConfig {
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Mode {
    /// Answer 421.
    #[default]
    Enforce,
    /// Count and log the mismatch, let the request through.
    DryRun,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
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
    /// Where: `servers[1].hosts[0]`, or the empty path (shown as `configuration`) for the
    /// document as a whole.
    pub field: FieldPath,
    pub problem: Problem,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// In words, e.g. `"a.*.com": a wildcard is allowed only as the whole first label, ...`.
    Invalid(String),
    /// The field (a server's `hosts`) lists `host`, which the server at `first` (`servers[0]`)
    /// listed before: a host belongs to one server.
    HostListedTwice { host: String, first: FieldPath },
}

impl ConfigError {
    /// A field with something wrong with it, said in words.
    pub fn invalid(field: FieldPath, problem: impl Into<String>) -> ConfigError {
        ConfigError { field, problem: Problem::Invalid(problem.into()) }
    }

    /// The message, with each server it points at followed by `name(index)` in parentheses
    /// where that gives one: `servers[1] (a/gw spec.servers[2]).hosts: ...`. For tools that
    /// built the configuration from servers of their own (the CLI); `Display` names none.
    pub fn naming_servers(&self, name: impl Fn(usize) -> Option<String>) -> String {
        let mut out = String::from("invalid configuration: ");
        self.field.write_naming(&mut out, &name);
        out.push_str(": ");
        match &self.problem {
            Problem::Invalid(problem) => out.push_str(problem),
            Problem::HostListedTwice { host, first } => {
                out.push_str(&format!("host {host:?} is already listed by "));
                first.write_naming(&mut out, &name);
                out.push_str("; a host belongs to one server");
            }
        }
        out
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.naming_servers(|_| None))
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Invalid(problem) => f.write_str(problem),
            Problem::HostListedTwice { host, first } => {
                write!(f, "host {host:?} is already listed by {first}; a host belongs to one server")
            }
        }
    }
}

/// A place in the configuration, from the document's top: field names and list indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A member of an object: `servers`.
    Field(String),
    /// An item of a list: `[1]`.
    Index(usize),
}

impl FieldPath {
    /// The document as a whole.
    pub fn root() -> FieldPath {
        FieldPath::default()
    }

    /// This path, then the member `name`.
    pub fn field(&self, name: &str) -> FieldPath {
        self.with(Segment::Field(name.to_string()))
    }

    /// This path, then the list item `index`.
    pub fn index(&self, index: usize) -> FieldPath {
        self.with(Segment::Index(index))
    }

    fn with(&self, segment: Segment) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(segment);
        FieldPath(segments)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The N of a path in `servers[N]`: which server the problem is in.
    pub fn server_index(&self) -> Option<usize> {
        match self.0.as_slice() {
            [Segment::Field(servers), Segment::Index(n), ..] if servers == "servers" => Some(*n),
            _ => None,
        }
    }

    /// `servers[1].hosts[0]`, `configuration` for the root; after `servers[N]`, `name(N)` in
    /// parentheses when it gives one.
    fn write_naming(&self, out: &mut String, name: &dyn Fn(usize) -> Option<String>) {
        if self.0.is_empty() {
            out.push_str("configuration");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(field) if i == 0 => out.push_str(field),
                Segment::Field(field) => {
                    out.push('.');
                    out.push_str(field);
                }
                Segment::Index(n) => {
                    out.push_str(&format!("[{n}]"));
                    if i == 1 && self.server_index() == Some(*n) {
                        if let Some(name) = name(*n) {
                            out.push_str(&format!(" ({name})"));
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_naming(&mut out, &|_| None);
        f.write_str(&out)
    }
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
    /// The weakest same-name test that may settle a request for these servers
    /// (`SameNameTest::required`): what the decision's own shortcut applies, and what the
    /// module asks Envoy's CEL where no matcher is in front.
    pub same_name: SameNameTest,
    /// Each server's name in the per-pair counters: its first host, without a namespace.
    server_names: Vec<String>,
}

impl Settings {
    /// The name of server `server` in counters and logs.
    pub fn server_name(&self, server: usize) -> Option<&str> {
        self.server_names.get(server).map(String::as_str)
    }
}

/// What an empty configuration (`PluginConfig::default()`) validates to, built directly: no
/// validation to fail (a test checks the two agree).
impl Default for Settings {
    fn default() -> Self {
        Settings {
            servers: ServerTable::default(),
            mode: Mode::default(),
            on_missing_sni: OnMissingSni::default(),
            exempt_paths: ExemptPaths::default(),
            response_body: DEFAULT_RESPONSE_BODY.as_bytes().to_vec(),
            same_name_matcher: None,
            same_name: SameNameTest::Plain,
            server_names: Vec::new(),
        }
    }
}

impl PluginConfig {
    /// Checks every field and builds the settings the filter runs with.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let mut patterns = Vec::new();
        let server_path = |s: usize| FieldPath::root().field("servers").index(s);
        for (s, server) in self.servers.iter().enumerate() {
            if server.hosts.is_empty() {
                return Err(ConfigError::invalid(server_path(s).field("hosts"), "a server needs at least one host"));
            }
            for (h, host) in server.hosts.iter().enumerate() {
                let pattern = HostPattern::parse(host).map_err(|problem| {
                    ConfigError::invalid(server_path(s).field("hosts").index(h), format!("{host:?}: {problem}"))
                })?;
                patterns.push((pattern, s));
            }
        }
        let servers = ServerTable::new(patterns).map_err(|dup| ConfigError {
            field: server_path(dup.second).field("hosts"),
            problem: Problem::HostListedTwice { host: dup.pattern.to_string(), first: server_path(dup.first) },
        })?;

        for (i, prefix) in self.exempt_paths.iter().enumerate() {
            ExemptPaths::check_prefix(prefix).map_err(|problem| {
                ConfigError::invalid(FieldPath::root().field("exempt_paths").index(i), format!("{prefix:?}: {problem}"))
            })?;
        }
        let exempt_paths = ExemptPaths::new(self.exempt_paths.iter().cloned());

        let response_body = match &self.response_body {
            Some(body) if body.len() > MAX_RESPONSE_BODY => {
                return Err(ConfigError::invalid(
                    FieldPath::root().field("response_body"),
                    format!("{} bytes; at most {MAX_RESPONSE_BODY}", body.len()),
                ))
            }
            Some(body) => body.as_bytes().to_vec(),
            None => DEFAULT_RESPONSE_BODY.as_bytes().to_vec(),
        };

        let same_name = SameNameTest::required(&servers, self.on_missing_sni);
        let same_name_matcher = match &self.same_name_matcher {
            None => None,
            Some(text) => Some(check_matcher(text, &servers, self.on_missing_sni)?),
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
            same_name,
        })
    }
}

impl SameNameTest {
    /// The weakest test that may settle requests for a configuration with these servers. Each
    /// extra condition costs Envoy about 2,500 instructions per request (callgrind), so none is
    /// added where it changes no answer:
    ///
    /// - a catch-all server, or a server below another's wildcard: `HostName`. Envoy hands the
    ///   catch-all chain every SNI it matched to no `server_names`, literally: `b.example.com:443`
    ///   and `b.example.com.` are there, and a request for the same text reaches the route table
    ///   of the catch-all (or of the wildcard), which may serve `b.example.com` too.
    /// - else `on_missing_sni: reject`: `WithSni`.
    /// - else `Plain`: Envoy refuses the handshake of an SNI that matches no `server_names`, so
    ///   a connection's SNI is a server's exact name, or a name below a wildcard none of whose
    ///   hosts is another server's: the route table of its chain serves no other server's host.
    pub fn required(servers: &ServerTable, on_missing_sni: OnMissingSni) -> SameNameTest {
        if servers.catch_all().is_some() || servers.has_nested_servers() {
            SameNameTest::HostName
        } else if on_missing_sni == OnMissingSni::Reject {
            SameNameTest::WithSni
        } else {
            SameNameTest::Plain
        }
    }
}

/// The matcher's test, if it is one sni-guard knows and strong enough for this configuration:
/// a weaker one would let Envoy skip the filter for a request the full check refuses.
fn check_matcher(text: &str, servers: &ServerTable, on_missing_sni: OnMissingSni) -> Result<SameNameTest, ConfigError> {
    let known: Vec<String> = SameNameTest::ALL.iter().map(|t| format!("{:?}", t.text())).collect();
    let test = SameNameTest::from_text(text).ok_or_else(|| {
        ConfigError::invalid(
            FieldPath::root().field("same_name_matcher"),
            format!("{text:?} is not a matcher sni-guard knows; one of {}", known.join(", ")),
        )
    })?;
    let required = SameNameTest::required(servers, on_missing_sni);
    if test < required {
        let why = if servers.catch_all().is_some() {
            "with a catch-all server (\"*\"), Envoy puts a connection whose SNI is no listed name (\"b.example.com:443\", \
             \"b.example.com.\") in the catch-all chain, and the matcher would skip the filter for its requests"
        } else if servers.has_nested_servers() {
            "a server's host is below another server's wildcard, and the matcher would skip the filter for a request \
             whose SNI the wildcard matched but whose host names the other server (\"b.w.example.com:x.w.example.com\")"
        } else {
            "with on_missing_sni: reject, the matcher would skip the filter for a connection without SNI and an \
             empty :authority"
        };
        return Err(ConfigError::invalid(
            FieldPath::root().field("same_name_matcher"),
            format!(
                "{text:?} is too weak for this configuration: {why}; use {:?} in the matcher and here",
                required.text()
            ),
        ));
    }
    Ok(test)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> ConfigError {
        Settings::from_json(json.as_bytes()).expect_err(json)
    }

    #[test]
    fn bad_configurations_name_the_field() {
        let e = refused(r#"{"servers":[{"hosts":["a.*.com"]}]}"#);
        assert_eq!(e.field.to_string(), "servers[0].hosts[0]");
        assert!(e.problem.to_string().contains("wildcard"), "{e}");
        let e = refused(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com","A.example.com"]}]}"#);
        assert_eq!(e.field.to_string(), "servers[1].hosts");
        assert!(e.problem.to_string().contains("servers[0]"), "{e}");
        let e = refused(r#"{"servers":[{"hosts":["not a host"]}]}"#);
        assert_eq!(e.field.to_string(), "servers[0].hosts[0]");
        let e = refused(r#"{"servers":[{"hosts":[]}]}"#);
        assert_eq!(e.field.to_string(), "servers[0].hosts");
        let e = refused(r#"{"servers":[{"hosts":["*example.com"]}]}"#);
        assert_eq!(e.field.to_string(), "servers[0].hosts[0]");
        let e = refused(r#"{"servers":[{"hosts":["a/b/c.example.com"]}]}"#);
        assert_eq!(e.field.to_string(), "servers[0].hosts[0]");
        let e = refused(r#"{"exempt_paths":["well-known"]}"#);
        assert_eq!(e.field.to_string(), "exempt_paths[0]");
        let e = refused(r#"{"exempt_paths":["/ok/","/a/../b"]}"#);
        assert_eq!(e.field.to_string(), "exempt_paths[1]");
        let e = refused(r#"{"servers":[{"hosts":["a.example.com."]}]}"#);
        assert!(e.problem.to_string().contains("trailing dot"), "{e}");
        let body = format!(r#"{{"response_body":"{}"}}"#, "x".repeat(MAX_RESPONSE_BODY + 1));
        assert_eq!(refused(&body).field.to_string(), "response_body");
    }

    #[test]
    fn the_default_settings_are_the_empty_configurations() {
        assert_eq!(Settings::default(), PluginConfig::default().validate().unwrap());
    }

    #[test]
    fn the_field_is_a_path_of_segments() {
        let e = refused(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com","A.example.com"]}]}"#);
        let servers = FieldPath::root().field("servers");
        assert_eq!(e.field.segments(), servers.index(1).field("hosts").segments());
        assert_eq!(
            e.field.segments(),
            [Segment::Field("servers".into()), Segment::Index(1), Segment::Field("hosts".into())]
        );
        assert_eq!(e.field.server_index(), Some(1));
        assert_eq!(e.problem, Problem::HostListedTwice { host: "a.example.com".into(), first: servers.index(0) });
        assert_eq!(
            e.to_string(),
            "invalid configuration: servers[1].hosts: host \"a.example.com\" is already listed by servers[0]; \
             a host belongs to one server"
        );
        let named = e.naming_servers(|n| (n == 0).then(|| "gw/a".to_string()));
        assert_eq!(
            named,
            "invalid configuration: servers[1].hosts: host \"a.example.com\" is already listed by servers[0] (gw/a); \
             a host belongs to one server"
        );
        let e = refused(r#"{"servers":[{"hosts":["a.*.com"]}]}"#);
        assert!(e
            .naming_servers(|n| Some(format!("#{n}")))
            .starts_with("invalid configuration: servers[0] (#0).hosts[0]: "));
        let e = refused("[]");
        assert_eq!((e.field.clone(), e.field.server_index()), (FieldPath::root(), None));
        assert_eq!(e.naming_servers(|_| Some("x".into())), e.to_string());
        assert_eq!(refused(r#"{"exempt_paths":["x"]}"#).field.server_index(), None);
    }

    #[test]
    fn the_matcher_in_front_must_be_strong_enough() {
        let plain = SameNameTest::Plain.text();
        let no_dot = SameNameTest::NoTrailingDot.text();
        let host_name = SameNameTest::HostName.text();
        let ok = |json: String| Settings::from_json(json.as_bytes()).unwrap().same_name_matcher;
        assert_eq!(ok(format!(r#"{{"same_name_matcher":"{plain}"}}"#)), Some(SameNameTest::Plain));
        assert_eq!(
            ok(format!(r#"{{"servers":[{{"hosts":["*"]}}],"same_name_matcher":"{host_name}"}}"#)),
            Some(SameNameTest::HostName)
        );
        for weak in [plain, no_dot] {
            let e = refused(&format!(r#"{{"servers":[{{"hosts":["*"]}}],"same_name_matcher":"{weak}"}}"#));
            assert_eq!(e.field.to_string(), "same_name_matcher");
            let problem = e.problem.to_string();
            assert!(
                problem.contains("catch-all") && problem.contains("b.example.com:443") && problem.contains("matches(")
            );
        }
        let nested = r#"{"servers":[{"hosts":["*.w.example.com"]},{"hosts":["b.w.example.com"]}]"#;
        let e = refused(&format!(r#"{nested},"same_name_matcher":"{plain}"}}"#));
        assert!(e.problem.to_string().contains("below another server's wildcard"), "{e}");
        assert_eq!(ok(format!(r#"{nested},"same_name_matcher":"{host_name}"}}"#)), Some(SameNameTest::HostName));
        let e = refused(&format!(r#"{{"on_missing_sni":"reject","same_name_matcher":"{no_dot}"}}"#));
        assert!(e.problem.to_string().contains("reject"), "{e}");
        let e = refused(r#"{"same_name_matcher":"true"}"#);
        assert!(e.problem.to_string().contains("not a matcher sni-guard knows"), "{e}");
    }
}
