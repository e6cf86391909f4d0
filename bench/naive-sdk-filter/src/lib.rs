//! A naive proxy-wasm SDK filter: the SDK's dispatcher and `HttpContext`, reading the SNI and
//! `:authority` on every request and answering 421 when the raw names differ. Only for the
//! benchmark's comparison row.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream;

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let sni = self.get_property(vec!["connection", "requested_server_name"]).unwrap_or_default();
        let authority = self.get_http_request_header(":authority").unwrap_or_default();
        let host = authority.split(':').next().unwrap_or_default();
        if !sni.is_empty() && host.as_bytes() != sni.as_slice() {
            self.send_http_response(421, vec![], Some(b"misdirected request\n"));
            return Action::Pause;
        }
        Action::Continue
    }
}
