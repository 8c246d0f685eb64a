"""Output pipes: linear line splitting, a cap per line, bounded work per call, nothing lost at the end."""

from __future__ import annotations

import os
import threading
from typing import List

from hypothesis import given
from hypothesis import strategies as st

from lute_kernel.output import MAX_READ_PER_CALL, OutputPipe


def _pipe_with(data: bytes, *, max_line: int = 64 << 10) -> OutputPipe:
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_fd, data) if data else None, os.close(write_fd)))
    writer.start()
    pipe = OutputPipe(read_fd, "stdout", max_line=max_line)
    pipe._writer = writer  # type: ignore[attr-defined]
    return pipe


def _all_lines(pipe: OutputPipe) -> List[str]:
    os.set_blocking(pipe.fd, True)  # the test reads to EOF; the executor polls instead
    lines: List[str] = []
    while not pipe.closed:
        lines.extend(pipe.read_available())
    lines.extend(pipe.drain())
    pipe._writer.join()  # type: ignore[attr-defined]
    os.close(pipe.fd)
    return lines


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r", codec="utf-8"), max_size=200), max_size=50))
def test_lines_come_back_as_written(lines: List[str]) -> None:
    data = "".join(f"{line}\n" for line in lines).encode()
    assert _all_lines(_pipe_with(data)) == lines


def test_a_last_line_without_newline_is_kept() -> None:
    assert _all_lines(_pipe_with(b"a\nb")) == ["a", "b"]


def test_an_over_long_line_is_capped_and_says_so() -> None:
    [line] = _all_lines(_pipe_with(b"x" * 10_000 + b"\n", max_line=100))
    assert line == "x" * 100 + " … [9900 more bytes of this line dropped]"


def test_a_huge_line_without_newline_keeps_bounded_memory() -> None:
    pipe = _pipe_with(b"y" * (8 << 20), max_line=1000)
    lines = _all_lines(pipe)
    assert lines == ["y" * 1000 + f" … [{(8 << 20) - 1000} more bytes of this line dropped]"]


def test_one_call_reads_a_bounded_amount() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    written = 0
    try:
        while True:
            written += os.write(write_fd, b"z" * 65536)
    except BlockingIOError:
        pass
    pipe = OutputPipe(read_fd, "stdout")
    assert pipe.read_available() == []  # no newline yet, and the call returned
    assert pipe._kept <= 64 << 10
    assert written <= MAX_READ_PER_CALL or pipe._dropped + pipe._kept <= MAX_READ_PER_CALL
    os.close(write_fd)
    os.close(read_fd)


def test_carriage_returns_are_stripped_and_bad_utf8_replaced() -> None:
    assert _all_lines(_pipe_with(b"a\r\n\xff\n")) == ["a", "\ufffd"]
