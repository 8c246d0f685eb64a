"""``lute-kernel config``: show a configuration file as the kernel sees it, fully substituted."""

from __future__ import annotations

import json
from typing import Optional

import typer

from lute_kernel.cli.common import ConfigPath, reported_errors
from lute_kernel.cli.completion import complete_section

config_app = typer.Typer(help="Inspect configuration files.", no_args_is_help=True)


@config_app.command("show")
def show(
    config: ConfigPath,
    section: Optional[str] = typer.Option(
        None,
        "--section",
        "-s",
        help="Only this section (any name, known Task or not).",
        autocompletion=complete_section,
    ),
) -> None:
    """Print the fully substituted config as JSON (header and sections, or one section)."""
    from lute_kernel.config import load_config

    with reported_errors():
        loaded = load_config(config)
        data = loaded.section(section) if section else loaded.resolved()
    typer.echo(json.dumps(data, indent=2, default=str))
