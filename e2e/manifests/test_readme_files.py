"""The files README.md shows: a code block whose first line is `# PATH` (a file of the repository)
shows that file's lines, its comment lines left out, exactly. So what an operator copies from the
README is what the tests validate and run."""

import re

import pytest

from e2e.support import readme

SHOWN = re.findall(r"```\w*\n# ([\w./-]+\.ya?ml)\n(.*?)```", readme.README.read_text(), re.S)


def test_the_readme_shows_the_monitoring_files():
    assert {path for path, _ in SHOWN} >= {"monitoring/gateway-values.yaml",
                                           "monitoring/istiod-values.yaml",
                                           "monitoring/telemetry.yaml"}


@pytest.mark.parametrize("path,shown", SHOWN, ids=[path for path, _ in SHOWN])
def test_a_shown_file_is_the_file(path, shown):
    text = (readme.README.parent / path).read_text()
    content = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert shown.splitlines() == content
