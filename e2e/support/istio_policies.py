"""Istio's security policies as istiod renders them into a gateway's HTTP filters, for the few
policy shapes the ordering tests use, read from Istio's source (istio/istio at the mirror's HEAD,
Aug 2026, 1.31.0-alpha):

- An AuthorizationPolicy with `action: CUSTOM` becomes two filters per provider
  (pilot/pkg/security/authz/builder/builder.go, `buildHTTP`): an RBAC filter whose
  `shadow_rules` (action DENY, stat prefix `istio_ext_authz_`) only evaluate the policy's rules
  and leave the matching policy's name in dynamic metadata, and an ext_authz filter that runs
  only when that metadata names a policy of its provider (`filter_enabled_metadata`,
  builder/extauthz.go `generateFilterMatcherForProvider`). An `envoyExtAuthzHttp` provider
  gives an `http_service` whose `server_uri` names the provider's cluster, timeout 600 s unless
  set (extauthz.go `generateHTTPConfig`).
- ALLOW and DENY AuthorizationPolicies become one RBAC filter per action, AUDIT first, then
  DENY, then ALLOW (builder.go `build`).
- A RequestAuthentication becomes `envoy.filters.http.jwt_authn` with one provider per JWT rule
  (`origins-N`), its keys inline, and for one provider the requirement "that provider, or no
  token at all" on every path (pilot/pkg/security/authn/policy_applier.go,
  `convertToEnvoyJwtConfig`): a request without a token passes, a request with a token the
  provider rejects gets 401.

Rule names: `ns[NS]-policy[NAME]-rule[I]`, prefixed `istio-ext-authz-PROVIDER-` for CUSTOM
(builder.go `policyName`). A rule's conditions become one permission (an AND of each
attribute's OR of values: hosts, methods, paths, ports from `to`, then `when` conditions such
as `connection.sni`, security/authz/model/model.go) and one principal (here always any).
Only `to[].operation.paths` and `when` on `connection.sni` are rendered; anything else is
refused, so a test cannot believe it used a shape this module does not build.
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

RBAC_FILTER = "envoy.filters.http.rbac"
EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
JWT_FILTER = "envoy.filters.http.jwt_authn"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
EXT_AUTHZ_TYPE = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
JWT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
EXT_AUTHZ_STAT_PREFIX = "istio_ext_authz_"
EXT_AUTHZ_MATCH_PREFIX = "istio-ext-authz"


@dataclass
class AuthorizationPolicy:
    """The parts of an AuthorizationPolicy the rendering reads."""
    name: str
    namespace: str
    action: str                      # CUSTOM, ALLOW or DENY
    rules: list[dict]
    provider: str = ""               # CUSTOM only: the extension provider's name


@dataclass
class ExtAuthzProvider:
    """A meshConfig `extensionProviders[]` entry of type `envoyExtAuthzHttp`: `service` and
    `port` name the cluster istiod looks up (`outbound|PORT||SERVICE`)."""
    name: str
    service: str
    port: int

    @property
    def cluster(self) -> str:
        return f"outbound|{self.port}||{self.service}"


def _policy_name(policy: AuthorizationPolicy, rule_index: int) -> str:
    prefix = f"{EXT_AUTHZ_MATCH_PREFIX}-{policy.provider}-" if policy.action == "CUSTOM" else ""
    return f"{prefix}ns[{policy.namespace}]-policy[{policy.name}]-rule[{rule_index}]"


def _string_matcher(value: str) -> dict:
    # security/authz/matcher/string.go StringMatcher: "*" any, "*x" suffix, "x*" prefix, else exact.
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.startswith("*"):
        return {"suffix": value[1:]}
    if value.endswith("*"):
        return {"prefix": value[:-1]}
    return {"exact": value}


def _rule_policy(rule: dict) -> dict:
    """One rule as an Envoy RBAC policy (permissions and principals)."""
    unknown = set(rule) - {"to", "when"}
    if unknown:
        raise ValueError(f"rule fields not rendered here: {sorted(unknown)}")
    base: list[dict] = []
    for condition in rule.get("when", []):
        if condition["key"] != "connection.sni" or "notValues" in condition:
            raise ValueError(f"condition not rendered here: {condition}")
        base.append({"or_rules": {"rules": [{"requested_server_name": _string_matcher(v)}
                                            for v in condition["values"]]}})
    permissions = []
    for to in rule.get("to", [{}]) or [{}]:
        operation = to.get("operation", {})
        unknown = set(operation) - {"paths"}
        if unknown:
            raise ValueError(f"operation fields not rendered here: {sorted(unknown)}")
        rules = list(base)
        if operation.get("paths"):
            rules.insert(0, {"or_rules": {"rules": [{"url_path": {"path": _string_matcher(p)}}
                                                    for p in operation["paths"]]}})
        permissions.append({"and_rules": {"rules": rules or [{"any": True}]}})
    return {"permissions": permissions, "principals": [{"and_ids": {"ids": [{"any": True}]}}]}


def _rules(policies: list[AuthorizationPolicy], action: str) -> dict:
    out: dict[str, dict] = {}
    for policy in policies:
        for i, rule in enumerate(policy.rules):
            out[_policy_name(policy, i)] = _rule_policy(rule)
    return {"action": action, "policies": out}


def custom_filters(policies: list[AuthorizationPolicy], provider: ExtAuthzProvider) -> list[dict]:
    """The RBAC (shadow) and ext_authz filters of CUSTOM `policies` naming `provider`."""
    if any(p.action != "CUSTOM" or p.provider != provider.name for p in policies):
        raise ValueError(f"only CUSTOM policies of provider {provider.name}")
    rbac = {"@type": RBAC_TYPE, "shadow_rules": _rules(policies, "DENY"),
            "shadow_rules_stat_prefix": EXT_AUTHZ_STAT_PREFIX}
    ext_authz = {
        "@type": EXT_AUTHZ_TYPE,
        "transport_api_version": "V3",
        "http_service": {"server_uri": {"uri": f"http://{provider.service}", "cluster": provider.cluster,
                                        "timeout": "600s"}},
        "filter_enabled_metadata": {
            "filter": RBAC_FILTER,
            "path": [{"key": EXT_AUTHZ_STAT_PREFIX + "shadow_effective_policy_id"}],
            "value": {"string_match": {"prefix": f"{EXT_AUTHZ_MATCH_PREFIX}-{provider.name}"}}},
    }
    return [{"name": RBAC_FILTER, "typed_config": rbac}, {"name": EXT_AUTHZ_FILTER, "typed_config": ext_authz}]


def rbac_filters(policies: list[AuthorizationPolicy]) -> list[dict]:
    """The RBAC filters of ALLOW and DENY `policies`: DENY first, then ALLOW."""
    if any(p.action not in ("ALLOW", "DENY") for p in policies):
        raise ValueError("only ALLOW and DENY policies")
    filters = []
    for action in ("DENY", "ALLOW"):
        chosen = [p for p in policies if p.action == action]
        if chosen:
            filters.append({"name": RBAC_FILTER, "typed_config": {"@type": RBAC_TYPE, "rules": _rules(chosen, action)}})
    return filters


@dataclass
class JwtRule:
    """A RequestAuthentication's `jwtRules[]` entry with its keys inline (`jwks`)."""
    issuer: str
    jwks: str
    audiences: list[str] = field(default_factory=list)


