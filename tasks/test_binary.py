"""Upstream LUTE's third-party test Tasks: a small multi-threaded program, and one that fails.

The programs ship in ``tasks/bin/``; ``p_arg1`` (the thread count) is passed positionally.
"""

from __future__ import annotations

from pathlib import Path

from lute_kernel.parameters import ThirdPartyParameters, param
from lute_kernel.task import ThirdPartyTask

BIN = Path(__file__).resolve().parent / "bin"


class TestBinary(ThirdPartyTask):
    """Runs a multi-threaded test program that exits 0."""

    image = "smoke"
    aliases = ("BinaryTester",)

    class Parameters(ThirdPartyParameters):
        """Parameters of ``TestBinary``."""

        executable: str = param(str(BIN / "test_threads"), "Multi-threaded test program.")
        p_arg1: int = param(1, "Number of threads.", ge=1)


class TestBinaryErr(ThirdPartyTask):
    """Runs the same test program, which then exits non-zero."""

    image = "smoke"
    aliases = ("BinaryErrTester",)

    class Parameters(ThirdPartyParameters):
        """Parameters of ``TestBinaryErr``."""

        executable: str = param(str(BIN / "test_threads_err"), "Multi-threaded test program that fails.")
        p_arg1: int = param(1, "Number of threads.", ge=1)
