"""The ``lute-kernel`` command line (typer). The only layer that prints for people and exits.

Owns argument parsing, turning exceptions into messages and exit codes (0 completed, 1 the Task
did not complete, 2 bad input), and signal handling for ``run``. Everything it does is a call
into ``lute_kernel.api`` (the same calls Prefect flows make).
"""

from __future__ import annotations

import gc

from lute_kernel.cli.app import app


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    finally:
        # Everything allocated so far lives until exit: skip walking it in the final collections
        # (~80 ms of a short `run` on this machine).
        gc.freeze()


__all__ = ["app", "main"]
