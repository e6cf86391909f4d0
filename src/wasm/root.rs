//! The root context: configuration, counters and the tick that flushes them.
//!
//! Streams do not learn their root context (that would cost a `proxy_on_context_create`
//! crossing per stream), so the VM holds one configuration: the last one accepted. Envoy
//! shares a VM among plugins with the same `vm_config`; plugins that need different
//! sni-guard configurations at the same time need different `vm_config.vm_id`s.

use std::cell::RefCell;

use crate::cel;
use crate::config::Settings;
use crate::metrics::{Counter, Counts};

use super::{hostcalls, logger};

/// How often pending counts reach Envoy's counters.
const TICK_PERIOD_MS: u32 = 1000;

pub struct Root {
    pub settings: Settings,
    /// The root context whose configuration is in force, and its bytes, to tell a changed
    /// configuration from a repeated one.
    configured_by: (u32, Vec<u8>),
    pub counts: Counts,
    /// The token of Envoy's compiled `cel::same_name_expression`; `None` if this host has no
    /// CEL, and every request takes the full check.
    pub same_name_check: Option<u32>,
    metric_ids: [u32; Counter::ALL.len()],
}

thread_local! {
    static ROOT: RefCell<Option<Root>> = const { RefCell::new(None) };
}

/// Runs `f` with the configured root, if the plugin has been configured.
pub fn with_root<T>(f: impl FnOnce(&mut Root) -> T) -> Option<T> {
    ROOT.with(|root| root.borrow_mut().as_mut().map(f))
}

impl Root {
    pub fn increment(&self, counter: Counter, by: u64) {
        hostcalls::increment_metric(self.metric_ids[counter as usize], by);
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_context_id: u32, configuration_size: usize) -> bool {
    logger::init();
    let bytes = hostcalls::plugin_configuration(configuration_size);
    let json = bytes.as_ref().map_or(&[][..], |b| b.as_ref());
    let settings = match Settings::from_json(json) {
        Ok(settings) => settings,
        Err(e) => {
            // Returning false makes Envoy refuse the plugin: never half-applied.
            log::error!("sni-guard: {e}; the plugin is not started");
            return false;
        }
    };
    let Some(metric_ids) = define_counters() else {
        log::error!("sni-guard: Envoy refused to define the sni_guard counters; the plugin is not started");
        return false;
    };
    let same_name_check = create_same_name_check(&settings);
    let first_check = if same_name_check.is_some() { "Envoy's CEL same-name check" } else { "none" };
    ROOT.with(|root| {
        let mut root = root.borrow_mut();
        if let Some(previous) = root.as_ref() {
            if previous.configured_by.0 != root_context_id && previous.configured_by.1 != json {
                log::warn!(
                    "sni-guard: root context {root_context_id} brings a configuration different from root context {}'s \
                     in the same VM; all streams of this VM now use the newer one. Fine for a configuration update; \
                     if both must hold at once, give each its own vm_config.vm_id",
                    previous.configured_by.0
                );
            }
        }
        let counts = root.take().map(|r| r.counts).unwrap_or_default();
        *root = Some(Root {
            settings,
            configured_by: (root_context_id, json.to_vec()),
            counts,
            same_name_check,
            metric_ids,
        });
    });
    hostcalls::set_tick_period_milliseconds(TICK_PERIOD_MS);
    log::info!("sni-guard: configured by root context {root_context_id}; first check: {first_check}");
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(_root_context_id: u32) {
    logger::init();
    with_root(|root| {
        let ids = root.metric_ids;
        root.counts.flush(|counter, by| hostcalls::increment_metric(ids[counter as usize], by));
    });
}

/// Envoy keeps compiled expressions per root context, and numbers them from 0 in each: every
/// root configured here gets the same token, so streams of any root find theirs. Should a
/// stream's root lack it, the evaluation fails with NotFound and the full check runs.
fn create_same_name_check(settings: &Settings) -> Option<u32> {
    let expression = cel::same_name_expression(settings.on_missing_sni);
    match hostcalls::create_expression(expression) {
        Ok(token) => Some(token),
        Err(status) => {
            log::info!(
                "sni-guard: no CEL check in this host (expr_create status {status}): every request reads the SNI and :authority"
            );
            None
        }
    }
}

/// Envoy returns the same id for a name already defined in this VM.
fn define_counters() -> Option<[u32; Counter::ALL.len()]> {
    let mut ids = [0; Counter::ALL.len()];
    for counter in Counter::ALL {
        ids[counter as usize] = hostcalls::define_counter(counter.name())?;
    }
    Some(ids)
}
