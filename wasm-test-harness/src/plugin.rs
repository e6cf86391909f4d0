//! `Plugin`: one module instance playing one Envoy worker's VM with one plugin (root context)
//! configured on it, and the streams that worker runs through it.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{
    Engine, ExternType, Instance, Linker, Module, Store, Trap, TypedFunc, WasmBacktrace, WasmParams, WasmResults,
};

use crate::abi::{self, Action, LogLevel, Pairs, Status, StreamMap};
use crate::error::{HarnessError, HostCallError};
use crate::foreign::{ForeignCall, ForeignFunction};
use crate::host;
use crate::outcome::{LogLine, Outcome};
use crate::request::{Request, RequestBuilder};
use crate::state::{HostState, RootState, StreamState};

/// A stream opened with `RequestBuilder::open`, by its context id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId(u32);

impl StreamId {
    pub fn context_id(self) -> u32 {
        self.0
    }
}

/// The exports Envoy calls, resolved once. Each is optional: like Envoy, the harness calls a
/// callback only if the module exports it.
struct Exports {
    on_context_create: Option<TypedFunc<(i32, i32), ()>>,
    on_vm_start: Option<TypedFunc<(i32, i32), i32>>,
    on_configure: Option<TypedFunc<(i32, i32), i32>>,
    on_tick: Option<TypedFunc<i32, ()>>,
    on_request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_log: Option<TypedFunc<i32, ()>>,
    on_done: Option<TypedFunc<i32, i32>>,
    on_delete: Option<TypedFunc<i32, ()>>,
}

/// What the harness keeps about an open stream besides what host calls touch.
struct Pending {
    response_headers: Pairs,
    end_of_stream: bool,
    action: Option<Action>,
}

/// Where the module comes from.
enum Source {
    File(PathBuf),
    /// Wasm binary or WAT text.
    Bytes(Vec<u8>),
}

/// How to load a plugin; `Plugin::load` covers the common case.
#[must_use]
pub struct PluginBuilder {
    source: Source,
    configuration: Vec<u8>,
    vm_configuration: Vec<u8>,
    log_level: LogLevel,
    properties: Vec<(Vec<u8>, Vec<u8>)>,
    foreign_functions: Vec<(Vec<u8>, ForeignFunction)>,
}

impl PluginBuilder {
    /// The plugin configuration (`proxy_on_configure`'s buffer); empty by default.
    pub fn configuration(mut self, configuration: impl AsRef<[u8]>) -> Self {
        self.configuration = configuration.as_ref().to_vec();
        self
    }

    /// The VM configuration (`proxy_on_vm_start`'s buffer); empty by default.
    pub fn vm_configuration(mut self, configuration: impl AsRef<[u8]>) -> Self {
        self.vm_configuration = configuration.as_ref().to_vec();
        self
    }

    /// The level `proxy_get_log_level` reports and below which lines are dropped; Envoy's
    /// default, info, unless set.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// A property every context sees, e.g. `&["plugin_name"]`.
    pub fn property(mut self, path: &[&str], value: impl AsRef<[u8]>) -> Self {
        self.properties.push((abi::property_path(path), value.as_ref().to_vec()));
        self
    }

    /// A foreign function the host offers (`proxy_call_foreign_function`); without one, a call
    /// to that name gets NotFound, as from a host that lacks it.
    pub fn foreign_function(
        mut self,
        name: &str,
        function: impl Fn(&ForeignCall<'_>, &[u8]) -> Result<Vec<u8>, Status> + Send + Sync + 'static,
    ) -> Self {
        self.foreign_functions.push((name.as_bytes().to_vec(), Arc::new(function)));
        self
    }

    /// Compiles, instantiates and starts the plugin the way Envoy does: `_initialize` (or
    /// `_start`), then for the root context `proxy_on_context_create`, `proxy_on_vm_start`
    /// and `proxy_on_configure`. A refusal is an `Err` carrying the module's log lines.
    pub fn load(self) -> Result<Plugin, HarnessError> {
        let bytes = match &self.source {
            Source::File(path) => read_module(path)?,
            Source::Bytes(bytes) => bytes.clone(),
        };
        let module = compile(&bytes)?;
        let mut state = HostState::new(self.log_level, self.vm_configuration, self.configuration);
        state.plugin_properties.extend(self.properties);
        state.foreign_functions.extend(self.foreign_functions);
        let mut store = Store::new(engine(), state);
        let instance = instantiate(&module, &mut store)?;
        let mut plugin = Plugin::new(instance, store, &module)?;
        plugin.start()?;
        Ok(plugin)
    }
}

/// A loaded, configured plugin.
pub struct Plugin {
    store: Store<HostState>,
    exports: Exports,
    instance: Instance,
    pending: HashMap<u32, Pending>,
    next_context_id: u32,
    /// Set by the first trap: Envoy does not call into a crashed VM again.
    crashed: Option<String>,
}

impl Plugin {
    /// Loads the module at `path` with this plugin configuration.
    pub fn load(path: impl AsRef<Path>, configuration: &str) -> Result<Plugin, HarnessError> {
        Plugin::builder(path).configuration(configuration).load()
    }

