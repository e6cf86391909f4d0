//! Root contexts: one per filter configuration in this VM, each configured once, and the VM's
//! shared state (counters, the dry-run log bound).
//!
//! Envoy shares a VM among filters with the same `vm_config`, so one VM may hold several root
//! contexts at once: two filter chains with different sni-guard configurations, or an old
//! configuration still draining beside a new one, which Envoy reuses without configuring it
//! again when a rollback brings its configuration back. Every root keeps its own settings, and
//! a stream answers by its own root's (see `cel` for how a stream learns it).

use std::cell::RefCell;

use sni_guard::cel::{self, SameNameTest};
use sni_guard::config::Settings;
use sni_guard::liveness::{VmClock, TICK_PERIOD_MS};
use sni_guard::log_limit::LogLimiter;
use sni_guard::metrics::{Counter, Counts, PairSeries, ServerPair};
use sni_guard::stream::{Configurations, RootId};

use crate::{hostcalls, logger};

/// One root context's configuration.
struct Root {
    settings: Settings,
    /// The same-name test its CEL expression was created with (`None`: behind a matcher).
    same_name: Option<SameNameTest>,
    /// The VM's clock when this root last ticked (or was configured): a root that stops
    /// ticking is gone (`liveness`), and its settings are dropped.
    last_seen: u64,
}

/// Whether streams can ask Envoy's CEL which root they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cel {
    /// No root configured yet.
    Unknown,
    /// Every root created its two expressions under these tokens.
    Tokens { request: u32, identity: u32 },
    /// This host has no usable CEL: streams read the names themselves and cannot tell their
    /// root, so the VM holds one configuration at a time.
    Missing,
}

/// The configured roots, in the order they were configured (a VM holds a few: a Vec is
/// smaller in the module than a map).
#[derive(Default)]
pub struct Roots(Vec<(RootId, Root)>);

impl Roots {
    fn get(&self, id: RootId) -> Option<&Root> {
        self.0.iter().find(|(r, _)| *r == id).map(|(_, root)| root)
    }

    fn get_mut(&mut self, id: RootId) -> Option<&mut Root> {
        self.0.iter_mut().find(|(r, _)| *r == id).map(|(_, root)| root)
    }
}

impl Configurations for Roots {
    fn settings(&self, root: Option<RootId>) -> Option<&Settings> {
        match root {
            // An id with no settings (a root this VM never configured) is answered as
            // "not configured": the request passes.
            Some(id) => self.get(id).map(|r| &r.settings),
            // Without CEL every live root has the same settings (`proxy_on_configure` refuses
            // others); the newest is as good as any.
            None => self.0.last().map(|(_, r)| &r.settings),
        }
    }
}

/// Counters as the module keeps them: `checked` added up and handed to Envoy on the tick, the
/// others at once.
pub struct Counters {
    ids: [u32; Counter::ALL.len()],
    pending: Counts,
    pairs: PairSeries,
}

impl Counters {
    pub fn count(&mut self, counter: Counter) {
        match counter {
            Counter::Checked => self.pending.pending_checked += 1,
            other => hostcalls::increment_metric(self.ids[other as usize], 1),
        }
    }

    pub fn count_pair(&mut self, pair: &ServerPair<'_>) {
        if let Some(id) = self.pairs.metric(pair, hostcalls::define_counter) {
            hostcalls::increment_metric(id, 1);
        }
    }

    pub fn flush(&mut self) {
        let ids = self.ids;
        self.pending.flush(|counter, by| hostcalls::increment_metric(ids[counter as usize], by));
    }
}

