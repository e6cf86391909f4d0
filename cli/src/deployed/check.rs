//! `sni-guard check FILE...`: every sni-guard configuration in what the user applies, read by
//! the filter's own parser and validator, one line per configuration.

use crate::deployed::read::{examine, summary, Reading};
use crate::text::wrap;

/// The outcome: the report, and whether every configuration was accepted.
pub struct Checked {
    pub report: String,
    pub accepted: usize,
    pub refused: usize,
}

pub fn check(reading: &Reading) -> Checked {
    let mut report = String::new();
    let (mut accepted, mut refused) = (0, 0);
    for deployed in &reading.found {
        let examined = examine(deployed);
        let line = match (&examined.settings, examined.all_problems().as_slice()) {
            (Some(settings), []) => {
                accepted += 1;
                let servers = crate::deployed::read::servers(deployed).len();
                format!("{deployed}: ok: {}", summary(settings, servers))
            }
            (_, problems) => {
                refused += 1;
                format!("{deployed}: refused: {}", problems.join("; "))
            }
        };
        report.push_str(&wrap("", "    ", &line));
        for note in &examined.notes {
            report.push_str(&wrap("    note: ", "      ", note));
        }
    }
    for skipped in &reading.skipped {
        report.push_str(&wrap("", "    ", skipped));
    }
    let total = accepted + refused;
    report.push_str(&format!(
        "{total} sni-guard {}: {accepted} accepted, {refused} refused.\n",
        if total == 1 { "configuration" } else { "configurations" }
    ));
    Checked { report, accepted, refused }
}