    pub fn builder(path: impl AsRef<Path>) -> PluginBuilder {
        PluginBuilder::new(Source::File(path.as_ref().to_path_buf()))
    }

    /// A module given as bytes: wasm binary, or WAT text (handy for tiny test modules).
    pub fn from_bytes(bytes: impl AsRef<[u8]>) -> PluginBuilder {
        PluginBuilder::new(Source::Bytes(bytes.as_ref().to_vec()))
    }

    /// Starts building a request on this plugin.
    pub fn request(&mut self) -> RequestBuilder<'_> {
        RequestBuilder::new(self)
    }

    /// Creates a stream's context (`proxy_on_context_create`).
    pub fn open(&mut self, request: Request) -> Result<StreamId, HarnessError> {
        self.alive()?;
        let id = self.next_context_id;
        self.next_context_id += 1;
        let root = request.root.unwrap_or(self.root_id());
        if !self.store.data().roots.contains_key(&root) {
            return Err(HarnessError::UnknownRoot { id: root });
        }
        let mut stream =
            StreamState { root, properties: request.properties.into_iter().collect(), ..StreamState::default() };
        *stream.map(StreamMap::RequestHeaders) = request.headers;
        self.store.data_mut().streams.insert(id, stream);
        let pending =
            Pending { response_headers: request.response_headers, end_of_stream: request.end_of_stream, action: None };
        self.pending.insert(id, pending);
        let f = self.exports.on_context_create.clone();
        self.in_stream(id, |p| p.call_optional("proxy_on_context_create", f, (id as i32, root as i32)))?;
        Ok(StreamId(id))
    }

    /// Plays the request headers (`proxy_on_request_headers`) and returns the module's action.
    pub fn request_headers(&mut self, stream: StreamId) -> Result<Action, HarnessError> {
        let id = stream.0;
        let pending = self.pending.get(&id).ok_or(HarnessError::UnknownStream { id })?;
        let end_of_stream = pending.end_of_stream as i32;
        let count = self.stream_map_len(id, StreamMap::RequestHeaders);
        let f = self.exports.on_request_headers.clone();
        let returned =
            self.in_stream(id, |p| p.call_optional("proxy_on_request_headers", f, (id as i32, count, end_of_stream)))?;
        let action = headers_action("proxy_on_request_headers", returned)?;
        if let Some(pending) = self.pending.get_mut(&id) {
            pending.action = Some(action);
        }
        Ok(action)
    }

