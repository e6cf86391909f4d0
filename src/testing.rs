//! A `StreamHost` with fixed values that records what the filter did: the seam's test double,
//! shared by the unit tests and the decision-table test. Plain Rust; the wasm build drops it.

use std::collections::{BTreeMap, HashMap};

use crate::metrics::Counter;
use crate::stream::StreamHost;

/// A local response: status, headers, body.
pub type Reply = (u32, Vec<(String, String)>, Vec<u8>);

#[derive(Debug, Default)]
pub struct FakeHost {
    pub sni: Option<Vec<u8>>,
    pub headers: HashMap<String, Vec<u8>>,
    /// `request.protocol`, e.g. "HTTP/1.1" or "HTTP/2".
    pub protocol: String,
    /// The CEL expression this host evaluates for `confirms_same_name`, as Envoy does once the
    /// plugin created it (`cel::same_name_expression`); `None`: a host without CEL.
    pub same_name_expression: Option<&'static str>,
    /// How often `confirms_same_name`, `requested_server_name` and `request_header` were called.
    pub calls: Calls,
    pub reply: Option<Reply>,
    pub counters: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    pub confirms_same_name: u32,
    pub requested_server_name: u32,
    pub request_header: u32,
}

impl FakeHost {
    /// A request on a connection opened with `sni`, for `authority` and `path`, over HTTP/2.
    pub fn request(sni: &str, authority: &str, path: &str) -> FakeHost {
        let mut host = FakeHost { sni: Some(sni.into()), protocol: "HTTP/2".into(), ..FakeHost::default() };
        host.headers.insert(":authority".into(), authority.into());
        host.headers.insert(":path".into(), path.into());
        host
    }
}

impl StreamHost for FakeHost {
    type Bytes = Vec<u8>;
    fn confirms_same_name(&mut self) -> bool {
        self.calls.confirms_same_name += 1;
        let Some(expression) = self.same_name_expression else { return false };
        let authority = self.headers.get(":authority").map(Vec::as_slice);
        crate::cel::succeeds(expression, self.sni.as_deref(), authority)
            .unwrap_or_else(|| panic!("FakeHost cannot evaluate {expression:?}"))
    }
    fn requested_server_name(&mut self) -> Option<Vec<u8>> {
        self.calls.requested_server_name += 1;
        self.sni.clone()
    }
    fn request_header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.calls.request_header += 1;
        self.headers.get(name).cloned()
    }
    fn is_http1(&mut self) -> bool {
        self.protocol.starts_with("HTTP/1")
    }
    fn send_local_response(&mut self, status: u32, _details: &str, headers: &[(&str, &str)], body: &[u8]) {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.reply = Some((status, headers, body.to_vec()));
    }
    fn increment(&mut self, counter: Counter, by: u64) {
        *self.counters.entry(counter.name().to_string()).or_default() += by;
    }
}
