"""Options and error reporting shared by the CLI commands.

Errors go to stderr as ``error: <message>``: plain text (no colour, no box drawing, the message on
the last line) when stderr is not a terminal — Slurm logs, pipes, CI, ``| tail -1`` —, and in rich's
style on a terminal (usage errors in typer's panel).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, List, Optional, Tuple

import typer

from lute_kernel.cli.messages import print_error, stderr_is_terminal
from lute_kernel.errors import EXIT_BAD_INPUT, EXIT_TASK_FAILED, InputError, LuteError

ConfigPath = Annotated[Path, typer.Option("--config", "-c", help="LUTE configuration YAML (header + Task sections).")]
SiteOption = Annotated[
    Optional[str],
    typer.Option(
        "--site",
        help="Site profile: a name (config/sites/, $LUTE_SITE_PATH) or a profile file's path"
        " (default: $LUTE_SITE or 'local').",
    ),
]
RuntimeOption = Annotated[
    Optional[str],
    typer.Option(
        "--runtime", help="Override the site's runtime: 'apptainer' (the Task's image) or 'local' (this Python)."
    ),
]
LauncherOption = Annotated[
    Optional[str],
    typer.Option(
        "--launcher", help="direct, srun or mpirun (default: srun in an allocation for MPI Tasks, else mpirun)."
    ),
]
RanksOption = Annotated[
    Optional[int],
    typer.Option("--ranks", "-n", help="MPI ranks (default: the Task's, else the allocation's tasks minus one)."),
]


def click_exceptions() -> Tuple[Tuple[type[BaseException], ...], Tuple[type[BaseException], ...]]:
    """Return the (usage error, abort) exception classes of the click the installed typer runs on.

    typer >= 0.20 carries its own copy (``typer._click``, its ``Abort`` in ``typer.exceptions``); older
    ones use ``click``; all that exist are caught.
    """
    import importlib

    errors: List[type[BaseException]] = []
    aborts: List[type[BaseException]] = []
    for name in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for found, kind in ((errors, "ClickException"), (aborts, "Abort")):
            cls = getattr(module, kind, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(errors), tuple(aborts)


def show_click_error(exc: Any) -> int:
    """Show a usage error (missing option, unknown command…) and return its exit code (2).

    On a terminal typer's panel; elsewhere plain ``Usage:``/``Try`` lines and a last ``error:`` line.
    """
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group run bare: its help is printed already
        return int(exc.exit_code)
    if stderr_is_terminal():
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
        return int(exc.exit_code)
    ctx = getattr(exc, "ctx", None)  # usage errors know their command; other click errors do not
    if ctx is not None:
        typer.echo(ctx.get_usage(), err=True)
        if ctx.command.get_help_option(ctx) is not None:
            typer.echo(f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.", err=True)
    typer.echo(f"error: {exc.format_message()}", err=True)
    return int(exc.exit_code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Print kernel errors as ``error: …`` on stderr and exit 2 (bad input) or 1."""
    try:
        yield
    except InputError as err:
        print_error(str(err))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except LuteError as err:
        print_error(str(err))
        raise typer.Exit(EXIT_TASK_FAILED) from None
