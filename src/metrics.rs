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
    /// The root context (configuration) whose request it was, if the host said.
    pub root: Option<u32>,
    /// The connection's server's name (`unknown` for a connection in no server's chain).
    pub connection_server: &'a str,
    /// The host's server's name (`unknown` for a host in no server, or a malformed one).
    pub host_server: &'a str,
}

/// The name a server has in the per-pair counters when it is not one of the configuration's.
pub const UNKNOWN_SERVER: &str = "unknown";
/// The pair every further pair is counted under while a VM has this many series: a client
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

/// The per-pair series a VM has defined, by what they count (the total and the two servers'
/// names: Envoy hands back the same metric for the same name, whichever root defines it), each
/// with the root contexts that counted in it. At most `MAX_SERVER_PAIRS` at a time, then every
/// further pair is counted under `other`; a series is forgotten with the last root that counted
/// in it (`release`), so configuration changes do not use up the bound. Envoy keeps every
/// counter it defined (the ABI cannot remove one): a forgotten pair defined again counts on in
/// the same counter.
#[derive(Debug, Default)]
pub struct PairSeries {
    series: Vec<Series>,
    /// `other` for `rejected` and for `dry_run_mismatch`, once defined.
    other: [Option<u32>; 2],
}

#[derive(Debug)]
struct Series {
    counter: Counter,
    connection_server: Box<str>,
    host_server: Box<str>,
    metric: u32,
    /// The roots that counted in it (`None`: a host that could not say).
    roots: Vec<Option<u32>>,
}

impl PairSeries {
    /// The metric to count `pair` in: its own series, or `other` past the bound. `define` asks
    /// the host for the metric of a name, the first time the VM needs it.
    pub fn metric(&mut self, pair: &ServerPair<'_>, define: impl FnOnce(&str) -> Option<u32>) -> Option<u32> {
        let same = |s: &&mut Series| {
            s.counter == pair.counter
                && *s.connection_server == *pair.connection_server
                && *s.host_server == *pair.host_server
        };
        if let Some(series) = self.series.iter_mut().find(same) {
            if !series.roots.contains(&pair.root) {
                series.roots.push(pair.root);
            }
            return Some(series.metric);
        }
        if self.series.len() < MAX_SERVER_PAIRS {
            let metric = define(&pair.metric_name())?;
            self.series.push(Series {
                counter: pair.counter,
                connection_server: pair.connection_server.into(),
                host_server: pair.host_server.into(),
                metric,
                roots: vec![pair.root],
            });
            return Some(metric);
        }
        let other = &mut self.other[(pair.counter == Counter::DryRunMismatch) as usize];
        if other.is_none() {
            *other = define(
                &ServerPair { connection_server: OTHER_SERVERS, host_server: OTHER_SERVERS, ..*pair }.metric_name(),
            );
        }
        *other
    }

    /// Root context `root` is gone: series only it counted in are forgotten.
    pub fn release(&mut self, root: u32) {
        for series in &mut self.series {
            series.roots.retain(|r| *r != Some(root));
        }
        self.series.retain(|s| !s.roots.is_empty());
    }

    /// How many pairs have a series of their own.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
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
        let pair =
            ServerPair { counter: Counter::Rejected, root: None, connection_server: "a.example.com", host_server: "*" };
        assert_eq!(
            pair.metric_name(),
            "sni_guard.connection_server=.=a.example.com;.;host_server=.=*;.;rejected_by_server"
        );
        let dry = ServerPair { counter: Counter::DryRunMismatch, ..pair };
        assert!(dry.metric_name().ends_with(";.;dry_run_mismatch_by_server"));
    }

    /// Defines metrics as Envoy does: one id per name, the same id for the same name.
    #[derive(Default)]
    struct Host(Vec<String>);

    impl Host {
        fn define(&mut self, name: &str) -> Option<u32> {
            let at = self.0.iter().position(|n| n == name).unwrap_or_else(|| {
                self.0.push(name.to_string());
                self.0.len() - 1
            });
            Some(at as u32)
        }
    }

    fn pair<'a>(root: u32, connection_server: &'a str, host_server: &'a str) -> ServerPair<'a> {
        ServerPair { counter: Counter::Rejected, root: Some(root), connection_server, host_server }
    }

    #[test]
    fn a_pair_keeps_its_series_across_roots_and_configuration_changes() {
        let (mut host, mut series) = (Host::default(), PairSeries::default());
        let first = series.metric(&pair(1, "a", "b"), |n| host.define(n)).unwrap();
        for root in 2..=1000 {
            // A new configuration (root) counts the same pair; the previous one is gone.
            assert_eq!(series.metric(&pair(root, "a", "b"), |n| host.define(n)), Some(first));
            series.release(root - 1);
            assert_eq!(series.len(), 1);
        }
        series.release(1000);
        assert!(series.is_empty(), "forgotten with its last root");
        assert_eq!(series.metric(&pair(1001, "a", "b"), |n| host.define(n)), Some(first), "Envoy's same counter");
        let dry = ServerPair { counter: Counter::DryRunMismatch, ..pair(1001, "a", "b") };
        assert_ne!(series.metric(&dry, |n| host.define(n)), Some(first), "another total, another series");
    }

    #[test]
    fn past_the_bound_pairs_share_other_until_roots_are_gone() {
        let (mut host, mut series) = (Host::default(), PairSeries::default());
        let names: Vec<String> = (0..MAX_SERVER_PAIRS + 10).map(|i| format!("h{i}")).collect();
        for name in &names {
            series.metric(&pair(1, "a", name), |n| host.define(n)).unwrap();
        }
        assert_eq!(series.len(), MAX_SERVER_PAIRS);
        let other = host.0.iter().filter(|n| n.contains("=other;")).count();
        assert_eq!(other, 1, "{:?}", host.0);
        // A series two live roots counted in stays while either is there.
        series.metric(&pair(2, "a", "h0"), |n| host.define(n)).unwrap();
        series.release(1);
        assert_eq!(series.len(), 1);
        let fresh = series.metric(&pair(2, "a", "h105"), |n| host.define(n)).unwrap();
        assert_eq!(host.0[fresh as usize], pair(2, "a", "h105").metric_name(), "room again: its own series");
    }
}