def jwt_filter(rules: list[JwtRule]) -> dict:
    """`envoy.filters.http.jwt_authn` for one RequestAuthentication on a gateway (istiod sets
    `clear_route_cache` on gateways)."""
    if len(rules) != 1:
        raise ValueError("one JWT rule is rendered here (more give istiod's OR-of-ANDs requirement)")
    [rule] = rules
    provider = {"issuer": rule.issuer, "local_jwks": {"inline_string": rule.jwks},
                "payload_in_metadata": "payload", "normalize_payload_in_metadata": {}, "clear_route_cache": True}
    if rule.audiences:
        provider["audiences"] = rule.audiences
    requires = {"requires_any": {"requirements": [{"provider_name": "origins-0"}, {"allow_missing": {}}]}}
    return {"name": JWT_FILTER, "typed_config": {
        "@type": JWT_TYPE, "providers": {"origins-0": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": requires}], "bypass_cors_preflight": True}}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwks(directory: Path) -> str:
    """A JWKS holding one RSA public key, made now with openssl (never committed)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "jwt-signing.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", str(key), "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    return json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "test",
                                 "n": _b64url(bytes.fromhex(modulus)), "e": "AQAB"}]})


def forged_token(issuer: str) -> str:
    """A well-formed RS256 JWT from `issuer` whose signature no key verifies: jwt_authn answers
    it 401 ("Jwt verification fails")."""
    header = _b64url(json.dumps({"alg": "RS256", "kid": "test", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"iss": issuer, "sub": "someone", "exp": 4102444800}).encode())
    return f"{header}.{payload}.{_b64url(bytes(256))}"
