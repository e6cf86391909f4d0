//! Foreign functions: the host's own extensions behind `proxy_call_foreign_function` (Envoy's
//! `expr_create`, `expr_evaluate`, `compress`, ...). The harness registers none by itself, as a
//! host without them (a call gets NotFound); a test registers those it plays, each a closure
//! that sees the calling stream's headers and properties.

use std::sync::Arc;

use crate::abi::{self, Status, StreamMap};
use crate::state::HostState;

/// A foreign function: the arguments in, the result bytes (or a status other than Ok) out.
pub type ForeignFunction = Arc<dyn Fn(&ForeignCall<'_>, &[u8]) -> Result<Vec<u8>, Status> + Send + Sync>;

/// What a foreign function sees of the host when it is called.
pub struct ForeignCall<'a> {
    pub(crate) state: &'a HostState,
}

impl ForeignCall<'_> {
    /// Whether a stream's callback made the call (else a root callback: start-up, configure, tick).
    pub fn in_stream(&self) -> bool {
        self.state.current.is_some()
    }

    /// The root context of the call: the calling stream's, or the root whose callback runs.
    /// Envoy keeps some foreign functions' state per root context (CEL expressions).
    pub fn root_context(&self) -> u32 {
        self.state.active_root
    }

    /// The calling stream's request header `name` (first value); `None` outside a stream.
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        let stream = self.state.streams.get(&self.state.current?)?;
        crate::host::first_value(&stream.maps[StreamMap::RequestHeaders as usize], name.as_bytes())
    }

    /// A property as `proxy_get_property` finds it, by path segments, e.g.
    /// `&["connection", "requested_server_name"]`.
    pub fn property(&self, path: &[&str]) -> Option<&[u8]> {
        self.state.property(&abi::property_path(path))
    }
}
