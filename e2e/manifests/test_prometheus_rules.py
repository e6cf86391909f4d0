"""The PrometheusRule (monitoring/prometheusrule.yaml) with Prometheus' own tool:
`promtool check rules` on its rules, `promtool test rules` on its unit tests
(monitoring/prometheusrule.test.yaml), and proof that those tests fail when a rule
breaks. e2e/envoy/test_prometheus.py runs the same rules in a real Prometheus scraping Envoy."""

import pytest
import yaml

from e2e.support import prometheus


@pytest.fixture(scope="module")
def promtool():
    try:
        return prometheus.tool("promtool")
    except prometheus.MissingPrometheus as e:
        pytest.fail(str(e), pytrace=False)


def unit_test(directory, prometheus_rule=prometheus.PROMETHEUS_RULE):
    """`promtool test rules` with the repository's unit tests on `prometheus_rule`'s rules."""
    prometheus.write_rules_file(directory, prometheus_rule)
    (directory / prometheus.RULE_TESTS.name).write_text(prometheus.RULE_TESTS.read_text())
    return prometheus.promtool("test", "rules", prometheus.RULE_TESTS.name, cwd=directory)


def test_promtool_checks_the_rules(promtool, tmp_path):
    path = prometheus.write_rules_file(tmp_path)
    result = prometheus.promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(prometheus.rules())} rules found" in result.stdout


def test_the_unit_tests_pass(promtool, tmp_path):
    result = unit_test(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing():
    tests = yaml.safe_load(prometheus.RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    recorded = {case["expr"] for test in tests for case in test.get("promql_expr_test", [])}
    for name, rule in prometheus.rules().items():
        if "alert" in rule:
            outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == name}
            assert outcomes == {True, False}, f"{name}: a case where it fires and one where it does not"
    assert {"gateway:sni_guard_rejected:rate5m", "gateway:sni_guard_dry_run_mismatch_by_server:sum"} <= recorded


BREAKAGES = {
    # the threshold's edge: exactly 1 a second must not alert
    "threshold": ("gateway:sni_guard_rejected:rate5m > 1", "gateway:sni_guard_rejected:rate5m >= 1"),
    # a metric name Envoy does not export
    "metric name": ("rate(sni_guard_rejected[5m])", "rate(sni_guard_rejects[5m])"),
    # the review must add up the gateway's pods
    "aggregation": ("sum without (instance, pod) (sni_guard_dry_run_mismatch_by_server)",
                    "max without (instance, pod) (sni_guard_dry_run_mismatch_by_server)"),
    # two sni-guard filters on one pod must stay apart
    "resource label": ('"resource", "$1", "__name__", "envoy_extension_config_discovery_http_filter_(.+)_version"',
                       '"resource", "", "__name__", "envoy_extension_config_discovery_http_filter_(.+)_version"'),
    # a new failure series must alert
    "new series": ("unless istio_agent_wasm_remote_fetch_count{result!=\"success\"} offset 10m",
                   "unless istio_agent_wasm_remote_fetch_count{result!=\"success\"} offset 1m"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_unit_tests_catch_a_broken_rule(promtool, tmp_path, breakage):
    old, new = BREAKAGES[breakage]
    text = prometheus.PROMETHEUS_RULE.read_text()
    assert text.count(old) == 1, f"{old!r} is not in the rules once"
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(old, new))
    result = unit_test(tmp_path, broken)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr, result.stdout + result.stderr
