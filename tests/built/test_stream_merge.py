"""A print the kernel split into two stream messages renders like the whole, through myst-nb.

Two notebooks with stored outputs (no kernel: ``nb_execution_mode = "off"``) are built with
myst-nb and the site's ``vecgrad_docs`` extension (on the path where ``docs/_tooling`` is
installed), as in ``docs/conf.py``: one holds a cell's printed text as one message, the other as
the two messages ipykernel sends when its output thread flushes between a print's text and its
newline. myst-nb 1.4.0's own merge renders the
second with a blank line. tests/test_streams.py checks the joining itself without myst-nb.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

PRINTED = ("the backward returns no gradient", "loop: tensor([0.5403, 0.9950])")
CONF = """\
extensions = ["myst_nb", "sphinx.ext.viewcode", "vecgrad_docs"]
exclude_patterns = ["_build"]
nb_execution_mode = "off"
nb_merge_streams = True
"""
OUTPUT = re.compile(r'<div class="cell_output docutils container">\s*(.*?)\s*</div>\s*</div>', re.S)


def notebook(*texts: str) -> str:
    """A notebook of one code cell whose printed output is stored as the given messages."""
    outputs = [{"output_type": "stream", "name": "stdout", "text": text} for text in texts]
    code = {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {},
        "source": f"print({PRINTED[0]!r})\nprint({PRINTED[1]!r})",
        "outputs": outputs,
    }
    python = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Output"}, code],
        "metadata": {"kernelspec": python, "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The rendered cell output of each notebook, built with ``sphinx-build -W``."""
    src = tmp_path_factory.mktemp("streams")
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    first, second = PRINTED
    (src / "index.rst").write_text(
        "Streams\n=======\n\n.. toctree::\n\n   whole\n   split\n", encoding="utf-8"
    )
    (src / "whole.ipynb").write_text(notebook(f"{first}\n{second}\n"), encoding="utf-8")
    (src / "split.ipynb").write_text(notebook(first, f"\n{second}\n"), encoding="utf-8")
    out = src / "_build" / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    found = {}
    for page in ("whole", "split"):
        outputs = OUTPUT.findall((out / f"{page}.html").read_text(encoding="utf-8"))
        assert len(outputs) == 1, f"{page}.html: {len(outputs)} cell outputs"
        found[page] = outputs[0]
    return found


def test_split_print_renders_like_the_whole(rendered: dict[str, str]) -> None:
    assert rendered["split"] == rendered["whole"]


def test_no_blank_line_between_the_prints(rendered: dict[str, str]) -> None:
    first, second = PRINTED
    assert f"{first}\n{second}\n</pre>" in rendered["split"]


def test_moved_merge_stops_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """If myst-nb's renderer no longer merges where the extension hooks in, the build fails."""
    import vecgrad_docs
    from myst_nb.core import render
    from sphinx.errors import ExtensionError

    vecgrad_docs.install_stream_merge()
    assert render.coalesce_streams is vecgrad_docs.merge_streams_as_written
    monkeypatch.setattr(render, "coalesce_streams", lambda outputs: outputs)
    with pytest.raises(ExtensionError, match="no longer merges stream outputs"):
        vecgrad_docs.install_stream_merge()
