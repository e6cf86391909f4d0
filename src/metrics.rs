//! sni-guard's Envoy counters.

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

/// Counts kept in the module between flushes. Incrementing an Envoy counter is a call into the
/// host; `checked` grows on every request, so it is added up here and flushed on the root
/// context's tick (and on any mismatch), not crossed into Envoy per request.
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
