"""``lute-kernel config``: show a configuration file as the kernel sees it, fully substituted.

The header is shown with upstream's blanks filled in as a run at the site would fill them (empty
experiment and run from ``$EXPERIMENT``/``$RUN_NUM``, an empty work_dir from the site's default),
without checking that the folder exists: ``validate`` does that.
"""

from __future__ import annotations

import json
from typing import Optional

import typer

from lute_kernel.cli.common import ConfigPath, SiteOption, reported_errors
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
    site: SiteOption = None,
) -> None:
    """Print the fully substituted config as JSON (header with its defaults and sections, or one section)."""
    import os

    from lute_kernel.config import load_config
    from lute_kernel.sites import load_site
    from lute_kernel.validation import header_with_defaults

    env = dict(os.environ)
    with reported_errors():
        loaded = load_config(config, env=env)
        if section:
            data = loaded.section(section)
        else:
            data = loaded.resolved()
            data["header"] = header_with_defaults(loaded, site=load_site(site), env=env)
    typer.echo(json.dumps(data, indent=2, default=str))
