//! `log` records to Envoy's log through `proxy_log`.

use crate::abi::log_level;
use crate::hostcalls;

fn abi_level(level: log::Level) -> u32 {
    match level {
        log::Level::Trace => log_level::TRACE,
        log::Level::Debug => log_level::DEBUG,
        log::Level::Info => log_level::INFO,
        log::Level::Warn => log_level::WARN,
        log::Level::Error => log_level::ERROR,
    }
}

/// `critical` (no `log` level) and anything unknown count as `error`.
fn filter_for(abi_level: u32) -> log::LevelFilter {
    match abi_level {
        log_level::TRACE => log::LevelFilter::Trace,
        log_level::DEBUG => log::LevelFilter::Debug,
        log_level::INFO => log::LevelFilter::Info,
        log_level::WARN => log::LevelFilter::Warn,
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
