//! sni-guard's Envoy counters.
//!
//! Three totals, and the misdirected requests per pair of servers: the connection's (the one
//! whose filter chain Envoy picked) and the host's, each named by its first host. The pair is
//! written into the counter's name in Istio's tag form (`name=.=value;.;`, what Istio's
//! `extraStatTags` turns into Prometheus labels), so with `connection_server` and `host_server`
//! declared (Istio `extraStatTags`, or Envoy `stats_config.stats_tags`, README "Metrics and logs") they
//! show as `sni_guard_rejected_by_server{connection_server="a.example.com",host_server="b.example.com"}`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Requests the filter looked at.
    Checked,
    /// Misdirected requests answered 421.
    Rejected,
    /// Misdirected requests let through in dry-run mode.
    DryRunMismatch,
}

impl Counter {
    pub const ALL: [Counter; 3] = [Counter::Checked, Counter::Rejected, Counter::DryRunMismatch];

    /// The name the filter defines; Envoy shows it under its own prefix for Wasm metrics.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Checked => "sni_guard.checked",
            Counter::Rejected => "sni_guard.rejected",
            Counter::DryRunMismatch => "sni_guard.dry_run_mismatch",
        }
    }
}

/// A misdirected request counted per pair of servers: which of the two totals, and the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPair<'a> {
    pub counter: Counter,
    /// The pair by number, cheap to compare: (root context, connection's server, host's
    /// server); the names below are built into a counter name only the first time.
    pub key: (Option<u32>, Option<usize>, Option<usize>),
    /// The connection's server's name (`unknown` for a connection in no server's chain).
    pub connection_server: &'a str,
    /// The host's server's name (`unknown` for a host in no server, or a malformed one).
    pub host_server: &'a str,
}

/// The name a server has in the per-pair counters when it is not one of the configuration's.
pub const UNKNOWN_SERVER: &str = "unknown";
/// The pair every further pair is counted under once a VM has this many series: a client
/// choosing `:authority` freely must not grow Envoy's stats without bound.
pub const MAX_SERVER_PAIRS: usize = 100;
pub const OTHER_SERVERS: &str = "other";

impl ServerPair<'_> {
    /// The counter's name, e.g.
    /// `sni_guard.connection_server=.=a.example.com;.;host_server=.=b.example.com;.;rejected_by_server`.
    pub fn metric_name(&self) -> String {
        let total = match self.counter {
            Counter::DryRunMismatch => "dry_run_mismatch",
            _ => "rejected",
        };
        format!(
            "sni_guard.connection_server=.={};.;host_server=.={};.;{total}_by_server",
            self.connection_server, self.host_server
        )
    }
}

/// Counts kept in the module between flushes. Incrementing an Envoy counter is a call into the
/// host; `checked` grows on every request, so it is added up here and flushed on the root
/// context's tick, not crossed into Envoy per request.
#[derive(Debug, Default)]
pub struct Counts {
    pub pending_checked: u64,
}

impl Counts {
    /// Hands the pending counts to `increment` (the host's counter call) and forgets them.
    pub fn flush(&mut self, mut increment: impl FnMut(Counter, u64)) {
        if self.pending_checked > 0 {
            increment(Counter::Checked, self.pending_checked);
            self.pending_checked = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_names_carry_istio_tags() {
        let pair = ServerPair {
            counter: Counter::Rejected,
            key: (None, Some(0), Some(1)),
            connection_server: "a.example.com",
            host_server: "*",
        };
        assert_eq!(
            pair.metric_name(),
            "sni_guard.connection_server=.=a.example.com;.;host_server=.=*;.;rejected_by_server"
        );
        let dry = ServerPair { counter: Counter::DryRunMismatch, ..pair };
        assert!(dry.metric_name().ends_with(";.;dry_run_mismatch_by_server"));
    }
}
