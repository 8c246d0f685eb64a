"""A warm kernel's child says its exit code on the server's pipe just before it ends (and only it does)."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from lute_kernel.cli import quick_exit
from lute_kernel.warm.child import say_exit_code_on


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    quick_exit.last_words = None
    for fd in (read, write):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.mark.parametrize("code", [0, 1, 2, 130, 256 + 3])
def test_the_child_says_the_code_its_exit_status_will_carry(pipe: tuple[int, int], code: int) -> None:
    read, write = pipe
    say_exit_code_on(write)
    assert quick_exit.last_words is not None
    quick_exit.last_words(code)
    assert os.read(read, 16) == str(code & 0xFF).encode()


def test_a_process_forked_from_the_child_never_speaks_for_it(pipe: tuple[int, int]) -> None:
    read, write = pipe
    say_exit_code_on(write)
    pid = os.fork()
    if pid == 0:  # e.g. a forked worker that somehow kept the descriptor
        assert quick_exit.last_words is not None
        quick_exit.last_words(0)
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    assert os.read(read, 16) == b""


def test_a_server_gone_away_is_no_error(pipe: tuple[int, int]) -> None:
    read, write = pipe
    say_exit_code_on(write)
    os.close(read)
    assert quick_exit.last_words is not None
    quick_exit.last_words(0)  # EPIPE (SIGPIPE is ignored, as in every Python process): nothing raised
