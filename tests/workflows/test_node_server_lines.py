"""A step's kernel reports in JSON lines: events are handed on, its final line ends the step (not the stream's end)."""

from __future__ import annotations

import io
import json
from typing import Any, Dict, Iterator, List

from hypothesis import given
from hypothesis import strategies as st

from flows.backends.node_server import run_lines

LINES = st.lists(
    st.sampled_from(
        [b"not json\n", b"[1, 2]\n", b"7\n", b'{"kind": "event", "text": "a"}\n', b'{"kind": "event", "text": "b"}\n']
    ),
    max_size=6,
)


class _Stream:
    """Lines, then a read that would block until the child has exited: the step must not get there."""

    def __init__(self, lines: List[bytes]) -> None:
        self.lines = lines

    def __iter__(self) -> Iterator[bytes]:
        yield from self.lines
        raise AssertionError("read past the final line")


@given(LINES, st.sampled_from(["outcome", "input_error", "error", "cancelled"]))
def test_the_final_line_ends_the_step_and_events_before_it_are_handed_on(before: List[bytes], kind: str) -> None:
    final = {"kind": kind, "message": "m"}
    seen: List[Dict[str, Any]] = []
    got = run_lines(_Stream([*before, json.dumps(final).encode() + b"\n"]), seen.append)  # type: ignore[arg-type]
    assert got == final
    assert [e["text"] for e in seen] == [json.loads(b)["text"] for b in before if b.startswith(b'{"kind": "event"')]


@given(LINES)
def test_a_kernel_that_died_before_its_final_line_is_none(before: List[bytes]) -> None:
    assert run_lines(io.BytesIO(b"".join(before)), lambda _event: None) is None
