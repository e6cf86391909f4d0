"""What Istio makes of a gateway's observability settings, rebuilt from Istio's source (istio/istio
at 1.28.0, 1.29.0, 1.30.0 and 86c9f01 of 2026-08-22: the parts used here are the same in all
four), so the e2e tests run the repository's settings (monitoring/: the gateway
chart's pod annotations, istiod's access-log provider, the gateway's Telemetry) as a gateway
gets them.

pilot-agent's bootstrap (tools/packaging/common/envoy_bootstrap.json; pkg/bootstrap/config.go,
`getStatsOptions`):

- `application_log_config.log_format.text_format` (unless the proxy logs JSON): Envoy's own log
  as istio-proxy prints it, `TIME<tab>LEVEL<tab>envoy COMPONENT FILE:LINE<tab>MESSAGE<tab>thread=N`;

- `stats_config.use_all_default_tags: false` and Istio's own `stats_tags`, with one tag per
  `extraStatTags` entry (meshConfig.defaultConfig.extraStatTags and the pod annotation
  `sidecar.istio.io/extraStatTags`, comma-separated, both taken, duplicates dropped), regex
  `(TAG=\\.=(.*?);\\.;)`, placed after `mongo_prefix`;
- `stats_matcher.inclusion_list`: the prefix `reporter=`, then the inclusion prefixes (the
  annotation `sidecar.istio.io/statsInclusionPrefixes` if set, else
  proxyStatsMatcher.inclusionPrefixes, then always `cluster_manager,listener_manager,server,
  cluster.xds-grpc,wasm`), the suffixes (`rbac.allowed,rbac.denied,shadow_allowed,
  shadow_denied`, after the annotation's or proxy config's), the regexes (`vhost\\..*\\.route\\..*`
  after theirs), and the prefixes `component` and `istio`.

istiod's access log (pilot/pkg/model/telemetry.go `applicableTelemetries`, `mergeLogs`;
pilot/pkg/model/telemetry_logging.go `fileAccessLogFromTelemetry`):

- the Telemetries that apply to a workload: the root namespace's without selector, its own
  namespace's without selector, and those of its namespace whose `selector.matchLabels` it has;
  the providers of the most specific one that names any are the workload's;
- a provider is a meshConfig.extensionProviders entry, found by name (any case); an
  `envoyFileAccessLog` one becomes an `envoy.access_loggers.file` with `path` (default
  /dev/stdout) and its `logFormat.text`, a newline appended if it has none.

Fields the model does not handle (`match`, `filter`, `disabled`, `targetRefs`, other provider
kinds, `labels` formats) raise `Unsupported`, and a field Istio's API does not have
(istio/api mesh/v1alpha1/config.proto, `MeshConfig.ExtensionProvider`,
`EnvoyFileAccessLogProvider`) raises `UnknownField`: the repository's settings are read
strictly, never half-applied.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
GATEWAY_VALUES = MONITORING / "gateway-values.yaml"
ISTIOD_VALUES = MONITORING / "istiod-values.yaml"
TELEMETRY = MONITORING / "telemetry.yaml"
ROOT_NAMESPACE = "istio-system"
EXTRA_STAT_TAGS = "sidecar.istio.io/extraStatTags"
INCLUSION_PREFIXES = "sidecar.istio.io/statsInclusionPrefixes"
REQUIRED_PREFIXES = ["cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm"]
REQUIRED_SUFFIXES = ["rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied"]
REQUIRED_REGEXES = [r"vhost\..*\.route\..*"]
# envoy_bootstrap.json's stats_tags, split where the extraStatTags go.
_TAGS_BEFORE_EXTRA = [
    ("cluster_name", r"^cluster(\.(.+);)"),
    ("http_conn_manager_prefix", r"^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)"),
    ("thread_name", r"^server(\.(.+))\.watchdog"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    ("http_conn_manager_listener_prefix",
     r"^listener(?=\.).*?\.http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("listener_address", r"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("mongo_prefix", r"^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$"),
]
_TAGS_AFTER_EXTRA = [
    ("cache", r"(cache\.(.+?)\.)"),
    ("component", r"(component\.(.+?)\.)"),
    ("tag", r"(tag\.(.+?);\.)"),
    ("wasm_filter", r"(wasm_filter\.(.+?)\.)"),
    ("authz_enforce_result", r"rbac(\.(allowed|denied))"),
    ("authz_dry_run_action", r"(\.istio_dry_run_(allow|deny)_)"),
    ("authz_dry_run_result", r"(\.shadow_(allowed|denied))"),
]
ISTIO_PROXY_LOG_FORMAT = "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t"
FILE_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
# istio/api mesh/v1alpha1/config.proto, in the YAML (JSON) names Istio reads.
_PROVIDER_KINDS = {"envoyFileAccessLog", "envoyHttpAls", "envoyTcpAls", "envoyOtelAls", "envoyExtAuthzHttp",
                   "envoyExtAuthzGrpc", "zipkin", "lightstep", "datadog", "stackdriver", "opencensus",
                   "skywalking", "opentelemetry", "prometheus", "sds"}
_FILE_PROVIDER_FIELDS = {"path", "logFormat", "omitEmptyValues"}
_LOG_FORMAT_FIELDS = {"text", "labels"}


class UnknownField(ValueError):
    pass


class Unsupported(NotImplementedError):
    pass


@dataclass
class GatewayPods:
    """The gateway's pods as Istio sees them: namespace, labels, annotations."""
    namespace: str = ROOT_NAMESPACE
    labels: dict = field(default_factory=lambda: {"app": "istio-ingressgateway", "istio": "ingressgateway"})
    annotations: dict = field(default_factory=dict)


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def gateway_pods(values: Path = GATEWAY_VALUES) -> GatewayPods:
    """The default istio/gateway release's pods with the annotations of `values`' podAnnotations."""
    return GatewayPods(annotations=dict(load_yaml(values).get("podAnnotations") or {}))


