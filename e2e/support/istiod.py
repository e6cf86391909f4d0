"""What istiod and istio-agent hand Envoy for a WasmPlugin, rebuilt in Python from Istio's
source (istio/istio, read at the mirror's HEAD, Aug 2026, and at tag 1.29.6), so the e2e tests
run sni-guard the way a gateway receives it instead of the hand-written `envoy.yaml`.

istiod (pilot):

- Istio 1.30+ translates every WasmPlugin into a synthetic TrafficExtension named
  `<name>~istio-translated-wasmplugin` (pilot/pkg/config/kube/extensions/translate.go) and
  builds both from it; Istio <= 1.29 built them from the WasmPlugin itself
  (pilot/pkg/model/extensions.go at 1.29.6). Hence two naming schemes, `ISTIO_NAMING`.
- The HTTP connection manager gets, in the WasmPlugin's phase, a filter named after the
  resource with `config_discovery`: `config_source` ADS with `initial_fetch_timeout: 0s` ("we
  block proxy init until extension filters are loaded"), `type_urls` the Wasm and the RBAC HTTP
  filter, and no `default_config` nor `apply_default_config_without_warming`
  (pilot/pkg/networking/core/extension/extensionfilter.go, `toEnvoyHTTPTrafficExtension`).
- ECDS serves a TypedExtensionConfig of that name holding an
  `envoy.extensions.filters.http.wasm.v3.Wasm` whose PluginConfig has (pilot/pkg/model/
  extensions.go, `buildWasmConfig`, `buildVMConfig`, `buildDataSource`): `name`
  `<namespace>.<name>` (plus the synthetic suffix on 1.30+), `root_id` the `pluginName`, no
  `vm_id`, `vm_config.runtime` v8, `vm_config.code.remote` (`http_uri` with the URL, a 30 s
  timeout and cluster `_`, and the `sha256`), `vm_config.environment_variables` with
  `ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION` (the object's resourceVersion) and
  `ISTIO_META_WASM_IMAGE_PULL_POLICY` (when `imagePullPolicy` is set) besides `vmConfig.env`
  (INLINE values as key_values, HOST names as host_env_keys), `configuration` a
  StringValue with `pluginConfig` as compact JSON with sorted keys (golang/protobuf jsonpb; an
  empty Any when `pluginConfig` is empty, left out here; not exercised, every manifest has a
  `pluginConfig`), and `failure_policy` FAIL_OPEN, FAIL_CLOSED or
  FAIL_RELOAD for `failStrategy` FAIL_OPEN, FAIL_CLOSE (also when unset) or FAIL_RELOAD; never
  the deprecated `fail_open`.

istio-agent (pkg/wasm/convert.go `MaybeConvertWasmExtensionConfig`, called from
pkg/istio-agent/xds_proxy.go on every ECDS response before forwarding it to Envoy):

- a Wasm resource with remote code is fetched into the agent's cache (pkg/wasm/cache.go:
  `<dir>/<sha256 of the URL without tag>/<checksum>.wasm`; for `oci://` the checksum is the
  image manifest digest, compared with `sha256`; the bytes must start with the Wasm magic) and
  its `vm_config.code` rewritten to that local file;
- every `ISTIO_META_*` environment variable is removed before Envoy sees the resource (an empty
  `environment_variables` is dropped): the resource version does *not* reach Envoy, so every
  version of a WasmPlugin, and every WasmPlugin with the same module and `vmConfig`, lands in
  the same Envoy VM key. Only local `file://` modules pass the agent untouched, environment
  included;
- when the fetch fails, the resource is replaced by an RBAC HTTP filter of the same name:
  allow-all (no rules, stat prefix `wasm-default-allow`) if the failure policy is FAIL_OPEN,
  deny-all (empty rules, `wasm-default-deny`) otherwise.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from e2e.support import istio_chain, xds

WASM_HTTP_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
RBAC_HTTP_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
STRING_VALUE_TYPE = "type.googleapis.com/google.protobuf.StringValue"
RESOURCE_VERSION_ENV = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"
PULL_POLICY_ENV = "ISTIO_META_WASM_IMAGE_PULL_POLICY"
ISTIO_META_PREFIX = "ISTIO_META_"
SYNTHETIC_MARKER = "~istio-translated-wasmplugin"
ISTIO_NAMING = ("1.30", "1.29")
FAILURE_POLICY = {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN", "FAIL_RELOAD": "FAIL_RELOAD"}
WASM_MAGIC = b"\0asm"


@dataclass
class WasmPlugin:
    """One WasmPlugin object as the API server stores it: the manifest plus a resourceVersion.
    A TrafficExtension (Istio 1.31+) is held the same way, its `wasm` block's fields in `spec`
    beside `phase`, `priority`, `selector` and `match`, with `kind` saying which it is."""
    name: str
    namespace: str
    spec: dict
    resource_version: str = "1"
    kind: str = "WasmPlugin"

    @classmethod
    def from_manifest(cls, doc: dict, resource_version: str = "1") -> WasmPlugin:
        assert doc["kind"] in ("WasmPlugin", "TrafficExtension"), doc["kind"]
        spec = copy.deepcopy(doc["spec"])
        if doc["kind"] == "TrafficExtension":
            spec = {**{k: v for k, v in spec.items() if k != "wasm"}, **spec["wasm"]}
        return cls(doc["metadata"]["name"], doc["metadata"].get("namespace", "default"), spec, resource_version,
                   doc["kind"])

    def updated(self, resource_version: str, **spec_changes) -> WasmPlugin:
        """The object after an edit (`kubectl apply`): new resourceVersion, changed spec fields."""
        return WasmPlugin(self.name, self.namespace, {**copy.deepcopy(self.spec), **spec_changes}, resource_version,
                          self.kind)

    def renamed(self, name: str) -> WasmPlugin:
        return WasmPlugin(name, self.namespace, copy.deepcopy(self.spec), self.resource_version, self.kind)


def load_wasm_plugins(path: Path) -> list[WasmPlugin]:
    """The WasmPlugins and TrafficExtensions in a manifest file."""
    return [WasmPlugin.from_manifest(d) for d in yaml.safe_load_all(path.read_text())
            if d and d.get("kind") in ("WasmPlugin", "TrafficExtension")]


def plugin_name(plugin: WasmPlugin, naming: str = "1.30") -> str:
    """PluginConfig.name: `<namespace>.<name>` of the object istiod builds from (on 1.30+ the
    synthetic TrafficExtension a WasmPlugin becomes; a TrafficExtension is its own)."""
    name = plugin.name + (SYNTHETIC_MARKER if naming == "1.30" and plugin.kind == "WasmPlugin" else "")
    return f"{plugin.namespace}.{name}"


def resource_name(plugin: WasmPlugin, naming: str = "1.30") -> str:
    """The ECDS resource name, which is also the HTTP filter's name."""
    native = naming == "1.30" or plugin.kind == "TrafficExtension"
    prefix = "extensions.istio.io/trafficextension/" if native else "extensions.istio.io/wasmplugin/"
    return prefix + plugin_name(plugin, naming)


