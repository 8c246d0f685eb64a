"""How the command line tells people about errors, without typer: plain off a terminal, rich on one.

Owns ``stderr_is_terminal`` and ``print_error``, shared by the typer commands and the lean ``run``
path (which must not import typer or rich before the Task starts). Must not exit or parse arguments.
"""

from __future__ import annotations

import os
import sys


def stderr_is_terminal() -> bool:
    """Return whether stderr is a terminal that shows rich's formatting (not a file, pipe or dumb terminal)."""
    try:
        return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def print_error(message: str) -> None:
    """Print ``error: <message>`` on stderr: plain off a terminal, in rich's red on one."""
    if not stderr_is_terminal():
        print(f"error: {message}", file=sys.stderr, flush=True)
        return
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, highlight=False).print(Text.assemble(("error:", "bold red"), " ", message))
