//! The proxy-wasm ABI v0.2.1's numbers, in one place: what a host call returns (`status`), the
//! header map, buffer and metric a call acts on, log levels, and what a filter callback returns
//! (`action`). Plain constants, compiled natively too, so a test checks each against the
//! proxy-wasm crate's `types`, the SDK's numbering of the same ABI.

/// What every host call returns (`proxy_status_t`).
pub mod status {
    pub const OK: u32 = 0;
    /// No such header, property or foreign function (a host without CEL).
    pub const NOT_FOUND: u32 = 1;
    /// Envoy's `expr_create` for an expression it cannot compile, among others.
    pub const BAD_ARGUMENT: u32 = 2;
    /// What Envoy's `expr_evaluate` answers for a value it cannot hand over, such as CEL's
    /// `null`: nothing was allocated in the module.
    pub const SERIALIZATION_FAILURE: u32 = 3;
    pub const PARSE_FAILURE: u32 = 4;
    pub const EMPTY: u32 = 7;
    pub const CAS_MISMATCH: u32 = 8;
    /// Envoy's `expr_evaluate` when the evaluation fails (no `:authority`).
    pub const INTERNAL_FAILURE: u32 = 10;
}

/// Which header map a header call reads (`proxy_map_type_t`).
pub mod map_type {
    pub const HTTP_REQUEST_HEADERS: u32 = 0;
    pub const HTTP_REQUEST_TRAILERS: u32 = 1;
    pub const HTTP_RESPONSE_HEADERS: u32 = 2;
    pub const HTTP_RESPONSE_TRAILERS: u32 = 3;
}

/// Which buffer `proxy_get_buffer_bytes` reads (`proxy_buffer_type_t`).
pub mod buffer_type {
    pub const VM_CONFIGURATION: u32 = 6;
    pub const PLUGIN_CONFIGURATION: u32 = 7;
}

/// The kind of metric `proxy_define_metric` defines (`proxy_metric_type_t`).
pub mod metric_type {
    pub const COUNTER: u32 = 0;
    pub const GAUGE: u32 = 1;
    pub const HISTOGRAM: u32 = 2;
}

/// `proxy_log`'s and `proxy_get_log_level`'s levels (`proxy_log_level_t`).
pub mod log_level {
    pub const TRACE: u32 = 0;
    pub const DEBUG: u32 = 1;
    pub const INFO: u32 = 2;
    pub const WARN: u32 = 3;
    pub const ERROR: u32 = 4;
    pub const CRITICAL: u32 = 5;
}

/// What `proxy_on_request_headers` returns (`proxy_action_t`; Envoy's `FilterHeadersStatus`).
pub mod action {
    pub const CONTINUE: u32 = 0;
    /// Envoy's `StopIteration`: after a local reply, the request goes no further.
    pub const PAUSE: u32 = 1;
}

/// `proxy_send_local_response`'s `grpc_status` for a reply that is not a gRPC one. (The SDK
/// passes the same -1 as a literal; it has no name for it.)
pub const NO_GRPC_STATUS: i32 = -1;

#[cfg(test)]
mod tests {
    use proxy_wasm::types::{Action, BufferType, LogLevel, MapType, MetricType, Status};

    use super::*;

    #[test]
    fn the_numbers_are_the_sdks() {
        for (ours, sdk) in [
            (status::OK, Status::Ok),
            (status::NOT_FOUND, Status::NotFound),
            (status::BAD_ARGUMENT, Status::BadArgument),
            (status::SERIALIZATION_FAILURE, Status::SerializationFailure),
            (status::PARSE_FAILURE, Status::ParseFailure),
            (status::EMPTY, Status::Empty),
            (status::CAS_MISMATCH, Status::CasMismatch),
            (status::INTERNAL_FAILURE, Status::InternalFailure),
        ] {
            assert_eq!(ours, sdk as u32, "{sdk:?}");
        }
        for (ours, sdk) in [
            (map_type::HTTP_REQUEST_HEADERS, MapType::HttpRequestHeaders),
            (map_type::HTTP_REQUEST_TRAILERS, MapType::HttpRequestTrailers),
            (map_type::HTTP_RESPONSE_HEADERS, MapType::HttpResponseHeaders),
            (map_type::HTTP_RESPONSE_TRAILERS, MapType::HttpResponseTrailers),
        ] {
            assert_eq!(ours, sdk as u32, "{sdk:?}");
        }
        for (ours, sdk) in [
            (buffer_type::VM_CONFIGURATION, BufferType::VmConfiguration),
            (buffer_type::PLUGIN_CONFIGURATION, BufferType::PluginConfiguration),
        ] {
            assert_eq!(ours, sdk as u32, "{sdk:?}");
        }
        for (ours, sdk) in [
            (metric_type::COUNTER, MetricType::Counter),
            (metric_type::GAUGE, MetricType::Gauge),
            (metric_type::HISTOGRAM, MetricType::Histogram),
        ] {
            assert_eq!(ours, sdk as u32, "{sdk:?}");
        }
        for (ours, sdk) in [
            (log_level::TRACE, LogLevel::Trace),
            (log_level::DEBUG, LogLevel::Debug),
            (log_level::INFO, LogLevel::Info),
            (log_level::WARN, LogLevel::Warn),
            (log_level::ERROR, LogLevel::Error),
            (log_level::CRITICAL, LogLevel::Critical),
        ] {
            assert_eq!(ours, sdk as u32, "{sdk:?}");
        }
        for (ours, sdk) in [(action::CONTINUE, Action::Continue), (action::PAUSE, Action::Pause)] {
            assert_eq!(ours, sdk as u32, "{sdk:?}");
        }
    }
}
