#!/usr/bin/env python3
"""Which clients get sni-guard's 421 and do not come back, from the gateway's access log in the
format of istiod-values.yaml (`start=... client=... sni=... authority=... status=...
sni_guard=... ua="..."`); other lines (Envoy's own log, other formats) are skipped.

A 421 (`sni_guard=421`) counts as retried when the same client (address and user agent) asks for
the same host again within --window seconds (default 10) on a connection sni-guard lets it use
(`sni_guard=-`, not a 421): a client that honours the 421 opens a new connection with that host's
SNI. In a dry
run nothing is answered 421: the would-be 421s (`sni_guard=dry_run_421`) show which clients
coalesce, to compare with the README's table of clients that retry.

    kubectl logs -n istio-system -l istio=ingressgateway -c istio-proxy --since=1h --tail=-1 \\
        | python3 clients_without_retry.py

Prints one row per user agent, most 421s not retried first (at most --rows rows). Exit status 0:
every 421 was retried; 1: some were not; 2: no access-log line in that format was read. Python
3.9 or later, standard library only. It keeps what it needs of every line in memory (about 150
bytes a line): read an hour, not a week. The address is the one Envoy saw: behind a load
balancer that hides clients' addresses, clients behind it share one.
"""

from __future__ import annotations

import argparse
import bisect
import re
import sys
from collections import defaultdict
from datetime import datetime

FIELD = re.compile(r'(\w+)=("[^"]*"|\S*)')
REQUIRED = {"start", "client", "authority", "status", "sni_guard", "ua"}
UA_WIDTH = 130  # a browser's user agent whole (Safari's and Chrome's are about 120)


def parse_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def host_of(authority: str) -> str:
    """The host of an :authority, folded: no port, no trailing dot, lower case."""
    if authority.startswith("["):
        host = authority[1:].split("]", 1)[0]
    else:
        host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    return host.rstrip(".").lower()


def shown(text: str) -> str:
    """`text` (from a client) safe for a terminal: control and non-ASCII characters escaped,
    cut to UA_WIDTH characters."""
    escaped = "".join(c if " " <= c < "\x7f" else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                      for c in text)
    return escaped if len(escaped) <= UA_WIDTH else escaped[:UA_WIDTH - 3] + "..."


class Report:
    def __init__(self) -> None:
        self.lines = 0
        self.refused: list[tuple[float, tuple, str]] = []  # (time, (client, ua, host), ua) of each 421
        self.served: dict[tuple, list[float]] = defaultdict(list)  # times of the requests sni-guard let be
        self.would: dict[str, int] = defaultdict(int)  # dry-run would-be 421s per user agent

    def read(self, line: str) -> None:
        fields = dict(FIELD.findall(line))
        if not REQUIRED <= fields.keys():
            return
        when = parse_time(fields["start"])
        if when is None:
            return
        self.lines += 1
        ua = fields["ua"].strip('"')
        key = (fields["client"], ua, host_of(fields["authority"]))
        mark = fields["sni_guard"]
        if mark == "421":
            self.refused.append((when, key, ua))
            return
        if mark == "dry_run_421":
            self.would[ua] += 1
        elif mark == "-" and fields["status"] != "421":
            self.served[key].append(when)

    def rows(self, window: float) -> list[tuple[str, int, int, int, int]]:
        """(user agent, 421s, retried, not retried, dry-run would-be 421s), most not retried first."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for times in self.served.values():
            times.sort()
        for when, key, ua in self.refused:
            times = self.served.get(key, [])
            at = bisect.bisect_left(times, when)
            retried = at < len(times) and times[at] - when <= window
            counts[ua][0 if retried else 1] += 1
        agents = set(counts) | set(self.would)
        rows = [(ua, sum(counts[ua]), counts[ua][0], counts[ua][1], self.would.get(ua, 0)) for ua in agents]
        return sorted(rows, key=lambda r: (-r[3], -r[1], -r[4], r[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=["-"], help="access logs (default: standard input)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds a retry may take (default 10)")
    parser.add_argument("--rows", type=int, default=20, help="user agents shown (default 20)")
    args = parser.parse_args(argv)
    report = Report()
    for name in args.files:
        stream = sys.stdin if name == "-" else open(name, encoding="utf-8", errors="replace")
        with stream:
            for line in stream:
                report.read(line)
    if report.lines == 0:
        print("no access-log line in the format of monitoring/istiod-values.yaml "
              "(start=... client=... authority=... status=... sni_guard=... ua=\"...\")", file=sys.stderr)
        return 2
    rows = report.rows(args.window)
    header = ("user agent", "421s", "retried", "not retried", "dry-run would-be 421s")
    width = max([len(header[0])] + [len(shown(r[0])) for r in rows[:args.rows]])
    print(f"{header[0]:<{width}} | {header[1]:>4} | {header[2]:>7} | {header[3]:>11} | {header[4]}")
    for ua, refused, retried, not_retried, would in rows[:args.rows]:
        print(f"{shown(ua):<{width}} | {refused:>4} | {retried:>7} | {not_retried:>11} | {would}")
    if len(rows) > args.rows:
        print(f"... and {len(rows) - args.rows} more user agents")
    total = sum(r[3] for r in rows)
    print(f"{report.lines} requests read; {sum(r[1] for r in rows)} answered 421, {total} not retried "
          f"within {args.window:g} s; {sum(r[4] for r in rows)} would-be 421s in dry run.")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
