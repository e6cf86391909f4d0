//! Building a request: the headers, the connection's properties, and the response the
//! upstream would send, with defaults a plain HTTP/2 GET over TLS would have.

use crate::abi::{self, Pairs};
use crate::error::HarnessError;
use crate::outcome::Outcome;
use crate::plugin::{Plugin, StreamId};

/// The path of the TLS SNI property.
pub const SNI: &[&str] = &["connection", "requested_server_name"];
/// The path of the downstream protocol property ("HTTP/1.1", "HTTP/2", "HTTP/3").
pub const PROTOCOL: &[&str] = &["request", "protocol"];

/// What the host knows about one stream before the module sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The root context (plugin) the stream runs under; `None`: the first one.
    pub root: Option<u32>,
    pub headers: Pairs,
    /// Properties by ABI path (segments each followed by NUL).
    pub properties: Vec<(Vec<u8>, Vec<u8>)>,
    /// The upstream's response headers, played to `proxy_on_response_headers` when the
    /// module did not answer itself.
    pub response_headers: Pairs,
    /// Whether the request headers end the stream (no body): true for a GET.
    pub end_of_stream: bool,
}

impl Default for Request {
    /// `GET / HTTPS` over HTTP/2, no `:authority`, no SNI; the upstream answers 200.
    fn default() -> Request {
        let pair = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
        Request {
            root: None,
            headers: vec![pair(":method", "GET"), pair(":scheme", "https"), pair(":path", "/")],
            properties: vec![(abi::property_path(PROTOCOL), b"HTTP/2".to_vec())],
            response_headers: vec![pair(":status", "200")],
            end_of_stream: true,
        }
    }
}

impl Request {
    /// Sets a header, replacing any value it had (names are lower-cased, as Envoy stores them).
    pub fn set_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        let name = name.to_ascii_lowercase().into_bytes();
        self.headers.retain(|(k, _)| *k != name);
        self.headers.push((name, value.as_ref().to_vec()));
    }

    pub fn set_property(&mut self, path: &[&str], value: impl AsRef<[u8]>) {
        let path = abi::property_path(path);
        self.properties.retain(|(p, _)| *p != path);
        self.properties.push((path, value.as_ref().to_vec()));
    }

    pub fn remove_property(&mut self, path: &[&str]) {
        let path = abi::property_path(path);
        self.properties.retain(|(p, _)| *p != path);
    }
}

/// `plugin.request().sni("a.example.com").authority("b.example.com").send()`.
#[must_use = "a request does nothing until send() or open()"]
pub struct RequestBuilder<'p> {
    plugin: &'p mut Plugin,
    request: Request,
}

impl<'p> RequestBuilder<'p> {
    pub(crate) fn new(plugin: &'p mut Plugin) -> Self {
        RequestBuilder { plugin, request: Request::default() }
    }

    /// Runs the stream under another root context of the VM (from `Plugin::add_root`), as
    /// Envoy does for the filters of another configuration sharing the VM.
    pub fn root(mut self, root: u32) -> Self {
        self.request.root = Some(root);
        self
    }

    /// The connection's SNI (`connection.requested_server_name`); without it the property is
    /// absent (NotFound).
    pub fn sni(self, sni: impl AsRef<[u8]>) -> Self {
        self.property(SNI, sni)
    }

    pub fn authority(self, authority: impl AsRef<[u8]>) -> Self {
        self.header(":authority", authority)
    }

    pub fn path(self, path: impl AsRef<[u8]>) -> Self {
        self.header(":path", path)
    }

    pub fn method(self, method: &str) -> Self {
        self.header(":method", method)
    }

    /// The downstream protocol (`request.protocol`): "HTTP/1.1", "HTTP/2" (the default)...
    pub fn protocol(self, protocol: &str) -> Self {
        self.property(PROTOCOL, protocol)
    }

    /// Sets a request header, replacing any previous value.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.request.set_header(name, value);
        self
    }

    /// Adds one more value of a request header.
    pub fn add_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.request.headers.push((name.to_ascii_lowercase().into_bytes(), value.as_ref().to_vec()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.request.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name.as_bytes()));
        self
    }

    /// Any property, by path segments: `.property(&["source", "address"], "10.0.0.1:1234")`.
    pub fn property(mut self, path: &[&str], value: impl AsRef<[u8]>) -> Self {
        self.request.set_property(path, value);
        self
    }

    pub fn without_property(mut self, path: &[&str]) -> Self {
        self.request.remove_property(path);
        self
    }

    /// Replaces the upstream's response headers (default `:status: 200`).
    pub fn response_headers(mut self, pairs: &[(&str, &str)]) -> Self {
        self.request.response_headers =
            pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        self
    }

    /// Runs the whole stream: context create, request headers, response headers, log, done,
    /// delete.
    pub fn send(self) -> Result<Outcome, HarnessError> {
        let id = self.plugin.open(self.request)?;
        self.plugin.request_headers(id)?;
        self.plugin.finish(id)
    }

    /// Creates the stream's context only, for interleaving streams by hand with
    /// `Plugin::request_headers` and `Plugin::finish`.
    pub fn open(self) -> Result<StreamId, HarnessError> {
        self.plugin.open(self.request)
    }
}
