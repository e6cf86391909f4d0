"""`kubectl kustomize` for the tests: the kubectl on these machines (1.32, kustomize v5.5) renders
offline. A missing kubectl, or one whose kustomize is older than v5 (Debian's kubernetes-client
1.20 carries v2), fails the test with what is missing; it is never a skip."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "envoyfilter" / "kustomize" / "base"
EXAMPLE_OVERLAY = ROOT / "envoyfilter" / "kustomize" / "overlays" / "example"


class MissingKubectl(RuntimeError):
    pass


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise MissingKubectl(
            "kubectl is missing: the Kustomize tests render with `kubectl kustomize` (kustomize v5). "
            "`make deps` installs it where an apt source provides the kubectl package; otherwise install "
            "kubectl 1.27 or later from Kubernetes' own packages")
    version = subprocess.run([found, "version", "--client", "-o", "json"], capture_output=True, text=True,
                             timeout=60)
    kustomize = json.loads(version.stdout or "{}").get("kustomizeVersion", "")
    major = re.match(r"v(\d+)\.", kustomize)
    if version.returncode != 0 or not major or int(major.group(1)) < 5:
        raise MissingKubectl(f"{found} has kustomize {kustomize or 'unknown'}: the Kustomize tests need v5 or later "
                             "(kubectl 1.27 or later)")
    return found


def render(directory: Path) -> list[dict]:
    """The documents `kubectl kustomize DIRECTORY` prints."""
    return [d for d in yaml.safe_load_all(render_text(directory)) if d]


def render_text(directory: Path) -> str:
    """What `kubectl kustomize DIRECTORY` prints."""
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory}: {result.stderr}")
    return result.stdout
