"""A print the kernel split into two stream messages renders like the whole, through myst-nb.

``vecgrad_docs.join_streams`` (docs/_ext, importable where ``docs/_tooling`` is installed) joins a
stream's messages as written, however they were split. Through Sphinx: two notebooks with stored
outputs (no kernel) are built with myst-nb and ``vecgrad_docs``, one holding a cell's printed text
as one message, the other as the two messages ipykernel sends when it flushes between a print's
text and its newline (myst-nb 1.4.0's own merge renders the second with a blank line).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from typing import Any

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nbformat import v4
from vecgrad_docs import join_streams

PRINTED = ("the backward returns no gradient", "loop: tensor([0.5403, 0.9950])")
CONF = """\
extensions = ["myst_nb", "sphinx.ext.viewcode", "vecgrad_docs"]
exclude_patterns = ["_build"]
nb_execution_mode = "off"
nb_merge_streams = True
"""
OUTPUT = re.compile(r'<div class="cell_output docutils container">\s*(.*?)\s*</div>\s*</div>', re.S)


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def texts(outputs: list[Any]) -> list[tuple[str, str]]:
    return [(output["name"], output["text"]) for output in outputs]


@given(st.lists(st.text(), min_size=1, max_size=6))
def test_any_split_joins_to_the_written_text(chunks: list[str]) -> None:
    assert texts(join_streams([stream(chunk) for chunk in chunks])) == [("stdout", "".join(chunks))]


def test_each_stream_joined_in_its_first_place_leaving_the_outputs_alone() -> None:
    figure = {"output_type": "display_data", "data": {"text/plain": "<Figure>"}, "metadata": {}}
    outputs = [
        stream("a"),
        stream("warning: ", "stderr"),
        figure,
        stream("\nb\n"),
        stream("x\n", "stderr"),
    ]
    before = copy.deepcopy(outputs)
    merged = join_streams(outputs)
    assert texts([merged[0], merged[1]]) == [("stdout", "a\nb\n"), ("stderr", "warning: x\n")]
    assert merged[2] is figure
    assert len(merged) == 3
    join_streams(outputs)  # a second render of the same cell sees what the first saw
    assert outputs == before


def notebook(*texts: str) -> str:
    """A notebook of one code cell whose printed output is stored as the given messages."""
    code = v4.new_code_cell(f"print({PRINTED[0]!r})\nprint({PRINTED[1]!r})", execution_count=1)
    code.outputs = [v4.new_output("stream", name="stdout", text=text) for text in texts]
    python = {"display_name": "Python 3", "language": "python", "name": "python3"}
    cells = [v4.new_markdown_cell("# Output"), code]
    return nbformat.writes(v4.new_notebook(cells=cells, metadata={"kernelspec": python}))


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
    assert render.coalesce_streams is vecgrad_docs.merge_streams
    monkeypatch.setattr(render, "coalesce_streams", lambda outputs: outputs)
    with pytest.raises(ExtensionError, match="no longer merges stream outputs"):
        vecgrad_docs.install_stream_merge()
