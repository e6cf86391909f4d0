"""Prints the README's "Filters before sni-guard" table from a real run: what a misdirected
request gets on a gateway with Istio's filters for a CUSTOM AuthorizationPolicy, a
RequestAuthentication and a DENY policy, with sni-guard placed as each installed form places it
(e2e/support/filter_order.py; the tests asserting the same are e2e/envoy/test_filter_order.py).

    .venv/bin/python scripts/filter_order_table.py
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from e2e.support import envoy as envoy_support
from e2e.support import filter_order


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="sni-guard-filter-order-"))
    try:
        certs = envoy_support.make_certs(workdir / "certs")
        with filter_order.gateway(certs, workdir / "gateway") as gateway:
            rows = []
            for probe in filter_order.MISDIRECTED.values():
                cells = []
                for variant in filter_order.VARIANTS:
                    reply = gateway.get(variant, probe)
                    cells.append(str(reply.status))
                rows.append((probe.what, cells))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("| request | " + " | ".join(filter_order.VARIANT_NAMES[v] for v in filter_order.VARIANTS) + " |")
    print("|---" * (len(filter_order.VARIANTS) + 1) + "|")
    for what, cells in rows:
        print(f"| {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