def http_filter(plugin: WasmPlugin, naming: str = "1.30", config_source: dict | None = None) -> dict:
    """The HCM filter istiod inserts. `config_source` replaces ADS (e.g. a file, for a test
    without a gRPC control plane); `initial_fetch_timeout: 0s` is kept from istiod's."""
    source = copy.deepcopy(config_source) if config_source else {"ads": {}, "resource_api_version": "V3"}
    source["initial_fetch_timeout"] = "0s"
    return {"name": resource_name(plugin, naming),
            "config_discovery": {"config_source": source,
                                 "type_urls": [WASM_HTTP_FILTER_TYPE, RBAC_HTTP_FILTER_TYPE]}}


def plugin_configuration(spec: dict) -> str:
    """`pluginConfig` as istiod serialises it (jsonpb of a Struct): compact, keys sorted."""
    return json.dumps(spec["pluginConfig"], separators=(",", ":"), sort_keys=True)


def extension_config(plugin: WasmPlugin, naming: str = "1.30") -> dict:
    """The ECDS resource istiod serves (before istio-agent rewrites it)."""
    spec = plugin.spec
    url = spec["url"]
    if "://" not in url:
        url = "oci://" + url  # istiod's default scheme
    if url.startswith("file://"):
        code = {"local": {"filename": url.removeprefix("file://")}}
    else:
        code = {"remote": {"http_uri": {"uri": url, "timeout": "30s", "cluster": "_"},
                           "sha256": spec.get("sha256", "")}}
    env = {}
    if spec.get("imagePullSecret"):
        env["ISTIO_META_WASM_IMAGE_PULL_SECRET"] = spec["imagePullSecret"]
    if spec.get("imagePullPolicy"):
        env[PULL_POLICY_ENV] = spec["imagePullPolicy"]
    env[RESOURCE_VERSION_ENV] = plugin.resource_version
    host_env_keys = []
    for var in spec.get("vmConfig", {}).get("env", []):
        if var.get("valueFrom", "INLINE") == "INLINE":
            env[var["name"]] = var.get("value", "")
        else:
            host_env_keys.append(var["name"])
    environment = {"key_values": env}
    if host_env_keys:
        environment["host_env_keys"] = host_env_keys
    config = {"name": plugin_name(plugin, naming)}
    if spec.get("pluginName"):
        config["root_id"] = spec["pluginName"]
    if spec.get("pluginConfig"):
        config["configuration"] = {"@type": STRING_VALUE_TYPE, "value": plugin_configuration(spec)}
    config["vm_config"] = {"runtime": "envoy.wasm.runtime.v8", "code": code,
                           "environment_variables": environment}
    config["failure_policy"] = FAILURE_POLICY[spec.get("failStrategy", "FAIL_CLOSE")]
    return {"name": resource_name(plugin, naming), "typed_config": {"@type": WASM_HTTP_FILTER_TYPE, "config": config}}


