"""Options and error reporting shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

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


@contextmanager
def reported_errors() -> Iterator[None]:
    """Print kernel errors as ``error: …`` on stderr and exit 2 (bad input) or 1."""
    try:
        yield
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except LuteError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_TASK_FAILED) from None
