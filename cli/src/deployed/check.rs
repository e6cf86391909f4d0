//! `sni-guard check FILE...`: every sni-guard configuration in what the user applies, read by
//! the filter's own parser and validator, one line per configuration.

use crate::deployed::read::{examine, given_twice, summary, twice_message, Reading};
use crate::text::wrap;

/// The outcome: the report, and whether every configuration was accepted.
pub struct Checked {
    pub report: String,
    pub accepted: usize,
    pub refused: usize,
    /// Objects given twice (one kind, namespace and name in two places).
    pub twice: usize,
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
    let twice = given_twice(reading);
    for (first, other) in &twice {
        report.push_str(&wrap("", "    ", &format!("refused: {}", twice_message(first, other))));
    }
    for skipped in &reading.skipped {
        report.push_str(&wrap("", "    ", skipped));
    }
    let total = accepted + refused;
    let mut summary = format!(
        "{total} sni-guard {}: {accepted} accepted, {refused} refused",
        if total == 1 { "configuration" } else { "configurations" }
    );
    if !twice.is_empty() {
        summary.push_str(&format!(
            "; {} given twice",
            if twice.len() == 1 { "1 object".to_owned() } else { format!("{} objects", twice.len()) }
        ));
    }
    report.push_str(&wrap("", "    ", &format!("{summary}.")));
    Checked { report, accepted, refused, twice: twice.len() }
}
