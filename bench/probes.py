"""Probe modules: the smallest proxy-wasm modules that do one thing per request each, so the
benchmark can show where a filter's cost goes in Envoy (the crossings between Envoy and the
module), apart from anything sni-guard's own code does. Written as WebAssembly text here and
assembled with binaryen's `wasm-as` (installed by `make deps`) at benchmark time.

Every probe exports only what Envoy needs plus `proxy_on_request_headers`, answers nothing
(all requests pass), and hands the host one fixed scratch address for values it returns.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# What each probe's proxy_on_request_headers does, in WebAssembly text.
READ_AUTHORITY = ("(drop (call $get_header (i32.const 0) (i32.const 1024) (i32.const 10) "
                  "(i32.const 256) (i32.const 260)))")
READ_SNI = "(drop (call $get_property (i32.const 1040) (i32.const 33) (i32.const 264) (i32.const 268)))"
# A host call that returns no data, so Envoy does not call back into the module to allocate.
HEADER_MAP_SIZE = "(drop (call $get_header_map_size (i32.const 0) (i32.const 256)))"
# Envoy's CEL, evaluated by the host; results pointer 0: only the status comes back. A failed
# evaluation traps, so a probe whose CEL does not run cannot pass for a cheap one.
CEL_EVALUATE = ("(if (call $foreign (i32.const 1120) (i32.const 13) (i32.const 600) (i32.const 4) "
                "(i32.const 0) (i32.const 0)) (then unreachable))")
CEL_EXPRESSION = "request.host == connection.requested_server_name || 1/0 == 0"

PROBES = {
    "probe-floor": ("exports proxy_on_request_headers, makes no host call", ""),
    "probe-call": ("one host call that returns no data (header map size)", HEADER_MAP_SIZE),
    "probe-authority": ("reads :authority (proxy_get_header_map_value)", READ_AUTHORITY),
    "probe-both": ("reads :authority and the SNI (proxy_get_property)", READ_AUTHORITY + " " + READ_SNI),
    "probe-cel": ("one CEL evaluation by Envoy comparing SNI and :authority, status only", CEL_EVALUATE),
}

TEMPLATE = """(module
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size" (func $get_header_map_size (param i32 i32) (result i32)))
  (import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) ":authority")
  (data (i32.const 1040) "connection\\00requested_server_name\\00")
  (data (i32.const 1100) "expr_create")
  (data (i32.const 1120) "expr_evaluate")
  (data (i32.const 2048) "{expression}")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 8192))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    {configure}
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    {request}
    (i32.const 0))
)
"""

# Creates the CEL expression once and keeps its 4-byte token at address 600; refuses to start
# (configure returns 0) if Envoy has no CEL or the expression does not compile.
CEL_CREATE = ("(if (call $foreign (i32.const 1100) (i32.const 11) (i32.const 2048) (i32.const {length}) "
              "(i32.const 512) (i32.const 516)) (then (return (i32.const 0))))\n"
              """    (if (i32.ne (i32.load (i32.const 516)) (i32.const 4)) (then (return (i32.const 0))))
    (i32.store (i32.const 600) (i32.load (i32.load (i32.const 512))))""")


def build(directory: Path) -> dict[str, tuple[str, Path]]:
    """Assembles every probe into `directory`; returns {name: (what it does, path)}."""
    directory.mkdir(parents=True, exist_ok=True)
    built = {}
    for name, (what, request) in PROBES.items():
        configure = CEL_CREATE.format(length=len(CEL_EXPRESSION)) if request == CEL_EVALUATE else ""
        text = TEMPLATE.format(expression=CEL_EXPRESSION.replace('"', '\\"'), configure=configure, request=request)
        source, module = directory / f"{name}.wat", directory / f"{name}.wasm"
        source.write_text(text)
        subprocess.run(["wasm-as", str(source), "-o", str(module)], check=True, capture_output=True)
        built[name] = (what, module)
    return built
