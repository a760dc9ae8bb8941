"""A notebook cell's stream outputs joined as they were written, for myst-nb's ``nb_merge_streams``.

A kernel sends printed text in as many messages as its output thread happens to flush: ipykernel
flushes on a timer, so on a busy machine ``print(text)`` can reach the notebook as ``"text"`` and
then ``"\\n"`` at the start of the next message. myst-nb 1.4.0's merge
(``myst_nb.core.utils.coalesce_streams``) strips the end of every later message and adds a
newline, so the split form gains a blank line, in some builds only. Joining the messages first
(:func:`join_streams`) gives one text per stream whatever the kernel's timing;
``vecgrad_docs.merge_streams_as_written`` hands that to myst-nb.

Standard library only: the unit tests check it without myst-nb (``tests/test_streams.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, MutableMapping
from typing import Any

Output = MutableMapping[str, Any]


def join_streams(outputs: Iterable[Output]) -> list[Output]:
    """The outputs with each stream's messages (``stdout``, ``stderr``) joined into its first.

    The text of a stream is the ``"".join`` of its messages, in order, with nothing stripped or
    added. Every other output keeps its place. The outputs passed in are left as they were: the
    first message of each stream is copied before text is appended to it.
    """
    joined: list[Output] = []
    streams: dict[str, Output] = {}
    for output in outputs:
        if output["output_type"] != "stream":
            joined.append(output)
        elif output["name"] in streams:
            streams[output["name"]]["text"] += output["text"]
        else:
            streams[output["name"]] = copy.copy(output)
            joined.append(streams[output["name"]])
    return joined