class FetchError(Exception):
    pass


class FakeRegistry:
    """Stands in for the registries istio-agent pulls from: `oci://` images by their OCI image
    layout directory (as `make image` writes), and `http(s)://` URLs by a file. Fetches land in
    a cache laid out as the agent's, and follow its checks."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir
        self.images: dict[str, Path] = {}   # image reference (URL without digest) -> layout
        self.files: dict[str, Path] = {}    # http(s) URL -> file

    def add_image(self, url: str, layout: Path) -> None:
        self.images[_image_reference(url)] = layout

    def add_file(self, url: str, path: Path) -> None:
        self.files[url] = path

    def fetch(self, url: str, sha256: str) -> Path:
        if url.startswith("oci://"):
            layout = self.images.get(_image_reference(url))
            if layout is None:
                raise FetchError(f"could not fetch Wasm OCI image: {url}: not found")
            checksum = manifest_digest(layout)
            if sha256 and sha256 != checksum:
                raise FetchError(f"module from {url} has checksum {checksum}, which does not match: {sha256}")
            module = image_module(layout)
            name = _image_name(url)
        elif url.startswith(("http://", "https://")):
            if url not in self.files:
                raise FetchError(f"download of {url} failed: 404")
            module = self.files[url].read_bytes()
            checksum = hashlib.sha256(module).hexdigest()
            if sha256 and sha256 != checksum:
                raise FetchError(f"module from {url} has checksum {checksum}, which does not match: {sha256}")
            name = url
        else:
            raise FetchError(f"unsupported Wasm module downloading URL scheme: {url}")
        if len(module) < 8 or module[:4] != WASM_MAGIC:
            raise FetchError(f"fetched Wasm binary from {url} is invalid")
        path = self.cache_dir / hashlib.sha256(name.encode()).hexdigest() / f"{checksum}.wasm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(module)
        return path


def _image_reference(url: str) -> str:
    """`oci://host/repo:tag` as it is, `oci://host/repo` as `...:latest`, a digest left off."""
    name = _image_name(url)
    rest = url.removeprefix("oci://").split("@", 1)[0]
    path = rest.partition("/")[2]
    tag = path.rsplit(":", 1)[1] if ":" in path else "latest"
    return f"{name}:{tag}"


def _image_name(url: str) -> str:
    """`oci://host/repo:tag` or `oci://host/repo@sha256:...` -> `oci://host/repo`."""
    rest = url.removeprefix("oci://")
    rest = rest.split("@", 1)[0]
    host, _, path = rest.partition("/")
    path = path.rsplit(":", 1)[0] if ":" in path else path
    return f"oci://{host}/{path}"


def manifest_digest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return index["manifests"][0]["digest"].removeprefix("sha256:")


def image_module(layout: Path) -> bytes:
    """plugin.wasm from the single layer of a compat-variant image."""
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / manifest_digest(layout)).read_bytes())
    layer = (blobs / manifest["layers"][0]["digest"].removeprefix("sha256:")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        return tar.extractfile("plugin.wasm").read()


def default_rbac_filter(name: str, fail_open: bool) -> dict:
    """What istio-agent substitutes for a Wasm resource whose module it cannot fetch."""
    if fail_open:
        rbac = {"@type": RBAC_HTTP_FILTER_TYPE, "rules_stat_prefix": "wasm-default-allow"}
    else:
        rbac = {"@type": RBAC_HTTP_FILTER_TYPE, "rules": {}, "rules_stat_prefix": "wasm-default-deny"}
    return {"name": name, "typed_config": rbac}


def agent_convert(resource: dict, registry: FakeRegistry) -> dict:
    """istio-agent's rewrite of one ECDS resource before Envoy gets it."""
    resource = copy.deepcopy(resource)
    typed = resource["typed_config"]
    if typed.get("@type") != WASM_HTTP_FILTER_TYPE:
        return resource
    config = typed["config"]
    vm = config["vm_config"]
    remote = vm["code"].get("remote")
    if remote is None:
        return resource  # a local module: forwarded as istiod wrote it, environment included
    env = vm.get("environment_variables", {})
    key_values = {k: v for k, v in env.get("key_values", {}).items() if not k.startswith(ISTIO_META_PREFIX)}
    if key_values:
        env["key_values"] = key_values
    elif env.get("host_env_keys"):
        env.pop("key_values", None)
    else:
        vm.pop("environment_variables", None)
    try:
        path = registry.fetch(remote["http_uri"]["uri"], remote.get("sha256", ""))
    except FetchError:
        policy = config.get("failure_policy")
        fail_open = policy == "FAIL_OPEN" if policy else bool(config.get("fail_open"))
        return default_rbac_filter(resource["name"], fail_open)
    vm["code"] = {"local": {"filename": str(path)}}
    return resource


