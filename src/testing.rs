//! A `StreamHost` with fixed values that records what the filter did: the seam's test double,
//! shared by the unit tests and the decision-table test. Plain Rust; the wasm build drops it.

use std::collections::{BTreeMap, HashMap};

use crate::cel::SameNameTest;
use crate::metrics::{Counter, ServerPair};
use crate::stream::{Names, RootId, StreamHost};

/// A local response: status, headers, body.
pub type Reply = (u32, Vec<(String, String)>, Vec<u8>);

#[derive(Debug, Default)]
pub struct FakeHost {
    pub sni: Option<Vec<u8>>,
    pub headers: HashMap<String, Vec<u8>>,
    /// `request.protocol`, e.g. "HTTP/1.1" or "HTTP/2".
    pub protocol: String,
    /// The same-name test this host applies before giving the names, as Envoy does with the
    /// module's CEL expression (`cel`); `None`: a host without CEL, or behind a matcher.
    pub same_name_test: Option<SameNameTest>,
    /// The root context this host says the stream belongs to, if any.
    pub root: Option<RootId>,
    pub calls: Calls,
    pub reply: Option<Reply>,
    pub counters: BTreeMap<String, u64>,
    pub dry_run_lines: Vec<String>,
    /// The access-log mark, if the filter set one.
    pub mark: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    pub names: u32,
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
    fn names(&mut self) -> Names<Vec<u8>> {
        self.calls.names += 1;
        let authority = self.headers.get(":authority").cloned();
        // For `HostName` the module's check of the name Envoy hands over (`cel::read_value`)
        // completes the test.
        if self.same_name_test.is_some_and(|test| test.holds(self.sni.as_deref(), authority.as_deref())) {
            return Names::Same;
        }
        Names::Read { root: self.root, sni: self.sni.clone(), authority }
    }
    fn request_header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.calls.request_header += 1;
        self.headers.get(name).cloned()
    }
    fn send_local_response(&mut self, status: u32, _details: &str, headers: &[(&str, &str)], body: &[u8]) {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.reply = Some((status, headers, body.to_vec()));
    }
    fn count(&mut self, counter: Counter) {
        *self.counters.entry(counter.name().to_string()).or_default() += 1;
    }
    fn count_pair(&mut self, pair: &ServerPair<'_>) {
        *self.counters.entry(pair.metric_name()).or_default() += 1;
    }
    fn mark(&mut self, decision: &str) {
        self.mark = Some(decision.to_string());
    }
    fn log_dry_run(&mut self, line: &str) {
        self.dry_run_lines.push(line.to_string());
    }
}