def _split(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item]


def stats_config(pods: GatewayPods, proxy_config: dict | None = None) -> dict:
    """The `stats_config` pilot-agent writes into the bootstrap of `pods`' proxies."""
    proxy_config = proxy_config or {}
    tags = []
    for tag in [*proxy_config.get("extraStatTags", []), *_split(pods.annotations.get(EXTRA_STAT_TAGS))]:
        if tag and tag not in tags:
            tags.append(tag)
    matcher = proxy_config.get("proxyStatsMatcher", {})

    def option(annotation: str, from_proxy_config: str, required: list[str]) -> list[str]:
        chosen = _split(pods.annotations.get(annotation)) or list(matcher.get(from_proxy_config, []))
        return chosen + required

    prefixes = option(INCLUSION_PREFIXES, "inclusionPrefixes", REQUIRED_PREFIXES)
    suffixes = option("sidecar.istio.io/statsInclusionSuffixes", "inclusionSuffixes", REQUIRED_SUFFIXES)
    regexes = option("sidecar.istio.io/statsInclusionRegexps", "inclusionRegexps", REQUIRED_REGEXES)
    stats_tags = ([{"tag_name": n, "regex": r} for n, r in _TAGS_BEFORE_EXTRA]
                  + [{"tag_name": t, "regex": f"({t}=\\.=(.*?);\\.;)"} for t in tags]
                  + [{"tag_name": n, "regex": r} for n, r in _TAGS_AFTER_EXTRA])
    patterns = ([{"prefix": "reporter="}] + [{"prefix": p} for p in prefixes] + [{"suffix": s} for s in suffixes]
                + [{"safe_regex": {"regex": r}} for r in regexes] + [{"prefix": "component"}, {"prefix": "istio"}])
    return {"use_all_default_tags": False, "stats_tags": stats_tags,
            "stats_matcher": {"inclusion_list": {"patterns": patterns}}}


def _check_fields(where: str, value: dict, known: set[str]) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        raise UnknownField(f"{where}: unknown field(s) {unknown}")


def extension_provider(mesh_config: dict, name: str) -> dict:
    """The meshConfig.extensionProviders entry named `name` (any case), checked."""
    for provider in mesh_config.get("extensionProviders", []):
        _check_fields("meshConfig.extensionProviders[]", provider, {"name"} | _PROVIDER_KINDS)
        if provider["name"].lower() == name.lower():
            return provider
    raise KeyError(f"meshConfig.extensionProviders has no provider named {name!r}")


