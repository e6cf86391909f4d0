"""Tiny proxy-wasm modules assembled byte by byte, for what sni-guard itself never does.

- `crashing_module`: crashes while serving. Envoy's `failure_policy` (a WasmPlugin's
  `failStrategy`) decides what a request gets from a plugin whose VM has failed; a module whose
  `proxy_on_request_headers` traps is the plain way to get there.
- `stats_stand_in_module`: counts requests the way Istio's stats filter (`istio.stats`) counts
  them, for a gateway whose Envoy has no istio/proxy build. `istio.stats` records
  `istio_requests_total` with `response_code` in its access-log callback, which Envoy calls for
  every stream of a filter chain, whichever filter answered it (istio/proxy,
  source/extensions/filters/http/istio_stats/istio_stats.cc before commit d13a386d7, which
  moved it to envoyproxy/envoy: `IstioStatsFilter::log`, registered with
  `addAccessLogHandler`). Envoy's Wasm filter registers the same way and calls
  `proxy_on_log`, so this module is in the position `istio.stats` is in, and says what it
  would count.

Each module exports what proxy-wasm-cpp-host looks for (`memory`, `proxy_abi_version_0_2_1`,
`proxy_on_memory_allocate`, `proxy_on_vm_start`, `proxy_on_configure`,
`proxy_on_context_create`) and its own stream callbacks.

`with_custom_section` gives a module another digest without changing its code.
"""

from __future__ import annotations

