"""The recipe for clients that get a 421 and do not come back (issue #22):
monitoring/clients_without_retry.py on the access log of an Istio-shaped gateway set
up as the README says (the Telemetry's provider format), after real clients: headless Chromium
(retries a 421 on a new connection), an HTTP/2 client that retries and one that does not. Then
the dry run: the would-be 421 of the client that does not retry, counted per user agent. The
script runs with Python's standard library only (`-S`: no site-packages), as an operator runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from e2e.support import chromium, istio_install, readme
from e2e.support import envoy as envoy_support
from e2e.support.h2client import CoalescingClient

SCRIPT = envoy_support.ROOT / "monitoring" / "clients_without_retry.py"
RETRYING = "ExampleApp/2.0 (retries 421)"
NOT_RETRYING = "ExampleApp/1.0 (no retry)"


def recipe(*inputs, stdin: str = "", args=()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", str(SCRIPT), *map(str, args), *map(str, inputs)],
                          input=stdin, capture_output=True, text=True, timeout=60)


def rows(output: str) -> dict[str, tuple[int, ...]]:
    table = {}
    for line in output.splitlines()[1:]:
        cells = [c.strip() for c in line.split(" | ")]
        if len(cells) == 5:
            table[cells[0]] = tuple(int(c) for c in cells[1:])
    return table


@pytest.fixture(scope="module")
def gateway(certs, workdir):
    directory = workdir / "clients-without-retry"
    installed = istio_install.install(directory, mode="enforce")
    example = envoy_support.add_browser_routes(envoy_support.load_example())
    running = istio_install.start_gateway(certs, installed.registry, directory,
                                          {"gateway_https": [installed.plugin]}, example=example)
    try:
        yield installed.plugin, running
    finally:
        running.stop()


def test_the_recipe_finds_the_client_that_does_not_retry(certs, gateway):
    plugin, running = gateway
    envoy = running.envoy
    dom = chromium.dump_dom(f"https://a.example.com:{envoy.port}/", certs, envoy_support.HOSTS)
    assert envoy_support.BROWSER_SCRIPT_RAN in dom, "Chromium retried the script's 421"
    for user_agent, honours in ((RETRYING, True), (NOT_RETRYING, False)):
        with CoalescingClient(envoy.port, str(certs.ca), honour_421=honours, user_agent=user_agent) as client:
            got = [r.status for r in client.get("a.example.com") + client.get("b.example.com")]
            assert got == ([200, 421, 200] if honours else [200, 421]), user_agent
    # The dry run, re-applied: the client that does not retry coalesces again, served the old 404.
    assert running.istiod.push(envoy, plugin.updated("2", pluginConfig=dict(
        plugin.spec["pluginConfig"], mode="dry_run"))) == "accepted"
    with CoalescingClient(envoy.port, str(certs.ca), honour_421=False, user_agent=NOT_RETRYING) as client:
        assert [r.status for r in client.get("a.example.com") + client.get("b.example.com")] == [200, 404]

    envoy.wait_for_access_log(lambda line: "sni_guard=dry_run_421" in line)
    # Envoy's own log goes through too, as `kubectl logs` mixes them: its lines are skipped.
    result = recipe(envoy.stdout_path, envoy.stderr_path)
    assert result.returncode == 1, result.stdout + result.stderr
    table = rows(result.stdout)
    chrome = [ua for ua in table if "HeadlessChrome/" in ua]
    assert len(chrome) == 1, table
    assert table == {NOT_RETRYING: (1, 0, 1, 1), RETRYING: (1, 1, 0, 0), chrome[0]: (1, 1, 0, 0)}, result.stdout

    shown = readme.block_after("| python3 monitoring/clients_without_retry.py; echo \"exit $?\"")
    printed = result.stdout.splitlines() + [f"exit {result.returncode}"]
    assert len(shown) == len(printed), (shown, printed)
    for shown_line, line in zip(shown, printed):
        assert readme.matches(shown_line, line), (shown_line, line)


LINE = 'start={t} client=198.51.100.7 sni={sni} authority={host} status={status} details=x sni_guard={mark} ua="{ua}"'


def test_a_retry_must_come_within_the_window(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("\n".join([
        LINE.format(t="2026-12-01T10:00:00.000Z", sni="a.example.com", host="b.example.com:443", status=421,
                    mark="421", ua="Slow/1"),
        LINE.format(t="2026-12-01T10:00:11.000Z", sni="b.example.com", host="B.EXAMPLE.COM.", status=200,
                    mark="-", ua="Slow/1"),
    ]) + "\n")
    assert rows(recipe(log).stdout) == {"Slow/1": (1, 0, 1, 0)}
    assert rows(recipe(log, args=["--window", "12"]).stdout) == {"Slow/1": (1, 1, 0, 0)}


def test_what_a_client_sent_is_escaped_and_no_input_is_an_error(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(LINE.format(t="2026-12-01T10:00:00.000Z", sni="a.example.com", host="b.example.com", status=421,
                               mark="421", ua="evil\x1b[31m\u202e") + "\n")
    result = recipe(log)
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "evil\\x1b[31m\\u202e" in result.stdout
    empty = recipe(stdin="2026-12-01T10:00:00Z\twarning\tenvoy main\tnot an access log line\n")
    assert empty.returncode == 2 and "no access-log line" in empty.stderr
