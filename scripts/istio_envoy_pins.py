"""Which Envoy each Istio release bundles, from Istio's own pins, for the README's "Tested with":
istio/istio's `istio.deps` at a release tag names an istio/proxy commit (`PROXY_REPO_SHA`), whose
`WORKSPACE` names an Envoy commit (`ENVOY_SHA`, with the date it gives); istio/proxy's release
branch takes Envoy commits from the Envoy branch that istio/test-infra's automator job for it
names (`UPDATE_BRANCH=... scripts/update_envoy.sh`).

    python3 scripts/istio_envoy_pins.py ISTIO_GIT PROXY_GIT TEST_INFRA_GIT TAG...

Each *_GIT is a clone's git directory (bare or not) holding the tags and commits. Prints one
Markdown row per tag. Envoy's own version file at that commit is not read (the Envoy repository
is not needed): the branch names the release series.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys


def git(directory: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", directory, *args], capture_output=True, text=True, check=True).stdout


def proxy_commit(istio: str, tag: str) -> str:
    deps = json.loads(git(istio, "show", f"{tag}:istio.deps"))
    (pin,) = [d["lastStableSHA"] for d in deps if d["name"] == "PROXY_REPO_SHA"]
    return pin


def envoy_commit(proxy: str, commit: str) -> tuple[str, str]:
    workspace = git(proxy, "show", f"{commit}:WORKSPACE")
    sha = re.search(r'^ENVOY_SHA = "([0-9a-f]{40})"', workspace, re.M).group(1)
    date = re.search(r"^# Commit date: (\S+)", workspace, re.M)
    return sha, date.group(1) if date else "?"


def envoy_branch(test_infra: str, tag: str) -> str:
    """The branch the automator job of the tag's istio/proxy release branch updates Envoy from."""
    minor = ".".join(tag.split(".")[:2])
    jobs = git(test_infra, "grep", "-h", "UPDATE_BRANCH=", "HEAD", "--", f"prow/*/config/jobs/proxy-{minor}.yaml")
    branches = sorted(set(re.findall(r"UPDATE_BRANCH=(\S+) scripts/update_envoy\.sh", jobs)))
    return ", ".join(branches) or "?"


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    istio, proxy, test_infra, *tags = argv
    print("| Istio | istio/proxy (`istio.deps`) | Envoy commit (its date) | Envoy branch |")
    print("|---|---|---|---|")
    for tag in tags:
        pin = proxy_commit(istio, tag)
        sha, date = envoy_commit(proxy, pin)
        print(f"| {tag} | {pin[:12]} | {sha[:12]} ({date}) | {envoy_branch(test_infra, tag)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