    /// Ends the stream as Envoy does: response headers (the module's own local response if it
    /// sent one, else the upstream's), then `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn finish(&mut self, stream: StreamId) -> Result<Outcome, HarnessError> {
        let id = stream.0;
        let pending = self.pending.remove(&id).ok_or(HarnessError::UnknownStream { id })?;
        let action = pending.action.unwrap_or(Action::Continue);
        let local = self.store.data_mut().streams.get(&id).and_then(|s| s.local_response.clone());
        // A paused stream without a reply never gets a response: Envoy would wait, then reset it.
        if action == Action::Continue || local.is_some() {
            let headers = match &local {
                Some(reply) => {
                    let mut headers = vec![(b":status".to_vec(), reply.status.to_string().into_bytes())];
                    headers.extend(reply.headers.iter().map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes())));
                    headers
                }
                None => pending.response_headers,
            };
            let count = headers.len() as i32;
            if let Some(s) = self.store.data_mut().streams.get_mut(&id) {
                *s.map(StreamMap::ResponseHeaders) = headers;
            }
            let f = self.exports.on_response_headers.clone();
            let returned =
                self.in_stream(id, |p| p.call_optional("proxy_on_response_headers", f, (id as i32, count, 1)))?;
            headers_action("proxy_on_response_headers", returned)?;
        }
        let (on_log, on_done, on_delete) =
            (self.exports.on_log.clone(), self.exports.on_done.clone(), self.exports.on_delete.clone());
        self.in_stream(id, |p| {
            p.call_optional("proxy_on_log", on_log, id as i32)?;
            p.call_optional("proxy_on_done", on_done, id as i32)?;
            p.call_optional("proxy_on_delete", on_delete, id as i32)
        })?;
        let state = self.store.data_mut().streams.remove(&id).unwrap_or_default();
        Ok(Outcome {
            context_id: id,
            action,
            local_response: state.local_response,
            logs: state.logs,
            metrics: self.metrics(),
        })
    }

    /// Fires the root context's timer (`proxy_on_tick`), after advancing the clock by the
    /// module's tick period. An error if the module never asked for ticks.
    pub fn tick(&mut self) -> Result<(), HarnessError> {
        self.tick_root(self.root_id())
    }

    /// Fires one root context's timer, after advancing the clock by its tick period.
    pub fn tick_root(&mut self, root: u32) -> Result<(), HarnessError> {
        let period = self.tick_period_of(root)?;
        self.advance_clock(period);
        self.tick_root_now(root)
    }

    /// Fires one root context's timer at the clock's present time, as Envoy fires the timers
    /// of several roots that fall due together (one thread runs them one after the other).
    pub fn tick_root_now(&mut self, root: u32) -> Result<(), HarnessError> {
        self.tick_period_of(root)?;
        let f = self.exports.on_tick.clone();
        self.in_root(root, |p| p.call_optional("proxy_on_tick", f, root as i32)).map(drop)
    }

    fn tick_period_of(&self, root: u32) -> Result<Duration, HarnessError> {
        self.alive()?;
        let period = self.store.data().roots.get(&root).ok_or(HarnessError::UnknownRoot { id: root })?.tick_period_ms;
        if period == 0 {
            return Err(HarnessError::TickNotScheduled);
        }
        Ok(Duration::from_millis(period.into()))
    }

    /// Removes a root context as Envoy does when no filter holds its configuration any more
    /// (proxy-wasm-cpp-host `startShutdown`): `proxy_on_done` and `proxy_on_delete` if the
    /// module exports them; then it gets no more ticks and no streams.
    pub fn remove_root(&mut self, root: u32) -> Result<(), HarnessError> {
        self.alive()?;
        if !self.store.data().roots.contains_key(&root) {
            return Err(HarnessError::UnknownRoot { id: root });
        }
        let (on_done, on_delete) = (self.exports.on_done.clone(), self.exports.on_delete.clone());
        self.in_root(root, |p| {
            p.call_optional("proxy_on_done", on_done, root as i32)?;
            p.call_optional("proxy_on_delete", on_delete, root as i32)
        })?;
        self.store.data_mut().roots.remove(&root);
        Ok(())
    }

    /// Hands the root context a new plugin configuration (`proxy_on_configure` again). A
    /// refusal carries the lines logged meanwhile. (Envoy itself never configures a root
    /// context twice: a new configuration gets a new root context, see `add_root`.)
    pub fn reconfigure(&mut self, configuration: impl AsRef<[u8]>) -> Result<(), HarnessError> {
        self.reconfigure_root(self.root_id(), configuration)
    }

    /// `reconfigure` for another root context of the VM.
    pub fn reconfigure_root(&mut self, root: u32, configuration: impl AsRef<[u8]>) -> Result<(), HarnessError> {
        self.alive()?;
        if !self.store.data().roots.contains_key(&root) {
            return Err(HarnessError::UnknownRoot { id: root });
        }
        self.configure_root(root, configuration.as_ref())
    }

    /// Starts another root context in this VM with its own plugin configuration, as Envoy does
    /// for a filter whose configuration differs from the others sharing the VM (another filter
    /// chain, or a configuration update while the old one drains): `proxy_on_context_create`,
    /// `proxy_on_vm_start` and `proxy_on_configure` for the new root. Its id, for
    /// `request().root(id)` and `tick_root(id)`.
    pub fn add_root(&mut self, configuration: impl AsRef<[u8]>) -> Result<u32, HarnessError> {
        self.alive()?;
        let root = self.next_context_id;
        self.next_context_id += 1;
        self.store.data_mut().roots.insert(root, RootState::default());
        self.start_root(root, configuration.as_ref())?;
        Ok(root)
    }

    /// The root contexts of the VM, in the order they were started.
    pub fn roots(&self) -> Vec<u32> {
        self.store.data().roots.keys().copied().collect()
    }

    /// Moves the clock `proxy_get_current_time_nanoseconds` reads.
    pub fn advance_clock(&mut self, by: Duration) {
        let state = self.store.data_mut();
        state.clock_nanos = state.clock_nanos.saturating_add(by.as_nanos().try_into().unwrap_or(u64::MAX));
    }

    /// Sets the clock `proxy_get_current_time_nanoseconds` reads (nanoseconds since the Unix
    /// epoch), backwards too: Envoy's is the system's wall clock, which can jump either way.
    pub fn set_clock(&mut self, nanos: u64) {
        self.store.data_mut().clock_nanos = nanos;
    }

    /// The clock `proxy_get_current_time_nanoseconds` reads.
    pub fn clock(&self) -> u64 {
        self.store.data().clock_nanos
    }

    /// The tick period the first root context asked for, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        let ms = self.store.data().roots.get(&self.root_id()).map_or(0, |r| r.tick_period_ms);
        (ms > 0).then(|| Duration::from_millis(ms.into()))
    }

    /// A metric's current value, by the name the module defined.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.store.data().metrics.value(name)
    }

    pub fn metrics(&self) -> BTreeMap<String, u64> {
        self.store.data().metrics.by_name()
    }

    /// Lines logged outside any stream: start-up, configuration, ticks.
    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().root_logs
    }

    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.store.data_mut().root_logs)
    }

    /// The size of the module's linear memory, in 64 KiB pages: it only grows, so a leak shows.
    pub fn memory_pages(&mut self) -> u64 {
        let memory = self.store.data().memory;
        memory.map_or(0, |m| m.size(&self.store))
    }

    /// Streams opened and not yet finished.
    pub fn open_streams(&self) -> usize {
        self.pending.len()
    }

    /// Whether the module exports a function by this name.
    pub fn exports_function(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    fn new(instance: Instance, mut store: Store<HostState>, module: &Module) -> Result<Plugin, HarnessError> {
        check_abi_version(module)?;
        let memory = instance.get_memory(&mut store, "memory").ok_or(missing("memory"))?;
        // Envoy looks for `malloc` first, then the ABI's `proxy_on_memory_allocate`.
        let allocator = match typed::<i32, i32>(&instance, &mut store, "malloc")? {
            Some(f) => f,
            None => {
                typed(&instance, &mut store, "proxy_on_memory_allocate")?.ok_or(missing("proxy_on_memory_allocate"))?
            }
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().allocator = Some(allocator);
        let exports = Exports {
            on_context_create: typed(&instance, &mut store, "proxy_on_context_create")?,
            on_vm_start: typed(&instance, &mut store, "proxy_on_vm_start")?,
            on_configure: typed(&instance, &mut store, "proxy_on_configure")?,
            on_tick: typed(&instance, &mut store, "proxy_on_tick")?,
            on_request_headers: typed(&instance, &mut store, "proxy_on_request_headers")?,
            on_response_headers: typed(&instance, &mut store, "proxy_on_response_headers")?,
            on_log: typed(&instance, &mut store, "proxy_on_log")?,
            on_done: typed(&instance, &mut store, "proxy_on_done")?,
            on_delete: typed(&instance, &mut store, "proxy_on_delete")?,
        };
        let root = store.data().root_context_id;
        Ok(Plugin { store, exports, instance, pending: HashMap::new(), next_context_id: root + 1, crashed: None })
    }

    /// Envoy's start-up order for a VM and its root context.
    fn start(&mut self) -> Result<(), HarnessError> {
        let (instance, store) = (self.instance, &mut self.store);
        let initialize = typed::<(), ()>(&instance, store, "_initialize")?;
        if initialize.is_some() {
            self.call_optional("_initialize", initialize, ())?;
            // A reactor may also have a `main` to run once, as Envoy does after `_initialize`.
            let main = typed::<(i32, i32), i32>(&self.instance, &mut self.store, "main")?;
            self.call_optional("main", main, (0, 0))?;
        } else {
            let start = typed::<(), ()>(&self.instance, &mut self.store, "_start")?;
            self.call_optional("_start", start, ())?;
        }
        let configuration = self.store.data().plugin_configuration.clone();
        self.start_root(self.root_id(), &configuration)
    }

    /// What Envoy does for each root context (proxy-wasm-cpp-host `ContextBase::onStart`, then
    /// `onConfigure`): context create, VM start, configure.
    fn start_root(&mut self, root: u32, configuration: &[u8]) -> Result<(), HarnessError> {
        let logged_before = self.store.data().root_logs.len();
        let f = self.exports.on_context_create.clone();
        self.in_root(root, |p| p.call_optional("proxy_on_context_create", f, (root as i32, 0)))?;
        let vm_configuration_size = self.store.data().vm_configuration.len() as i32;
        let f = self.exports.on_vm_start.clone();
        if self.in_root(root, |p| p.call_optional("proxy_on_vm_start", f, (root as i32, vm_configuration_size)))?
            == Some(0)
        {
            return Err(HarnessError::VmStartRefused { logs: self.store.data().root_logs[logged_before..].to_vec() });
        }
        self.configure_root(root, configuration)
    }

    fn configure_root(&mut self, root: u32, configuration: &[u8]) -> Result<(), HarnessError> {
        let state = self.store.data_mut();
        state.plugin_configuration = configuration.to_vec();
        let logged_before = state.root_logs.len();
        let f = self.exports.on_configure.clone();
        let size = configuration.len() as i32;
        if self.in_root(root, |p| p.call_optional("proxy_on_configure", f, (root as i32, size)))? == Some(0) {
            return Err(HarnessError::ConfigurationRefused {
                logs: self.store.data().root_logs[logged_before..].to_vec(),
            });
        }
        Ok(())
    }

    /// Runs `f` as a callback of root context `root`.
    fn in_root<T>(
        &mut self,
        root: u32,
        f: impl FnOnce(&mut Plugin) -> Result<T, HarnessError>,
    ) -> Result<T, HarnessError> {
        let state = self.store.data_mut();
        let (previous, previous_current) = (state.active_root, state.current.take());
        state.active_root = root;
        let result = f(self);
        let state = self.store.data_mut();
        state.active_root = previous;
        state.current = previous_current;
        result
    }

    fn root_id(&self) -> u32 {
        self.store.data().root_context_id
    }

    fn alive(&self) -> Result<(), HarnessError> {
        match &self.crashed {
            Some(first) => Err(HarnessError::Crashed { first: first.clone() }),
            None => Ok(()),
        }
    }

    fn stream_map_len(&mut self, id: u32, map: StreamMap) -> i32 {
        self.store.data_mut().streams.get_mut(&id).map_or(0, |s| s.map(map).len() as i32)
    }

    /// Runs `f` with `id` as the current stream, as Envoy sets the effective context.
    fn in_stream<T>(
        &mut self,
        id: u32,
        f: impl FnOnce(&mut Plugin) -> Result<T, HarnessError>,
    ) -> Result<T, HarnessError> {
        let state = self.store.data_mut();
        let previous_root = state.active_root;
        state.active_root = state.streams.get(&id).map_or(previous_root, |s| s.root);
        state.current = Some(id);
        let result = f(self);
        let state = self.store.data_mut();
        state.current = None;
        state.active_root = previous_root;
        result
    }

    /// Calls an export if the module has it (`Ok(None)` if not). A trap, an unimplemented
    /// host call or a bad argument becomes a `HarnessError`, and the VM counts as crashed.
    fn call_optional<P: WasmParams, R: WasmResults>(
        &mut self,
        export: &str,
        f: Option<TypedFunc<P, R>>,
        params: P,
    ) -> Result<Option<R>, HarnessError> {
        self.alive()?;
        let Some(f) = f else { return Ok(None) };
        self.store.data_mut().call_stderr.clear();
        let result = f.call(&mut self.store, params);
        self.store.data_mut().flush_output();
        match result {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                let error = classify(export, e, std::mem::take(&mut self.store.data_mut().call_stderr));
                self.crashed = Some(error.to_string());
                Err(error)
            }
        }
    }
}

