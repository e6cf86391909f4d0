"""What README.md shows, for the tests that print the same thing: the lines of a code block
after a given line (a command, usually), and a loose match of a shown line, in which `...`
stands for text that varies (times, addresses, thread numbers) and whitespace runs are equal."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def block_after(marker: str, document: Path = README) -> list[str]:
    """The lines after the one line of `document` that ends with `marker`, up to the end of its
    code block, without the block's indentation. Fails unless exactly one line ends so."""
    lines = document.read_text().splitlines()
    found = [i for i, line in enumerate(lines) if line.rstrip().endswith(marker)]
    assert len(found) == 1, f"{document.name}: {len(found)} lines end with {marker!r}, expected 1"
    start = found[0]
    indent = re.match(r"\s*", lines[start]).group(0)
    shown = []
    for line in lines[start + 1:]:
        if line.strip().startswith("```"):
            return shown
        shown.append(line.removeprefix(indent))
    raise AssertionError(f"{document.name}: the block after {marker!r} does not end")


def _normalised(text: str) -> str:
    return " ".join(text.split())


def matches(shown: str, actual: str) -> bool:
    """Whether `actual` is `shown`, where each `...` of `shown` stands for any text."""
    pieces = [re.escape(_normalised(piece)) for piece in shown.split("...")]
    return re.fullmatch(r"\s*(.*?)\s*".join(pieces), _normalised(actual)) is not None
