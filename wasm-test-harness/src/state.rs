//! The host's side of one plugin: what Envoy knows about the plugin and its open streams, and
//! what the module told it (logs, local responses, metrics). Host calls read and write this.

use std::collections::{BTreeMap, HashMap};

use wasmtime::{Memory, TypedFunc};

use crate::abi::{LogLevel, MetricType, Pairs, StreamMap};
use crate::foreign::ForeignFunction;
use crate::outcome::{LocalResponse, LogLine};

/// A stream's state while it is open.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// The root context (plugin) the stream belongs to.
    pub root: u32,
    /// Properties by ABI path (`request\0protocol\0`).
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    /// Request headers, request trailers, response headers, response trailers.
    pub maps: [Pairs; 4],
    pub local_response: Option<LocalResponse>,
    pub logs: Vec<LogLine>,
}

impl StreamState {
    pub fn map(&mut self, map: StreamMap) -> &mut Pairs {
        &mut self.maps[map as usize]
    }
}

/// What the host keeps per root context.
#[derive(Debug, Default)]
pub(crate) struct RootState {
    /// The tick period this root asked for (0: none).
    pub tick_period_ms: u32,
}

/// One metric the module defined.
#[derive(Debug)]
struct Metric {
    kind: MetricType,
    name: String,
    value: u64,
}

/// Metrics as Envoy keeps them for a VM: defining a name twice gives the same id.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    all: Vec<Metric>,
}

impl Metrics {
    /// Ids carry the type in their low bits and start above zero, as in Envoy, so that a
    /// module using an uninitialised id (0) gets NotFound instead of some other metric.
    fn id(index: usize, kind: MetricType) -> u32 {
        ((index as u32 + 1) << 2) | kind as u32
    }

    fn index(id: u32) -> usize {
        ((id >> 2) as usize).wrapping_sub(1)
    }

    pub fn define(&mut self, kind: MetricType, name: String) -> u32 {
        if let Some(i) = self.all.iter().position(|m| m.kind == kind && m.name == name) {
            return Metrics::id(i, kind);
        }
        self.all.push(Metric { kind, name, value: 0 });
        Metrics::id(self.all.len() - 1, kind)
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Metric> {
        let metric = self.all.get_mut(Metrics::index(id))?;
        (Metrics::id(Metrics::index(id), metric.kind) == id).then_some(metric)
    }

    pub fn get(&mut self, id: u32) -> Option<u64> {
        self.get_mut(id).map(|m| m.value)
    }

    /// `Err(())` for a histogram, a counter going down, or a gauge below zero: Envoy's
    /// BadArgument.
    pub fn increment(&mut self, id: u32, offset: i64) -> Option<Result<(), ()>> {
        let metric = self.get_mut(id)?;
        let next = match metric.kind {
            MetricType::Counter if offset >= 0 => metric.value.checked_add(offset as u64),
            MetricType::Gauge => metric.value.checked_add_signed(offset),
            _ => None,
        };
        Some(next.map(|v| metric.value = v).ok_or(()))
    }

    /// Sets a gauge, or records a histogram sample (the harness keeps the last one).
    pub fn record(&mut self, id: u32, value: u64) -> Option<Result<(), ()>> {
        let metric = self.get_mut(id)?;
        Some(match metric.kind {
            MetricType::Gauge | MetricType::Histogram => {
                metric.value = value;
                Ok(())
            }
            _ => Err(()),
        })
    }

    pub fn by_name(&self) -> BTreeMap<String, u64> {
        self.all.iter().map(|m| (m.name.clone(), m.value)).collect()
    }

    pub fn value(&self, name: &str) -> Option<u64> {
        self.all.iter().find(|m| m.name == name).map(|m| m.value)
    }
}

/// The host state wasmtime's `Store` carries.
pub(crate) struct HostState {
    /// The module's memory and allocator, once instantiated.
    pub memory: Option<Memory>,
    pub allocator: Option<TypedFunc<i32, i32>>,
    pub log_level: LogLevel,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    /// Properties every context sees (a stream's own come first).
    pub plugin_properties: HashMap<Vec<u8>, Vec<u8>>,
    /// The first root context, the one `PluginBuilder::load` configures.
    pub root_context_id: u32,
    /// Every root context of this VM, by id: Envoy runs one per plugin configuration.
    pub roots: BTreeMap<u32, RootState>,
    /// The root whose callback runs, or whose stream's callback runs.
    pub active_root: u32,
    /// The stream whose callback is running; `None` while a root callback runs. Host calls
    /// about "the current stream" act on it, as Envoy's effective context.
    pub current: Option<u32>,
    pub streams: HashMap<u32, StreamState>,
    /// Lines logged outside any stream (start-up, configuration, tick).
    pub root_logs: Vec<LogLine>,
    pub metrics: Metrics,
    pub clock_nanos: u64,
    /// WASI output not yet ended by a newline.
    pub partial_output: [Vec<u8>; 2],
    /// What the module wrote to stderr during the current export call: a panic's message.
    pub call_stderr: String,
    /// State of the deterministic `random_get`.
    pub random_state: u64,
    /// Foreign functions by name (`proxy_call_foreign_function`).
    pub foreign_functions: HashMap<Vec<u8>, ForeignFunction>,
}

impl HostState {
    pub fn new(log_level: LogLevel, vm_configuration: Vec<u8>, plugin_configuration: Vec<u8>) -> HostState {
        HostState {
            memory: None,
            allocator: None,
            log_level,
            vm_configuration,
            plugin_configuration,
            plugin_properties: HashMap::new(),
            root_context_id: 1,
            roots: BTreeMap::from([(1, RootState::default())]),
            active_root: 1,
            current: None,
            streams: HashMap::new(),
            root_logs: Vec::new(),
            metrics: Metrics::default(),
            // A fixed start (2023-11-14T22:13:20Z) keeps tests deterministic.
            clock_nanos: 1_700_000_000 * 1_000_000_000,
            partial_output: [Vec::new(), Vec::new()],
            call_stderr: String::new(),
            random_state: 0x9e37_79b9_7f4a_7c15,
            foreign_functions: HashMap::new(),
        }
    }

