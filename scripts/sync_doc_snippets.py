"""Copy tested code into the docs: every ``<!-- snippet: PATH#NAME -->`` block gets the code between
``# -- start NAME --`` and ``# -- end NAME --`` in PATH. ``tests/examples/test_doc_snippets.py`` checks it."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = re.compile(
    r"(<!-- snippet: (?P<path>[^#\s]+)#(?P<name>[\w-]+) -->\n```(?P<lang>\w*)\n)(?P<body>.*?)(```)", re.S
)


def snippet(path: str, name: str) -> str:
    """The code of snippet ``name`` in ``path`` (relative to the repository), dedented."""
    text = (ROOT / path).read_text()
    match = re.search(
        rf"^[ \t]*# -- start {re.escape(name)} --\n(.*?)^[ \t]*# -- end {re.escape(name)} --", text, re.S | re.M
    )
    if match is None:
        raise KeyError(f"no snippet '{name}' in {path}")
    # blank lines before the end marker (two after a top-level def) stay out, as the formatter wants
    return textwrap.dedent(match.group(1)).rstrip("\n") + "\n"


def render(markdown: str) -> str:
    """``markdown`` with every snippet block refreshed from its source."""
    return SNIPPET.sub(lambda m: m.group(1) + snippet(m.group("path"), m.group("name")) + m.group(6), markdown)


def main(paths: list[str]) -> None:
    for name in paths or ["docs/writing-plugins.md"]:
        path = ROOT / name
        path.write_text(render(path.read_text()))


if __name__ == "__main__":
    main(sys.argv[1:])
