"""Envoy's same-name matcher in front of sni-guard: the four tests the filter knows
(`sni_guard::cel::SameNameTest`), as CEL text and in the parsed form Envoy 1.40 takes
(`cel_expr_parsed`: it refuses `cel_expr_string` in an ExtensionWithMatcher), and which one a
configuration needs. The filter refuses a `same_name_matcher` too weak for its servers."""

from __future__ import annotations

import itertools

PLAIN = "request.host == connection.requested_server_name"
NO_TRAILING_DOT = PLAIN + " && !request.host.endsWith('.')"
WITH_SNI = "connection.requested_server_name != '' && " + NO_TRAILING_DOT
# cel.rs DOTTED_NAME_REGEX: labels of letters, digits, '-' and '_' joined by single dots.
DOTTED_NAME_REGEX = "^[-0-9A-Z_a-z]+([.][-0-9A-Z_a-z]+)*$"
HOST_NAME = PLAIN + f" && request.host.matches('{DOTTED_NAME_REGEX}')"
TEXTS = (PLAIN, NO_TRAILING_DOT, WITH_SNI, HOST_NAME)


def required(plugin_config: dict) -> str:
    """The weakest test the filter accepts in front of this configuration (config.rs
    `SameNameTest::required`): with a catch-all server ("*"), or a server's host below another
    server's wildcard, only an SNI that is a host name may be skipped; with on_missing_sni
    reject and neither, no connection without SNI."""
    patterns = [(h.split("/", 1)[-1].lower(), i)
                for i, server in enumerate(plugin_config.get("servers", [])) for h in server["hosts"]]
    wildcards = {p[2:]: i for p, i in patterns if p.startswith("*.")}

    def below_another_wildcard(name: str, server: int) -> bool:
        labels = name.removeprefix("*.").split(".")
        return any(wildcards.get(".".join(labels[k:]), server) != server for k in range(1, len(labels)))

    if any(p == "*" for p, _ in patterns) or any(below_another_wildcard(p, i) for p, i in patterns):
        return HOST_NAME
    if plugin_config.get("on_missing_sni") == "reject":
        return WITH_SNI
    return PLAIN


def parsed(text: str) -> dict:
    """The `cel_expr_parsed` value for one of TEXTS, node ids numbered from 1 in pre-order."""

    def select(operand: str, field: str) -> dict:
        return {"select_expr": {"operand": {"ident_expr": {"name": operand}}, "field": field}}

    def call(function: str, *args: dict, target: dict | None = None) -> dict:
        return {"call_expr": {"function": function, **({"target": target} if target else {}), "args": list(args)}}

    def const(value: str) -> dict:
        return {"const_expr": {"string_value": value}}

    same_name = call("_==_", select("request", "host"), select("connection", "requested_server_name"))
    no_trailing_dot = call("!_", call("endsWith", {"const_expr": {"string_value": "."}},
                                      target=select("request", "host")))
    if text == PLAIN:
        expr = same_name
    elif text == NO_TRAILING_DOT:
        expr = call("_&&_", same_name, no_trailing_dot)
    elif text == WITH_SNI:
        has_sni = call("_!=_", select("connection", "requested_server_name"), const(""))
        expr = call("_&&_", has_sni, call("_&&_", same_name, no_trailing_dot))
    elif text == HOST_NAME:
        expr = call("_&&_", same_name, call("matches", const(DOTTED_NAME_REGEX), target=select("request", "host")))
    else:
        raise ValueError(f"not a same-name test sni-guard knows: {text!r}")
    ids = itertools.count(1)

    def number(node: dict) -> dict:
        out = {"id": next(ids)}
        for kind, body in node.items():
            if kind == "call_expr":
                body = dict(body)
                if "target" in body:
                    body["target"] = number(body["target"])
                body["args"] = [number(a) for a in body["args"]]
            elif kind == "select_expr":
                body = {"operand": number(body["operand"]), "field": body["field"]}
            out[kind] = body
        return out

    return {"expr": number(expr)}


def extension_with_matcher(wasm_typed_config: dict, text: str) -> dict:
    """sni-guard's Wasm filter config wrapped in Envoy's ExtensionWithMatcher with this test:
    a request it matches skips the filter without a call into Wasm."""
    return {
        "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
        "xds_matcher": {"matcher_list": {"matchers": [{
            "predicate": {"single_predicate": {
                "input": {"name": "request-attributes", "typed_config": {
                    "@type": "type.googleapis.com/xds.type.matcher.v3.HttpAttributesCelMatchInput"}},
                "custom_match": {"name": "same-name", "typed_config": {
                    "@type": "type.googleapis.com/xds.type.matcher.v3.CelMatcher",
                    "description": text,
                    "expr_match": {"cel_expr_parsed": parsed(text)}}}}},
            "on_match": {"action": {"name": "skip-sni-guard", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"}}},
        }]}},
        "extension_config": {"name": "sni-guard", "typed_config": wasm_typed_config},
    }


def text_of(matcher_typed_config: dict) -> str:
    """The test an ExtensionWithMatcher applies, checked: its description must be one of TEXTS
    and its parsed expression exactly that text's."""
    (m,) = matcher_typed_config["xds_matcher"]["matcher_list"]["matchers"]
    cel = m["predicate"]["single_predicate"]["custom_match"]["typed_config"]
    text = cel["description"]
    if cel["expr_match"]["cel_expr_parsed"] != parsed(text):
        raise ValueError(f"the matcher's parsed expression is not {text!r}")
    return text
