"""A cell's printed text is the same whichever messages the kernel sent it in (docs/_ext).

ipykernel flushes printed text on a timer, so on a busy machine one ``print`` can reach the
notebook as two stream messages. The docs build joins a stream's messages as written
(``vecgrad_streams.join_streams``) before myst-nb's merge; tests/built/test_stream_merge.py
checks the same through myst-nb and Sphinx.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))

from vecgrad_streams import join_streams

PRINTED = "the Function's backward\nreturns no gradient\nloop: tensor([0.5403, 0.9950])\n"


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def texts(outputs: list[Any]) -> list[tuple[str, str]]:
    return [(output["name"], output["text"]) for output in outputs]


def test_print_split_by_a_flush_gives_the_same_text() -> None:
    """``print(text)`` flushed between its text and its newline: ``"text"``, ``"\\nnext\\n"``."""
    cut = PRINTED.index("\nloop")
    whole = join_streams([stream(PRINTED)])
    split = join_streams([stream(PRINTED[:cut]), stream(PRINTED[cut:])])
    assert texts(split) == texts(whole) == [("stdout", PRINTED)]


@given(st.lists(st.text(), min_size=1, max_size=6))
def test_any_split_gives_the_written_text(chunks: list[str]) -> None:
    assert texts(join_streams([stream(chunk) for chunk in chunks])) == [("stdout", "".join(chunks))]


def test_each_stream_joined_in_its_first_place() -> None:
    figure = {"output_type": "display_data", "data": {"text/plain": "<Figure>"}, "metadata": {}}
    outputs = [
        stream("a"),
        stream("warning: ", "stderr"),
        figure,
        stream("\nb\n"),
        stream("slow\n", "stderr"),
    ]
    merged = join_streams(outputs)
    assert merged[2] is figure
    assert texts([merged[0], merged[1]]) == [("stdout", "a\nb\n"), ("stderr", "warning: slow\n")]
    assert len(merged) == 3


def test_outputs_passed_in_are_left_alone() -> None:
    outputs = [stream("a"), stream("b\n")]
    before = copy.deepcopy(outputs)
    join_streams(outputs)
    join_streams(outputs)  # a second render of the same cell sees what the first saw
    assert outputs == before
