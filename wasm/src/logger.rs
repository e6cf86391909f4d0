//! `log` records to Envoy's log through `proxy_log`.

use crate::hostcalls;

/// proxy-wasm log levels: trace 0, debug 1, info 2, warn 3, error 4, critical 5.
fn abi_level(level: log::Level) -> u32 {
    match level {
        log::Level::Trace => 0,
        log::Level::Debug => 1,
        log::Level::Info => 2,
        log::Level::Warn => 3,
        log::Level::Error => 4,
    }
}

fn filter_for(abi_level: u32) -> log::LevelFilter {
    match abi_level {
        0 => log::LevelFilter::Trace,
        1 => log::LevelFilter::Debug,
        2 => log::LevelFilter::Info,
        3 => log::LevelFilter::Warn,
        _ => log::LevelFilter::Error,
    }
}

struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            hostcalls::log(abi_level(record.level()), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static LOGGER: HostLogger = HostLogger;

/// Installs the logger (once) and takes Envoy's current level, so that a disabled level costs
/// no host call per request.
pub fn init() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(hostcalls::log_level().map_or(log::LevelFilter::Info, filter_for));
}
