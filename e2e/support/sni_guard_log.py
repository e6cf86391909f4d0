"""sni-guard's own lines in Envoy's log, told apart by their content.

The texts are not final, so the matching is loose and lives here only. A module line is one
Envoy prefixes with `wasm log` and that mentions sni-guard. A summary is a module line saying
how many lines were not logged, the number next to the word for it ("37 suppressed",
"suppressed 37", "37 more not logged"); a dry-run line is any other module line that mentions a
dry run.
"""

from __future__ import annotations

import re

DRY_RUN = re.compile(r"dry[ _-]run", re.IGNORECASE)
SUPPRESSED_WORDS = r"(?:suppressed|not logged|unlogged|omitted|dropped|skipped)"
SUMMARY_COUNT = re.compile(rf"(\d+)\s+(?:[\w-]+\s+){{0,5}}?{SUPPRESSED_WORDS}|{SUPPRESSED_WORDS}\D{{0,30}}?(\d+)",
                           re.IGNORECASE)


def module_message(line: str) -> str | None:
    """The module's message in one Envoy log line (after `wasm log`), or None."""
    _, found, message = line.partition("wasm log")
    return message if found else None


def dry_run_log(text: str) -> tuple[list[str], list[int]]:
    """(the per-request dry-run lines, the suppressed count of each summary line) in `text`."""
    lines, suppressed = [], []
    for line in text.splitlines():
        message = module_message(line)
        if message is None or "sni-guard" not in message:
            continue
        m = SUMMARY_COUNT.search(message)
        if m:
            suppressed.append(int(m.group(1) or m.group(2)))
        elif DRY_RUN.search(message):
            lines.append(line)
    return lines, suppressed