impl PluginBuilder {
    fn new(source: Source) -> PluginBuilder {
        PluginBuilder {
            source,
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            log_level: LogLevel::Info,
            properties: Vec::new(),
            foreign_functions: Vec::new(),
        }
    }
}

fn missing(name: &str) -> HarnessError {
    HarnessError::MissingExport { name: name.into() }
}

/// The FilterHeadersStatus a headers callback returned (`Continue` if not exported).
fn headers_action(export: &str, returned: Option<i32>) -> Result<Action, HarnessError> {
    match returned {
        None | Some(0) => Ok(Action::Continue),
        Some(1) => Ok(Action::Pause),
        Some(value) => Err(HarnessError::BadReturn { export: export.into(), value }),
    }
}

fn check_abi_version(module: &Module) -> Result<(), HarnessError> {
    let versions: Vec<&str> =
        module.exports().map(|e| e.name()).filter(|n| n.starts_with("proxy_abi_version_")).collect();
    if versions.contains(&"proxy_abi_version_0_2_1") {
        return Ok(());
    }
    let found = if versions.is_empty() { "none".to_string() } else { versions.join(", ") };
    Err(HarnessError::MissingExport { name: format!("proxy_abi_version_0_2_1 (ABI versions exported: {found})") })
}

/// An export as a typed function: `None` if absent, an error if its signature is not the ABI's.
fn typed<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, HarnessError> {
    let Some(func) = instance.get_func(&mut *store, name) else { return Ok(None) };
    func.typed::<P, R>(&*store)
        .map(Some)
        .map_err(|e| HarnessError::ExportSignature { name: name.into(), detail: e.to_string() })
}

