"""`make release`'s checks before it builds anything (scripts/release.sh), on a clone of this
commit: a version that is not the workspace's, a tree that is not clean, a malformed version.
The whole release is run by hand (`make release VERSION=X.Y.Z` on a fresh clone): it builds the
module and the CLI for three targets, too long for the suite."""

import subprocess

import pytest

from e2e.support import manifests as m


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    directory = tmp_path_factory.mktemp("release") / "clone"
    subprocess.run(["git", "clone", "-q", str(m.ROOT), str(directory)], check=True, timeout=120)
    return directory


def release(clone, version):
    return subprocess.run(["scripts/release.sh", version], cwd=clone, capture_output=True, text=True, timeout=60)


def test_the_version_must_be_the_workspaces(clone):
    result = release(clone, "99.0.0")
    assert result.returncode == 1 and "bump the workspace's version first" in result.stderr, result.stderr


def test_a_malformed_version_is_refused(clone):
    result = release(clone, "v1")
    assert result.returncode == 1 and "usage: make release VERSION=X.Y.Z" in result.stderr, result.stderr


def test_the_tree_must_be_clean(clone):
    version = subprocess.run(["sed", "-n", r's/^version = "\(.*\)"/\1/p', "Cargo.toml"], cwd=clone,
                             capture_output=True, text=True, check=True).stdout.split()[0]
    (clone / "README.md").write_text((clone / "README.md").read_text() + "\nlocal edit\n")
    try:
        result = release(clone, version)
        assert result.returncode == 1 and "the tree is not clean" in result.stderr, result.stderr
        assert not (clone / "dist" / "release").exists()
    finally:
        subprocess.run(["git", "checkout", "README.md"], cwd=clone, check=True)
