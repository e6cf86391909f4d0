//! The HTTP stream: one export, `proxy_on_request_headers`, with no per-stream state.

use crate::metrics::Counter;
use crate::stream::{on_request_headers, Action, StreamHost};

use super::hostcalls::{self, HostBytes};
use super::root::{with_root, Root};

/// proxy-wasm `FilterHeadersStatus`: Continue 0, StopIteration 1.
const CONTINUE: u32 = 0;
const STOP_ITERATION: u32 = 1;

struct EnvoyStream<'a> {
    root: &'a Root,
}

impl StreamHost for EnvoyStream<'_> {
    type Bytes = HostBytes;

    fn confirms_same_name(&mut self) -> bool {
        self.root.same_name_check.is_some_and(hostcalls::expression_succeeds)
    }

    fn requested_server_name(&mut self) -> Option<HostBytes> {
        hostcalls::property(b"connection\0requested_server_name\0")
    }

    fn request_header(&mut self, name: &str) -> Option<HostBytes> {
        hostcalls::request_header(name)
    }

    fn is_http1(&mut self) -> bool {
        hostcalls::property(b"request\0protocol\0").is_some_and(|p| p.as_ref().starts_with(b"HTTP/1"))
    }

    fn send_local_response(&mut self, status: u32, details: &str, headers: &[(&str, &str)], body: &[u8]) {
        hostcalls::send_local_response(status, details, headers, body);
    }

    fn increment(&mut self, counter: Counter, by: u64) {
        self.root.increment(counter, by);
    }
}

#[no_mangle]
// `end_of_stream` is an i32 in the ABI: taken as u32, since any value but 0 or 1 would be
// undefined behaviour as a Rust bool.
pub extern "C" fn proxy_on_request_headers(_context_id: u32, _num_headers: usize, _end_of_stream: u32) -> u32 {
    let action = with_root(|root| {
        let mut counts = std::mem::take(&mut root.counts);
        let shared: &Root = root;
        // The SNI and :authority land in the scratch area: no heap allocation on the fast path.
        let action = super::scratch::during(|| {
            on_request_headers(&shared.settings, &mut counts, &mut EnvoyStream { root: shared })
        });
        root.counts = counts;
        action
    });
    match action {
        Some(Action::Pause) => STOP_ITERATION,
        // Not configured: Envoy does not run a plugin whose configuration failed, so this is
        // only reachable by a host that skips proxy_on_configure; pass rather than guess.
        Some(Action::Continue) | None => CONTINUE,
    }
}