    pub fn current_stream(&mut self) -> Option<&mut StreamState> {
        let id = self.current?;
        self.streams.get_mut(&id)
    }

    /// Records a line where a test will look for it: the running stream's outcome, or the
    /// plugin's own log. Lines below the plugin's level are dropped, as Envoy does.
    pub fn log(&mut self, level: LogLevel, message: String) {
        if (level as u32) < (self.log_level as u32) {
            return;
        }
        let line = LogLine { level, message };
        match self.current_stream() {
            Some(stream) => stream.logs.push(line),
            None => self.root_logs.push(line),
        }
    }

    pub fn property(&self, path: &[u8]) -> Option<&[u8]> {
        let stream = self.current.and_then(|id| self.streams.get(&id));
        stream.and_then(|s| s.properties.get(path)).or_else(|| self.plugin_properties.get(path)).map(Vec::as_slice)
    }

    /// WASI output: each complete line becomes a log line (stdout info, stderr error).
    pub fn output(&mut self, stderr: bool, bytes: &[u8]) {
        if stderr {
            self.call_stderr.push_str(&String::from_utf8_lossy(bytes));
        }
        let buffer = &mut self.partial_output[stderr as usize];
        buffer.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line[..end]).into_owned());
        }
        let level = if stderr { LogLevel::Error } else { LogLevel::Info };
        for line in lines {
            self.log(level, line);
        }
    }

    /// Ends an export call: output without a final newline is still a line.
    pub fn flush_output(&mut self) {
        for (i, level) in [(0, LogLevel::Info), (1, LogLevel::Error)] {
            if !self.partial_output[i].is_empty() {
                let line = std::mem::take(&mut self.partial_output[i]);
                self.log(level, String::from_utf8_lossy(&line).into_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_behave_like_envoys() {
        let mut m = Metrics::default();
        let c = m.define(MetricType::Counter, "c".into());
        assert_eq!(m.define(MetricType::Counter, "c".into()), c, "same name, same id");
        let g = m.define(MetricType::Gauge, "g".into());
        assert_eq!(m.get(0), None, "id 0 is never a metric");
        assert_eq!(m.increment(c, 2), Some(Ok(())));
        assert_eq!(m.increment(c, -1), Some(Err(())), "a counter does not go down");
        assert_eq!(m.increment(g, -1), Some(Err(())), "a gauge does not go below zero");
        assert_eq!(m.record(g, 7), Some(Ok(())));
        assert_eq!(m.increment(g, -2), Some(Ok(())));
        assert_eq!(m.get(c), Some(2));
        assert_eq!(m.get(g), Some(5));
        assert_eq!(m.get(c + 1), None, "wrong type bits");
        assert_eq!(m.value("g"), Some(5));
    }
}
