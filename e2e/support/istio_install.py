"""sni-guard installed in an Istio-shaped gateway as the README's Adopt section installs it: the
image (`scripts/oci_image.py`, as `make image`), the WasmPlugin (`sni-guard config`, as `make
manifests`), a registry serving the image at the manifest's URL (e2e/support/istiod.py), and a
gateway Envoy that gets its listeners and each WasmPlugin's ECDS resource as istiod and
istio-agent hand them over, set up with the repository's observability settings
(monitoring/, e2e/support/istio_telemetry.py), at istio-proxy's log level and with
its drain options."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from e2e.support import cli, istio_telemetry, istiod, manifests, xds
from e2e.support import envoy as envoy_support

ROOT = envoy_support.ROOT
IMAGE_REPOSITORY = "oci://registry.example.com/sni-guard"
ISTIO_PROXY_LOG_LEVEL = "warning"
# pilot-agent's Envoy options that change what connections see (pkg/envoy/proxy.go `args`): the
# default drainDuration, and "immediate" draining, so that a connection on a replaced filter chain
# is told to go away with its next response. (The access log is flushed every 0.1 s here, not
# istio-proxy's 1 s, for the tests' sake.)
ISTIO_PROXY_ARGS = ["--drain-time-s", "45", "--drain-strategy", "immediate", "--allow-unknown-static-fields"]


def version() -> str:
    """The workspace's version, as `make image` tags the image."""
    return re.search(r'^version = "(.*)"', (ROOT / "Cargo.toml").read_text(), re.MULTILINE).group(1)


def build_image(module: Path, layout: Path, tag: str) -> str:
    """`module` as an OCI image layout (`make image`); its manifest digest."""
    subprocess.run([sys.executable, "scripts/oci_image.py", str(module), "--layout", str(layout), "--tag", tag],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    return istiod.manifest_digest(layout)


@dataclass
class Install:
    plugin: istiod.WasmPlugin  # the manifest's WasmPlugin, resourceVersion 1
    registry: istiod.FakeRegistry
    layout: Path
    manifest: Path


def install(directory: Path, mode: str = "enforce", module: Path = envoy_support.WASM, tag: str | None = None,
            registry: istiod.FakeRegistry | None = None) -> Install:
    """`make image` and `make manifests MODE=mode` for `module` into `directory`, the image
    tagged `tag` (default: the workspace's version), and a registry (or `registry`) serving it
    at the manifest's URL."""
    tag = tag or version()
    layout = directory / "oci"
    build_image(module, layout, tag)
    manifest = directory / "manifests" / "wasmplugin.yaml"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(cli.config(
        "--kind", "wasmplugin", "--image", f"{IMAGE_REPOSITORY}:{tag}", "--oci-layout", layout,
        "--selector", "istio=ingressgateway", "--mode", mode, manifests.EXAMPLE_GATEWAYS))
    [plugin] = istiod.load_wasm_plugins(manifest)
    registry = registry or istiod.FakeRegistry(directory / "agent-cache")
    registry.add_image(plugin.spec["url"], layout)
    return Install(plugin, registry, layout, manifest)


@dataclass
class RunningGateway:
    envoy: xds.XdsEnvoy
    istiod: istiod.Gateway
    ports: dict[str, int]
    base_listener: dict  # the example's TLS listener with Istio's access log, before any plugin

    def listeners(self, plugins_by_listener: dict[str, list[istiod.WasmPlugin]]) -> list[dict]:
        """The listeners istiod sends for these WasmPlugins per listener (writing their ECDS files)."""
        return [self.istiod.listener(self.base_listener, plugins, name)
                for name, plugins in plugins_by_listener.items()]

    def push_listeners(self, plugins_by_listener: dict[str, list[istiod.WasmPlugin]], version: str) -> None:
        """A WasmPlugin created or deleted: istiod pushes the listeners again."""
        xds.push_listeners(self.envoy, self.istiod.files, self.listeners(plugins_by_listener), version)

    def stop(self) -> None:
        self.envoy.stop()


def start_gateway(certs, registry: istiod.FakeRegistry, directory: Path,
                  listeners: dict[str, list[istiod.WasmPlugin]], naming: str = "1.30",
                  observability: istio_telemetry.Observability | None = None,
                  example: dict | None = None) -> RunningGateway:
    """A gateway Envoy with one copy of the example's TLS listener (or `example`'s) per entry of
    `listeners`, each with those WasmPlugins (oldest first) where the example has sni-guard,
    started."""
    observability = observability or istio_telemetry.Observability.shipped()
    files = xds.FileXds(directory / "xds")
    listener = envoy_support.https_listener(envoy_support.prepare(certs, example=example))
    base = observability.apply_to_listener(listener)
    running = RunningGateway(None, istiod.Gateway(files, registry, naming), {}, base)
    bootstrap = observability.apply(files.bootstrap(envoy_support.prepare(certs), running.listeners(listeners)))
    running.envoy = xds.XdsEnvoy(bootstrap, directory, name="envoy", log_level=ISTIO_PROXY_LOG_LEVEL)
    running.envoy.extra_args = list(ISTIO_PROXY_ARGS)
    running.envoy.start()
    running.ports = xds.listener_ports(running.envoy)
    return running
