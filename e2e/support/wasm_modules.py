"""Tiny proxy-wasm modules assembled byte by byte, for what sni-guard itself never does: crash
while serving. Envoy's `failure_policy` (a WasmPlugin's `failStrategy`) decides what a request
gets from a plugin whose VM has failed; a module whose `proxy_on_request_headers` traps is the
plain way to get there.

The module exports what proxy-wasm-cpp-host looks for (`memory`, `proxy_abi_version_0_2_1`,
`proxy_on_memory_allocate`, `proxy_on_vm_start`, `proxy_on_configure`,
`proxy_on_context_create`) and a `proxy_on_request_headers` that executes `unreachable`.

`with_custom_section` gives a module another digest without changing its code.
"""

from __future__ import annotations

I32 = 0x7F
FUNC_TYPE = 0x60
EXPORT_FUNC, EXPORT_MEMORY = 0x00, 0x02
OP_UNREACHABLE, OP_I32_CONST, OP_END = 0x00, 0x41, 0x0B


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


def crashing_module() -> bytes:
    """A proxy-wasm module that starts and configures fine and traps on every request."""
    types = [
        ([I32], [I32]),            # 0: proxy_on_memory_allocate
        ([I32, I32], [I32]),       # 1: proxy_on_vm_start, proxy_on_configure
        ([I32, I32], []),          # 2: proxy_on_context_create
        ([I32, I32, I32], [I32]),  # 3: proxy_on_request_headers
        ([], []),                  # 4: proxy_abi_version_0_2_1
    ]
    functions = [  # (export name, type index, body)
        ("proxy_on_memory_allocate", 0, bytes([OP_I32_CONST]) + _sleb(1024)),
        ("proxy_on_vm_start", 1, bytes([OP_I32_CONST]) + _sleb(1)),
        ("proxy_on_configure", 1, bytes([OP_I32_CONST]) + _sleb(1)),
        ("proxy_on_context_create", 2, b""),
        ("proxy_on_request_headers", 3, bytes([OP_UNREACHABLE])),
        ("proxy_abi_version_0_2_1", 4, b""),
    ]
    type_section = _vec([bytes([FUNC_TYPE]) + _vec([bytes([p]) for p in params]) + _vec([bytes([r]) for r in results])
                         for params, results in types])
    function_section = _vec([_uleb(t) for _, t, _ in functions])
    memory_section = _vec([b"\x00" + _uleb(1)])  # one page, no maximum
    exports = [_name(name) + bytes([EXPORT_FUNC]) + _uleb(i) for i, (name, _, _) in enumerate(functions)]
    exports.append(_name("memory") + bytes([EXPORT_MEMORY]) + _uleb(0))
    bodies = []
    for _, _, body in functions:
        code = _vec([]) + body + bytes([OP_END])  # no locals
        bodies.append(_uleb(len(code)) + code)
    return (b"\0asm" + (1).to_bytes(4, "little")
            + _section(1, type_section) + _section(3, function_section) + _section(5, memory_section)
            + _section(7, _vec(exports)) + _section(10, _vec(bodies)))


def with_custom_section(module: bytes, name: str, payload: bytes) -> bytes:
    """`module` with a custom section appended: the same code under another digest, as a
    rebuild of a new release is (for the upgrade tests)."""
    return module + _section(0, _name(name) + payload)