def filters_by_phase(plugins: list[WasmPlugin], naming: str = "1.30",
                     config_sources: dict | None = None) -> dict[str, list[dict]]:
    """The HTTP filters istiod makes of `plugins` selecting one gateway, by phase
    (`istio_chain.PHASES`), each phase by descending `priority` (unset is the lowest), then in
    creation order (pass `plugins` oldest first: istiod sorts by creation time, then stably by
    priority)."""
    ordered = sorted(plugins, key=lambda p: -p.spec.get("priority", -2**31))
    out: dict[str, list[dict]] = {}
    for p in ordered:
        out.setdefault(istio_chain.phase(p.spec), []).append(
            http_filter(p, naming, (config_sources or {}).get(resource_name(p, naming))))
    return out


def gateway_filters(plugins: list[WasmPlugin], naming: str = "1.30", config_sources: dict | None = None) -> list[dict]:
    """The HTTP filters istiod puts in front of the router for `plugins` selecting one gateway
    that has no other filter there (no policies), phase by phase."""
    by_phase = filters_by_phase(plugins, naming, config_sources)
    return [f for phase in istio_chain.PHASES for f in by_phase.get(phase, [])]


class Gateway:
    """istiod and istio-agent for one gateway Envoy, over files: the listeners (LDS) are the
    example's TLS listener with its sni-guard filter replaced by the filters istiod inserts for
    the WasmPlugins selecting it; each WasmPlugin's ECDS resource, rewritten as istio-agent
    rewrites it, is in a file of its own that the filter's config source reads."""

    def __init__(self, files: xds.FileXds, registry: FakeRegistry, naming: str = "1.30"):
        self.files = files
        self.registry = registry
        self.naming = naming

    def resource(self, plugin: WasmPlugin) -> dict:
        """What Envoy receives for `plugin`."""
        return agent_convert(extension_config(plugin, self.naming), self.registry)

    def listener(self, base: dict, plugins: list[WasmPlugin], name: str | None = None,
                 policies: istio_chain.GatewayPolicies | None = None) -> dict:
        """`base` (a listener of the example) with, in every HTTP connection manager, the
        sni-guard filter replaced by `plugins`' filters, or, given the gateway's `policies`, the
        whole filter list istiod builds with them and `plugins` by phase
        (`istio_chain.http_filters`); writes their ECDS files (version: the objects'
        resourceVersion)."""
        listener = copy.deepcopy(base)
        if name:
            listener["name"] = name
        sources = {resource_name(p, self.naming): xds.file_source(self.files.ecds_path(resource_name(p, self.naming)))
                   for p in plugins}
        for chain in listener["filter_chains"]:
            hcm = chain["filters"][0]["typed_config"]
            if policies is not None:
                by_phase = filters_by_phase(plugins, self.naming, sources)
                hcm["http_filters"] = istio_chain.http_filters(policies, by_phase)
                continue
            filters = []
            for f in hcm["http_filters"]:
                if f["name"] == "sni-guard":
                    filters += gateway_filters(plugins, self.naming, sources)
                else:
                    filters.append(f)
            hcm["http_filters"] = filters
        for plugin in plugins:
            self.files.write_extension_config(self.resource(plugin), plugin.resource_version)
        return listener

    def push(self, envoy, plugin: WasmPlugin) -> str:
        """An edit of `plugin` reaching Envoy: "accepted" or "rejected"."""
        return xds.push_extension_config(envoy, self.files, self.resource(plugin), plugin.resource_version)