/// Turns what wasmtime reports for a failed call into what a test should read.
fn classify(export: &str, error: wasmtime::Error, stderr: String) -> HarnessError {
    let export = export.to_string();
    if let Some(host) = error.downcast_ref::<HostCallError>() {
        return match host {
            HostCallError::Unimplemented { name } => HarnessError::UnimplementedHostCall { name: name.clone(), export },
            HostCallError::GuestMisbehaved { call, detail } => {
                HarnessError::GuestMisbehaved { export, call: call.to_string(), detail: detail.clone() }
            }
            HostCallError::ProcExit { code } => HarnessError::ProcExit { export, code: *code },
        };
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        let backtrace = error.downcast_ref::<WasmBacktrace>().map(ToString::to_string).unwrap_or_default();
        return HarnessError::Trap { export, trap: trap.to_string(), stderr, backtrace };
    }
    HarnessError::Engine { detail: format!("{export}: {error:?}") }
}

/// One engine for the process: compiled modules are shared by all plugins of a test run.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

fn read_module(path: &Path) -> Result<Vec<u8>, HarnessError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            HarnessError::ModuleNotFound { path: path.to_path_buf(), hint: "build it first (make build)" }
        }
        _ => HarnessError::Compile { detail: format!("{}: {e}", path.display()) },
    })
}

