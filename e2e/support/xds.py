"""Configuration pushed to a running Envoy the way a control plane pushes it, through files Envoy
watches: listeners by LDS, HTTP filter configurations by ECDS.

Envoy's `path_config_source` watches a file for being replaced (a rename onto it), so each push
writes a DiscoveryResponse (`version_info` and `resources`) to a temporary file in the same
directory and renames it over the watched one: Envoy never reads half a file. After a push the
helpers here wait, bounded, until Envoy's own statistics show the version accepted (or
rejected) and the listener in service again, so a request sent next meets the pushed
configuration.

What differs from a control plane over gRPC: Envoy sends no ACK or NACK to a file. A rejected
update shows as `update_rejected` (LDS) or `config_fail` (ECDS) in the statistics and as an
`error_state` in `/config_dump`, and Envoy keeps what it had.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from pathlib import Path

import yaml

from e2e.support import envoy as envoy_support

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
EXTENSION_CONFIG_TYPE = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
# An Istio gateway's node identity (pilot-agent's `router~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`):
# Envoy requires a node id and cluster for any dynamic resource.
GATEWAY_NODE = {"id": "router~127.0.0.1~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local",
                "cluster": "istio-ingressgateway.istio-system"}


ECDS_SETTLE_SECONDS = 0.1


class PushRejected(AssertionError):
    """Envoy refused a pushed configuration and kept the previous one."""


def atomic_write(path: Path, text: str) -> None:
    """Replaces `path` in one rename, the form of update Envoy's file watch reacts to."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def discovery_response(version: str, type_url: str, resources: list[dict]) -> dict:
    return {"version_info": version,
            "resources": [{"@type": type_url, **copy.deepcopy(r)} for r in resources]}


