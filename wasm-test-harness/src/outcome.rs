//! What a stream produced, as Envoy would have seen it.

use std::collections::BTreeMap;
use std::fmt;

use crate::abi::{Action, LogLevel};

/// One line the module logged: through `proxy_log`, or on stdout (level info) or stderr (level
/// error), which is how Envoy logs a module's WASI output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}] {}", self.level, self.message)
    }
}

/// A reply the module sent with `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    /// `status_code_details`, shown in Envoy's access log as `%RESPONSE_CODE_DETAILS%`.
    pub details: String,
    /// The additional headers, in order (non-UTF-8 bytes replaced, for readable assertions).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `-1` for none.
    pub grpc_status: i32,
}

impl LocalResponse {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One finished stream.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub context_id: u32,
    /// What `proxy_on_request_headers` returned (`Continue` when the module does not export it).
    pub action: Action,
    pub local_response: Option<LocalResponse>,
    /// Lines the module logged during this stream's callbacks, at or above the plugin's level.
    pub logs: Vec<LogLine>,
    /// Every metric the plugin defined, by name, after the stream ended.
    pub metrics: BTreeMap<String, u64>,
}

impl Outcome {
    /// The status of the local response, if one was sent.
    pub fn status(&self) -> Option<u32> {
        self.local_response.as_ref().map(|r| r.status)
    }

    /// Whether the request went on to the upstream: continued, and no local response.
    pub fn passed(&self) -> bool {
        self.action == Action::Continue && self.local_response.is_none()
    }

    /// A metric's value after the stream; 0 when the module never defined it.
    pub fn metric(&self, name: &str) -> u64 {
        self.metrics.get(name).copied().unwrap_or(0)
    }

    /// Whether some log line contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logs.iter().any(|l| l.message.contains(text))
    }
}