/// Compiles a module once per process per content: tests load the same module many times,
/// and compiling is the slow part.
fn compile(bytes: &[u8]) -> Result<Module, HarnessError> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Module>>> = OnceLock::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let key = hasher.finish();
    // The lock is held while compiling: tests running in parallel wait for the one compile
    // instead of each compiling the same module.
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(module) = cache.get(&key) {
        return Ok(module.clone());
    }
    let module = Module::new(engine(), bytes).map_err(|e| HarnessError::Compile { detail: format!("{e:?}") })?;
    cache.insert(key, module.clone());
    Ok(module)
}

/// Links the host calls; every other function the module imports gets a stub that fails the
/// call loudly with its name.
fn instantiate(module: &Module, store: &mut Store<HostState>) -> Result<Instance, HarnessError> {
    let link_error = |e: wasmtime::Error| HarnessError::Link { detail: format!("{e:?}") };
    let mut linker = Linker::new(engine());
    host::link(&mut linker).map_err(link_error)?;
    for import in module.imports() {
        if linker.get_by_import(&mut *store, &import).is_some() {
            continue;
        }
        let (module_name, name) = (import.module().to_string(), import.name().to_string());
        match import.ty() {
            ExternType::Func(ty) => {
                linker
                    .func_new(&module_name.clone(), &name.clone(), ty, move |_, _, _| {
                        Err(host::unimplemented(&module_name, &name))
                    })
                    .map_err(link_error)?;
            }
            other => {
                return Err(HarnessError::Link {
                    detail: format!("{module_name}.{name} is imported as {other:?}; Envoy provides only functions"),
                })
            }
        }
    }
    linker.instantiate(&mut *store, module).map_err(|e| match e.downcast_ref::<Trap>() {
        Some(_) => classify("the start function", e, String::new()),
        None => link_error(e),
    })
}
