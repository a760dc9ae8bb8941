"""Checks of the executed pages' sources that keep the built pages the same from build to build."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
CELL = re.compile(r"```\{code-cell\}[^\n]*\n(.*?)```", re.DOTALL)
OPTIONS = re.compile(r"^---\n.*?\n---\n", re.DOTALL)
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.parts)


def cells(page: Path) -> list[tuple[int, str]]:
    """(first line, code) of each code cell; magics and cell options become blank lines."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in CELL.finditer(text):
        code = "".join(
            "\n" if line.startswith("%") else line for line in match.group(1).splitlines(True)
        )
        code = OPTIONS.sub(lambda options: "\n" * options.group(0).count("\n"), code)
        found.append((text[: match.start()].count("\n") + 2, code))
    return found


def test_pages_have_cells() -> None:
    assert sum(len(cells(page)) for page in PAGES) > 50


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(DOCS).as_posix())
def test_print_writes_one_piece(page: Path) -> None:
    """``print(a, b)`` writes a, then b: a kernel that flushes its buffer in between sends two
    stream messages, and myst-nb then shows a line break between them, in some builds only.
    An f-string is written in one piece."""
    problems = []
    for first, code in cells(page):
        for node in ast.walk(ast.parse(code)):
            is_print = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
            if is_print and len(node.args) > 1:
                problems.append(
                    f"{page.name}:{first + node.lineno - 1}: print with several arguments"
                )
    assert not problems, "\n".join(problems)
