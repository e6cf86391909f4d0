"""Prometheus for the tests: the repository's rules (monitoring/prometheusrule.yaml)
as a plain rules file, `promtool`, and a real Prometheus server (Debian's `prometheus` package,
from `make deps`) scraping an Envoy on loopback.

The server listens on 127.0.0.1 with a port the kernel picks (read back from its log), keeps its
data in the directory it is given, and is stopped by PID when the `with` block ends. A missing
binary raises `MissingPrometheus`, which the tests turn into a failure, never a skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from e2e.support.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
RULE_TESTS = MONITORING / "prometheusrule.test.yaml"
# The name prometheusrule.test.yaml loads, and `make release` ships.
RULES_FILE_NAME = "sni-guard.rules.yaml"


class MissingPrometheus(RuntimeError):
    pass


def tool(name: str) -> str:
    """The path of `prometheus` or `promtool`."""
    found = shutil.which(name)
    if found is None:
        raise MissingPrometheus(f"{name} is missing: `make deps` installs Debian's prometheus package, which has "
                                "both prometheus and promtool")
    return found


def rule_groups(prometheus_rule: Path = PROMETHEUS_RULE) -> dict:
    """The PrometheusRule's `spec`: a Prometheus rules file's content (`groups`)."""
    document = yaml.safe_load(prometheus_rule.read_text())
    if document.get("kind") != "PrometheusRule":
        raise ValueError(f"{prometheus_rule}: not a PrometheusRule")
    return document["spec"]


def write_rules_file(directory: Path, prometheus_rule: Path = PROMETHEUS_RULE) -> Path:
    """Writes the PrometheusRule's rules as `directory/sni-guard.rules.yaml`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RULES_FILE_NAME
    path.write_text(yaml.safe_dump(rule_groups(prometheus_rule), sort_keys=False, width=1000))
    return path


def rules(prometheus_rule: Path = PROMETHEUS_RULE) -> dict[str, dict]:
    """Every rule by its `record` or `alert` name."""
    return {rule.get("record") or rule["alert"]: rule
            for group in rule_groups(prometheus_rule)["groups"] for rule in group["rules"]}


def promtool(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([tool("promtool"), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


class Prometheus(ServerProcess):
    """One Prometheus server scraping `targets` ({job: (host:port, metrics path, labels)}) every
    second and evaluating `rule_files` every second."""

    def __init__(self, workdir: Path, targets: dict[str, tuple[str, str, dict]], rule_files: list[Path] = ()):
        self.workdir = workdir
        self.targets = targets
        self.rule_files = list(rule_files)
        self.process: subprocess.Popen | None = None
        self.url = ""

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [{"job_name": job, "metrics_path": path,
                                "static_configs": [{"targets": [address], "labels": labels}]}
                               for job, (address, path, labels) in self.targets.items()],
        }
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.launch([tool("prometheus"), f"--config.file={config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
                     "--web.listen-address=127.0.0.1:0", "--log.level=info"],
                    subprocess.DEVNULL, self.log_path.open("wb"), lambda: self._wait_ready(timeout))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
            if not self.url:
                log = self.log_path.read_text(errors="replace")
                m = re.search(r'msg="Listening on" address=127\.0\.0\.1:(\d+)', log)
                if m:
                    self.url = f"http://127.0.0.1:{m.group(1)}"
            if self.url:
                try:
                    with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                        if r.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise AssertionError(f"prometheus /api/v1/{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[tuple[dict, float]]:
        """An instant query now: (labels, value) of each series."""
        data = self.api("query", query=expr)
        return [(sample["metric"], float(sample["value"][1])) for sample in data["result"]]

    def wait_for(self, expr: str, predicate, timeout: float = 15.0) -> list[tuple[dict, float]]:
        """`query(expr)` once `predicate` holds for its result, or after `timeout` (the last
        result, for the test's assertion to show)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if predicate(result) or time.monotonic() > deadline:
                return result
            time.sleep(0.25)

    def alerts(self) -> list[dict]:
        """The alerts now pending or firing: `labels`, `state`, `annotations`, `value`."""
        return self.api("alerts")["alerts"]

    def wait_for_firing(self, alertname: str, timeout: float = 15.0) -> list[dict]:
        """The firing alerts named `alertname`, once there is one or after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            firing = [a for a in self.alerts() if a["labels"]["alertname"] == alertname and a["state"] == "firing"]
            if firing or time.monotonic() > deadline:
                return firing
            time.sleep(0.25)

    def rule_health(self) -> dict[str, str]:
        """Each loaded rule's health (`ok`, `err` or `unknown`), by name; an `err` carries its error."""
        out = {}
        for group in self.api("rules")["groups"]:
            for rule in group["rules"]:
                out[rule["name"]] = rule["health"] + (f": {rule['lastError']}" if rule.get("lastError") else "")
        return out