/// The state of this VM.
pub struct Vm {
    pub roots: Roots,
    pub cel: Cel,
    pub counters: Counters,
    pub dry_run_log: LogLimiter,
    clock: VmClock,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

/// Runs `f` with the VM's state, once a root has been configured.
pub fn with_vm<T>(f: impl FnOnce(&mut Vm) -> T) -> Option<T> {
    VM.with(|vm| vm.borrow_mut().as_mut().map(f))
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_context_id: u32, configuration_size: usize) -> bool {
    logger::init();
    match configure(root_context_id, configuration_size) {
        Ok(checks) => {
            hostcalls::set_tick_period_milliseconds(TICK_PERIOD_MS);
            log::info!("sni-guard: root context {root_context_id} configured; {checks}");
            true
        }
        Err(e) => {
            // Returning false makes Envoy refuse the plugin: never half-applied.
            log::error!("sni-guard: {e}; the plugin is not started");
            false
        }
    }
}

fn configure(root: RootId, configuration_size: usize) -> Result<String, String> {
    let bytes = hostcalls::plugin_configuration(configuration_size);
    let settings = Settings::from_json(bytes.as_ref().map_or(&[][..], |b| b.as_ref())).map_err(|e| e.to_string())?;
    let same_name = match settings.same_name_matcher {
        Some(_) => None,
        None => Some(settings.same_name),
    };
    VM.with(|vm| {
        let mut vm = vm.borrow_mut();
        if vm.is_none() {
            let ids = define_counters().ok_or("Envoy refused to define the sni_guard counters")?;
            let counters = Counters { ids, pending: Counts::default(), pairs: PairSeries::default() };
            *vm = Some(Vm {
                roots: Roots::default(),
                cel: Cel::Unknown,
                counters,
                dry_run_log: LogLimiter::default(),
                clock: VmClock::default(),
            });
        }
        let Some(vm) = vm.as_mut() else { return Err("no VM state".to_string()) };
        let known = vm.roots.get(root).map(|r| r.same_name);
        vm.cel = match vm.cel {
            // A root configured again (Envoy does not: a new configuration comes with a new root
            // context; a test host may) keeps its expressions, which name it; they hold only if
            // they test the same name the same way.
            Cel::Tokens { .. } if known == Some(same_name) => vm.cel,
            Cel::Tokens { .. } if known.is_some() => {
                return Err("this root context's CEL expression was created for another same-name test; a \
                     configuration that needs another one must come with a new root context"
                    .to_string())
            }
            Cel::Tokens { request, identity } => match create_expressions(root, same_name) {
                Ok(tokens) if tokens == (request, identity) => vm.cel,
                Ok((other_request, other_identity)) => {
                    return Err(format!(
                        "Envoy numbered this root context's CEL expressions {other_request} and {other_identity}, \
                         other roots' {request} and {identity}; streams could not tell their configuration"
                    ))
                }
                Err(status) => return Err(format!("Envoy's CEL refused this root context's expression (status {status})")),
            },
            Cel::Unknown => match create_expressions(root, same_name) {
                Ok((request, identity)) => Cel::Tokens { request, identity },
                Err(status) => {
                    log::info!("sni-guard: no usable CEL in this host (expr_create status {status}): every request reads the SNI and :authority");
                    Cel::Missing
                }
            },
            Cel::Missing => {
                let other = vm.roots.0.iter().find(|(id, r)| *id != root && r.settings != settings);
                if let Some((other, _)) = other {
                    return Err(format!(
                        "root context {other} of this VM holds another sni-guard configuration, and without CEL \
                         in this host a request cannot tell which is its own; give each configuration its own \
                         vm_config.vm_id"
                    ));
                }
                Cel::Missing
            }
        };
        let checks = match (vm.cel, same_name) {
            (Cel::Missing, _) => "first check: none (every request reads the SNI and :authority)".to_string(),
            (_, Some(SameNameTest::HostName)) => format!(
                "first check: Envoy's CEL same-name test {:?}, then the module's test that the SNI is a host name",
                SameNameTest::Plain.text()
            ),
            (_, Some(test)) => format!("first check: Envoy's CEL same-name test {:?}", test.text()),
            (_, None) => format!(
                "first check: Envoy's matcher in front ({:?}); the module reads the names with one CEL evaluation",
                settings.same_name_matcher.map(SameNameTest::text).unwrap_or_default()
            ),
        };
        let last_seen = vm.clock.observe(hostcalls::current_time_nanos());
        let configured = Root { settings, same_name, last_seen };
        match vm.roots.get_mut(root) {
            Some(existing) => *existing = configured,
            None => vm.roots.0.push((root, configured)),
        }
        Ok(checks)
    })
}

/// Creates the root's two expressions, in this order: the request expression, then one that
/// names the root alone (for a request without `:authority`, where the first is an error).
fn create_expressions(root: RootId, same_name: Option<SameNameTest>) -> Result<(u32, u32), u32> {
    let request = hostcalls::create_expression(&cel::request_expression(root, same_name))?;
    let identity = hostcalls::create_expression(&cel::identity_expression(root))?;
    Ok((request, identity))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_context_id: u32) {
    logger::init();
    with_vm(|vm| {
        let wall = hostcalls::current_time_nanos();
        let now = vm.clock.observe(wall);
        match vm.roots.get_mut(root_context_id) {
            Some(root) => root.last_seen = now,
            // Only a configured root asks for ticks: this one was dropped while Envoy still held
            // it, which `liveness` rules out. Said loudly, should it happen.
            None => log::error!(
                "sni-guard: root context {root_context_id} ticks after its configuration was dropped; its requests \
                 pass unchecked"
            ),
        }
        let (clock, pairs) = (vm.clock, &mut vm.counters.pairs);
        vm.roots.0.retain(|(id, root)| {
            let gone = clock.is_gone(root.last_seen);
            if gone {
                log::info!("sni-guard: root context {id} has stopped ticking; its configuration is dropped");
                pairs.release(*id);
            }
            !gone
        });
        vm.counters.flush();
        if let Some(suppressed) = vm.dry_run_log.summary(wall) {
            log::warn!("{}", dry_run_summary(suppressed));
        }
    });
}

/// The line that stands for dry-run lines held back by the log bound.
pub fn dry_run_summary(suppressed: u64) -> String {
    format!(
        "sni-guard dry run: {suppressed} more would-be 421s not logged in the last {} s \
         (sni_guard.dry_run_mismatch counts them all)",
        sni_guard::log_limit::WINDOW_NS / 1_000_000_000
    )
}

/// Envoy returns the same id for a name already defined in this VM.
fn define_counters() -> Option<[u32; Counter::ALL.len()]> {
    let mut ids = [0; Counter::ALL.len()];
    for counter in Counter::ALL {
        ids[counter as usize] = hostcalls::define_counter(counter.name())?;
    }
    Some(ids)
}