I32, I64 = 0x7F, 0x7E
FUNC_TYPE = 0x60
EXPORT_FUNC, EXPORT_MEMORY = 0x00, 0x02
OP_UNREACHABLE, OP_IF, OP_ELSE, OP_END, OP_CALL, OP_DROP = 0x00, 0x04, 0x05, 0x0B, 0x10, 0x1A
OP_I32_LOAD, OP_I64_LOAD, OP_I32_STORE = 0x28, 0x29, 0x36
OP_I32_CONST, OP_I64_CONST, OP_I64_EQ = 0x41, 0x42, 0x51
BLOCK_EMPTY = 0x40
METRIC_COUNTER = 0


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def _vec(items: list[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _uleb(len(payload)) + payload


def _name(s: str) -> bytes:
    return _uleb(len(s)) + s.encode()


def _i32(n: int) -> bytes:
    return bytes([OP_I32_CONST]) + _sleb(n)


def _i64(n: int) -> bytes:
    return bytes([OP_I64_CONST]) + _sleb(n)


def _mem(op: int, align: int) -> bytes:
    return bytes([op]) + _uleb(align) + _uleb(0)  # offset 0


def _call(index: int) -> bytes:
    return bytes([OP_CALL]) + _uleb(index)


Signature = tuple[tuple[int, ...], tuple[int, ...]]


def _module(imports: list[tuple[str, Signature]], functions: list[tuple[str, Signature, bytes]],
            data: list[tuple[int, bytes]] = ()) -> bytes:
    """A module importing `imports` (name, signature) from `env` and exporting `functions`
    (name, signature, body without locals) and one page of memory holding `data` (offset, bytes).
    Imported functions take the first indices, in order."""
    types: list[Signature] = []

    def type_index(signature: Signature) -> int:
        if signature not in types:
            types.append(signature)
        return types.index(signature)

    import_entries = [_name("env") + _name(name) + bytes([EXPORT_FUNC]) + _uleb(type_index(sig))
                      for name, sig in imports]
    function_types = [_uleb(type_index(sig)) for _, sig, _ in functions]
    type_section = _vec([bytes([FUNC_TYPE]) + _vec([bytes([p]) for p in params]) + _vec([bytes([r]) for r in results])
                         for params, results in types])
    memory_section = _vec([b"\x00" + _uleb(1)])  # one page, no maximum
    exports = [_name(name) + bytes([EXPORT_FUNC]) + _uleb(len(imports) + i) for i, (name, _, _) in enumerate(functions)]
    exports.append(_name("memory") + bytes([EXPORT_MEMORY]) + _uleb(0))
    bodies = []
    for _, _, body in functions:
        code = _vec([]) + body + bytes([OP_END])  # no locals
        bodies.append(_uleb(len(code)) + code)
    segments = [b"\x00" + _i32(offset) + bytes([OP_END]) + _vec([bytes([b]) for b in payload])
                for offset, payload in data]
    out = (b"\0asm" + (1).to_bytes(4, "little") + _section(1, type_section))
    if import_entries:
        out += _section(2, _vec(import_entries))
    out += (_section(3, _vec(function_types)) + _section(5, memory_section) + _section(7, _vec(exports))
            + _section(10, _vec(bodies)))
    if segments:
        out += _section(11, _vec(segments))
    return out


ALLOCATE: Signature = ((I32,), (I32,))
ROOT_CALL: Signature = ((I32, I32), (I32,))          # proxy_on_vm_start, proxy_on_configure
CONTEXT_CREATE: Signature = ((I32, I32), ())
REQUEST_HEADERS: Signature = ((I32, I32, I32), (I32,))
ON_LOG: Signature = ((I32,), ())
ABI_VERSION: Signature = ((), ())


def crashing_module() -> bytes:
    """A proxy-wasm module that starts and configures fine and traps on every request."""
    return _module([], [
        ("proxy_on_memory_allocate", ALLOCATE, _i32(1024)),
        ("proxy_on_vm_start", ROOT_CALL, _i32(1)),
        ("proxy_on_configure", ROOT_CALL, _i32(1)),
        ("proxy_on_context_create", CONTEXT_CREATE, b""),
        ("proxy_on_request_headers", REQUEST_HEADERS, bytes([OP_UNREACHABLE])),
        ("proxy_abi_version_0_2_1", ABI_VERSION, b""),
    ])


# The stand-in's counters, as Envoy shows them (`wasmcustom.` + the name the module defines).
STAND_IN_REQUEST_HEADERS = "stats_stand_in.request_headers"  # streams whose request headers reached it
STAND_IN_LOGGED_421 = "stats_stand_in.logged_421"            # streams it logged with response code 421
STAND_IN_LOGGED_OTHER = "stats_stand_in.logged_other"        # streams it logged with another code or none


def stats_stand_in_module() -> bytes:
    """A proxy-wasm module counting, as `istio.stats` would: in `proxy_on_log`, each stream by
    its `response.code` (421 or other); in `proxy_on_request_headers`, each stream whose request
    reached it. Memory: 0..8 zeros (the code when Envoy has none), 16 the property's address,
    20 its size, 32/36/40 the three counters' ids, 64 the property path, 128.. the names;
    Envoy's allocations land at 4096 (one at a time: the property value)."""
    imports = [
        ("proxy_get_property", ((I32, I32, I32, I32), (I32,))),
        ("proxy_define_metric", ((I32, I32, I32, I32), (I32,))),
        ("proxy_increment_metric", ((I32, I64), (I32,))),
    ]
    get_property, define_metric, increment_metric = 0, 1, 2
    path = b"response\0code"
    names = [(32, STAND_IN_REQUEST_HEADERS), (36, STAND_IN_LOGGED_421), (40, STAND_IN_LOGGED_OTHER)]
    data = [(64, path)]
    name_at = 128
    configure = b""
    for id_address, name in names:
        data.append((name_at, name.encode()))
        configure += (_i32(METRIC_COUNTER) + _i32(name_at) + _i32(len(name)) + _i32(id_address)
                      + _call(define_metric) + bytes([OP_DROP]))
        name_at += 64
    configure += _i32(1)

    def increment(id_address: int) -> bytes:
        return _i32(id_address) + _mem(OP_I32_LOAD, 2) + _i64(1) + _call(increment_metric) + bytes([OP_DROP])

    on_log = (_i32(16) + _i32(0) + _mem(OP_I32_STORE, 2)            # no value yet: read the zeros at 0
              + _i32(64) + _i32(len(path)) + _i32(16) + _i32(20) + _call(get_property) + bytes([OP_DROP])
              + _i32(16) + _mem(OP_I32_LOAD, 2) + _mem(OP_I64_LOAD, 3) + _i64(421) + bytes([OP_I64_EQ])
              + bytes([OP_IF, BLOCK_EMPTY]) + increment(36) + bytes([OP_ELSE]) + increment(40) + bytes([OP_END]))
    return _module(imports, [
        ("proxy_on_memory_allocate", ALLOCATE, _i32(4096)),
        ("proxy_on_vm_start", ROOT_CALL, _i32(1)),
        ("proxy_on_configure", ROOT_CALL, configure),
        ("proxy_on_context_create", CONTEXT_CREATE, b""),
        ("proxy_on_request_headers", REQUEST_HEADERS, increment(32) + _i32(0)),
        ("proxy_on_log", ON_LOG, on_log),
        ("proxy_abi_version_0_2_1", ABI_VERSION, b""),
    ], data)


def with_custom_section(module: bytes, name: str, payload: bytes) -> bytes:
    """`module` with a custom section appended: the same code under another digest, as a
    rebuild of a new release is (for the upgrade tests)."""
    return module + _section(0, _name(name) + payload)