def file_access_log(provider: dict) -> dict:
    """The Envoy access log istiod builds for an `envoyFileAccessLog` provider."""
    kinds = sorted(set(provider) & _PROVIDER_KINDS)
    if kinds != ["envoyFileAccessLog"]:
        raise Unsupported(f"provider {provider['name']!r}: only envoyFileAccessLog is modelled, got {kinds}")
    spec = provider["envoyFileAccessLog"]
    _check_fields(f"provider {provider['name']}: envoyFileAccessLog", spec, _FILE_PROVIDER_FIELDS)
    log_format = spec.get("logFormat", {})
    _check_fields(f"provider {provider['name']}: envoyFileAccessLog.logFormat", log_format, _LOG_FORMAT_FIELDS)
    if "text" not in log_format:
        raise Unsupported(f"provider {provider['name']!r}: only a logFormat.text is modelled")
    text = log_format["text"] if log_format["text"].endswith("\n") else log_format["text"] + "\n"
    config = {"@type": FILE_ACCESS_LOG_TYPE, "path": spec.get("path") or "/dev/stdout",
              "log_format": {"text_format_source": {"inline_string": text}}}
    if spec.get("omitEmptyValues"):
        config["log_format"]["omit_empty_values"] = True
    return {"name": "envoy.access_loggers.file", "typed_config": config}


def applicable_providers(telemetries: list[dict], pods: GatewayPods) -> list[str]:
    """The access-log providers of the most specific Telemetry that applies to `pods` and names
    any: root namespace, then the pods' namespace, then a selector in their namespace."""
    levels = {"root": [], "namespace": [], "workload": []}
    for telemetry in telemetries:
        spec, namespace = telemetry["spec"], telemetry["metadata"].get("namespace", "default")
        if "targetRefs" in spec or "targetRef" in spec:
            raise Unsupported("Telemetry targetRefs are not modelled")
        labels = spec.get("selector", {}).get("matchLabels", {})
        if not labels:
            level = "root" if namespace == ROOT_NAMESPACE else "namespace" if namespace == pods.namespace else None
        elif namespace == pods.namespace and labels.items() <= pods.labels.items():
            level = "workload"
        else:
            level = None
        if level:
            levels[level].append(spec)
    providers: list[str] = []
    for level in ("root", "namespace", "workload"):
        for spec in levels[level]:
            for logging in spec.get("accessLogging", []):
                for unsupported in ("match", "filter", "disabled"):
                    if unsupported in logging:
                        raise Unsupported(f"Telemetry accessLogging.{unsupported} is not modelled")
                names = [p["name"] for p in logging.get("providers", [])]
                if names:
                    providers = names
    return providers


def access_logs(telemetries: list[dict], mesh_config: dict, pods: GatewayPods) -> list[dict]:
    """The access logs istiod gives the HTTP connection managers of `pods`."""
    return [file_access_log(extension_provider(mesh_config, name))
            for name in applicable_providers(telemetries, pods)]


@dataclass
class Observability:
    """The repository's settings (monitoring/) for the default gateway's pods."""
    pods: GatewayPods
    mesh_config: dict
    telemetries: list[dict]

    @classmethod
    def shipped(cls) -> Observability:
        return cls(gateway_pods(), load_yaml(ISTIOD_VALUES)["meshConfig"],
                   [d for d in yaml.safe_load_all(TELEMETRY.read_text()) if d])

    def apply(self, bootstrap: dict) -> dict:
        """`bootstrap` with the log format and stats configuration pilot-agent writes and, in every HTTP
        connection manager of its static listeners, the access logs istiod sends."""
        bootstrap = copy.deepcopy(bootstrap)
        bootstrap["application_log_config"] = {"log_format": {"text_format": ISTIO_PROXY_LOG_FORMAT}}
        bootstrap["stats_config"] = stats_config(self.pods)
        for listener in bootstrap.get("static_resources", {}).get("listeners", []):
            self.apply_to_listener(listener)
        return bootstrap

    def apply_to_listener(self, listener: dict) -> dict:
        """`listener` (edited in place, and returned) with istiod's access logs."""
        logs = access_logs(self.telemetries, self.mesh_config, self.pods)
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                if network_filter["typed_config"].get("@type", "").endswith("HttpConnectionManager"):
                    network_filter["typed_config"]["access_log"] = copy.deepcopy(logs)
        return listener