def file_source(path: Path, initial_fetch_timeout: str | None = None) -> dict:
    """A ConfigSource reading `path`; `initial_fetch_timeout` as in a control plane's config
    source (Istio's ECDS uses "0s": wait for the first configuration without a limit)."""
    source = {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"}
    if initial_fetch_timeout is not None:
        source["initial_fetch_timeout"] = initial_fetch_timeout
    return source


def _counter(stats_text: str, name: str) -> int | None:
    m = re.search(rf"^{re.escape(name)}: (\d+)$", stats_text, re.MULTILINE)
    return int(m.group(1)) if m else None


def _text_stat(stats_text: str, name: str) -> str | None:
    m = re.search(rf'^{re.escape(name)}: "(.*)"$', stats_text, re.MULTILINE)
    return m.group(1) if m else None


class FileXds:
    """The files one Envoy reads its dynamic configuration from, in `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.lds_path = directory / "lds.yaml"

    # --- LDS ---

    def bootstrap(self, config: dict, listeners: list[dict] | None = None, version: str = "1") -> dict:
        """`config` (a static bootstrap, e.g. from `envoy_support.prepare`) with its listeners
        moved to LDS, or `listeners` served there instead. Writes the first LDS file."""
        config = copy.deepcopy(config)
        static = config.setdefault("static_resources", {}).pop("listeners", [])
        config["node"] = copy.deepcopy(GATEWAY_NODE)
        config.setdefault("dynamic_resources", {})["lds_config"] = file_source(self.lds_path)
        self.write_listeners(static if listeners is None else listeners, version)
        return config

    def write_listeners(self, listeners: list[dict], version: str) -> None:
        atomic_write(self.lds_path, yaml.safe_dump(discovery_response(version, LISTENER_TYPE, listeners),
                                                   sort_keys=False))

    # --- ECDS ---

    def ecds_path(self, resource_name: str) -> Path:
        """One file per extension configuration: Envoy's ECDS subscription takes exactly one
        resource, named as the filter asks for it."""
        return self.directory / ("ecds-" + re.sub(r"[^A-Za-z0-9_.-]", "_", resource_name) + ".yaml")

    def write_extension_config(self, resource: dict, version: str) -> None:
        """`resource`: a TypedExtensionConfig (`name` and `typed_config`)."""
        atomic_write(self.ecds_path(resource["name"]),
                     yaml.safe_dump(discovery_response(version, EXTENSION_CONFIG_TYPE, [resource]), sort_keys=False))


class XdsEnvoy(envoy_support.Envoy):
    """An Envoy whose listeners may come from LDS: ready once the admin API says LIVE (Envoy
    gets there only after the first LDS and ECDS configurations were taken or refused), and only
    then are the listeners read; `port` is the first listener's, `quic_port` the first QUIC
    listener's, `listener_ports` all of them."""

    def _ready(self) -> bool:
        if self.admin("/ready").strip() != "LIVE":
            return False
        self._set_ports(json.loads(self.admin("/listeners?format=json"))["listener_statuses"])
        return True

    def listener_configs(self) -> list[dict]:
        """The listeners of the LDS file, or the bootstrap's static ones without LDS."""
        source = self.config.get("dynamic_resources", {}).get("lds_config", {}).get("path_config_source")
        if source is None:
            return super().listener_configs()
        return yaml.safe_load(Path(source["path"]).read_text())["resources"]


def listener_ports(envoy: envoy_support.Envoy) -> dict[str, int]:
    """Port of each active listener, by name (each was bound to port 0)."""
    statuses = json.loads(envoy.admin("/listeners?format=json"))["listener_statuses"]
    return {s["name"]: s["local_address"]["socket_address"]["port_value"] for s in statuses}


def listener_filters(envoy: envoy_support.Envoy, name: str) -> list[dict]:
    """The HTTP filters of the first filter chain of the active listener `name`."""
    dump = json.loads(envoy.admin("/config_dump?resource=dynamic_listeners"))
    for entry in dump.get("configs", []):
        if entry.get("name") == name and "active_state" in entry:
            chain = entry["active_state"]["listener"]["filter_chains"][0]
            return chain["filters"][0]["typed_config"]["http_filters"]
    raise KeyError(f"no active listener {name!r}")


def _wait(what: str, envoy: envoy_support.Envoy, check, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not seen after {timeout}s:\n{envoy.log_tail()}")
        time.sleep(0.02)


def push_listeners(envoy: envoy_support.Envoy, xds: FileXds, listeners: list[dict], version: str,
                   timeout: float = 10.0) -> None:
    """Pushes `listeners` as LDS version `version` and returns once Envoy has taken it: LDS
    reports the version, no listener is warming, and the replaced listener or filter chains have
    started draining (Envoy drains them only after the workers serve the new ones). Raises
    PushRejected if Envoy refuses it."""
    before = envoy.admin("/stats?filter=^listener_manager\\.")
    rejected_before = _counter(before, "listener_manager.lds.update_rejected") or 0
    draining_before = _draining(before)
    xds.write_listeners(listeners, version)

    def taken():
        stats = envoy.admin("/stats?filter=^listener_manager\\.")
        if (_counter(stats, "listener_manager.lds.update_rejected") or 0) > rejected_before:
            raise PushRejected(f"Envoy rejected LDS version {version}:\n{envoy.log_tail(15)}")
        if (_text_stat(stats, "listener_manager.lds.version_text") == version
                and _counter(stats, "listener_manager.total_listeners_warming") == 0
                and _draining(stats) > draining_before):
            return True
        return None

    _wait(f"LDS version {version} in service", envoy, taken, timeout)


def _draining(stats: str) -> int:
    """Listeners and filter chains draining now (an in-place update drains only filter chains)."""
    return sum(_counter(stats, f"listener_manager.{n}") or 0
               for n in ("total_listeners_draining", "total_filter_chains_draining"))


def draining(envoy: envoy_support.Envoy) -> dict[str, int]:
    stats = envoy.admin("/stats?filter=^listener_manager\\.total_")
    return {n: _counter(stats, f"listener_manager.{n}") or 0
            for n in ("total_listeners_draining", "total_filter_chains_draining")}


# --- ECDS ---

def ecds_stats(envoy: envoy_support.Envoy, resource_name: str) -> dict[str, int | str]:
    """Envoy's statistics for one ECDS HTTP filter configuration: `update_success`,
    `update_rejected`, `config_fail`, `config_reload` (counted for rejected updates too), and
    `version_text`, the version in force."""
    prefix = f"extension_config_discovery.http_filter.{resource_name}."
    out: dict[str, int | str] = {}
    for line in envoy.admin("/stats?filter=" + re.escape(prefix)).splitlines():
        name, _, value = line.partition(": ")
        if not name.startswith(prefix):
            continue
        value = value.strip()
        if value.isdigit():
            out[name[len(prefix):]] = int(value)
        elif value.startswith('"'):
            out[name[len(prefix):]] = value.strip('"')
    return out


def ecds_dump(envoy: envoy_support.Envoy, resource_name: str) -> dict:
    """The `/config_dump` entry of one ECDS filter configuration (`version_info`,
    `ecds_filter`). In Envoy 1.40 it shows the last configuration *received*, a rejected one
    included, not the one in force: `ecds_stats(...)["version_text"]` is that."""
    dump = json.loads(envoy.admin("/config_dump?resource=ecds_filters"))
    for entry in dump.get("configs", []):
        if entry.get("ecds_filter", {}).get("name") == resource_name:
            return entry
    return {}


def push_extension_config(envoy: envoy_support.Envoy, xds: FileXds, resource: dict, version: str,
                          timeout: float = 10.0) -> str:
    """Pushes one ECDS resource as version `version`; returns "accepted" once Envoy has it in
    force (`version_text` is `version`) or "rejected" once Envoy counts it rejected (it then
    keeps the previous configuration)."""
    name = resource["name"]
    before = ecds_stats(envoy, name)
    xds.write_extension_config(resource, version)

    def outcome():
        stats = ecds_stats(envoy, name)
        if stats.get("update_rejected", 0) > before.get("update_rejected", 0):
            return "rejected"
        if stats.get("update_success", 0) > before.get("update_success", 0) and stats.get("version_text") == version:
            return "accepted"
        return None

    result = _wait(f"ECDS {name} version {version} accepted or rejected", envoy, outcome, timeout)
    # Envoy counts the update on the main thread and hands the new configuration to the workers
    # by posting to their event loops; give those posts a moment before the next request.
    time.sleep(ECDS_SETTLE_SECONDS)
    return result


# --- sni-guard by ECDS, as a WasmPlugin reaches Envoy ---

SNI_GUARD_RESOURCE = "sni-guard"


def ecds_gateway(certs: envoy_support.Certs, files: FileXds, plugin_config: dict,
                 wasm: Path = envoy_support.WASM) -> tuple[dict, dict]:
    """The example's TLS listener (by LDS) with sni-guard delivered by ECDS, as istio-agent hands
    a WasmPlugin to Envoy (a local module, no environment, no matcher in front): the bootstrap,
    and the ECDS resource for `plugin_config`, written as version 1."""
    config = envoy_support.without_access_log(
        envoy_support.without_matcher(envoy_support.prepare(certs, plugin_config=plugin_config, wasm=wasm)))
    resource = None
    for hcm in envoy_support.connection_managers(config):
        for i, f in enumerate(hcm["http_filters"]):
            if f["name"] == envoy_support.SNI_GUARD_FILTER:
                resource = {"name": SNI_GUARD_RESOURCE, "typed_config": f["typed_config"]}
                hcm["http_filters"][i] = {"name": SNI_GUARD_RESOURCE, "config_discovery": {
                    "config_source": file_source(files.ecds_path(SNI_GUARD_RESOURCE), "0s"),
                    "type_urls": [WASM_FILTER_TYPE]}}
    if resource is None:
        raise KeyError("no sni-guard filter in the example")
    files.write_extension_config(resource, "1")
    return files.bootstrap(config), resource


def with_plugin_config(resource: dict, plugin_config: dict) -> dict:
    """sni-guard's ECDS resource with another plugin configuration."""
    resource = copy.deepcopy(resource)
    resource["typed_config"]["config"]["configuration"]["value"] = json.dumps(plugin_config)
    return resource
