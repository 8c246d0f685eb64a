"""The ``images`` commands: build the Apptainer images, list what is built and what is stale, import a Dockerfile."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from lute_kernel.cli.common import SiteOption, reported_errors
from lute_kernel.cli.completion import complete_image

NamesArgument = Annotated[
    Optional[List[str]],
    typer.Argument(
        help="Images to build (their parents first). Default: every image this site can build.",
        autocompletion=complete_image,
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Rebuild the named images even when up to date.")]

images_app = typer.Typer(
    help="Build and list the Apptainer images of the Tasks' software environments (recipes/*.def.j2).",
    no_args_is_help=True,
)


@images_app.command("build")
def build(
    names: NamesArgument = None,
    force: ForceOption = False,
    site: SiteOption = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="On a terminal too, show apptainer's output, not live steps.")
    ] = False,
) -> None:
    """Build images from their recipes; unchanged ones are skipped, cached ones are linked.

    Each build step is shown with its elapsed time: live on a terminal (apptainer's output goes to the
    build log), as plain lines between apptainer's output elsewhere.
    """
    from lute_kernel.cli.progress import wants_bar
    from lute_kernel.images.build import build_images
    from lute_kernel.sites import load_site

    with reported_errors():
        profile = load_site(site)
        if verbose or not wants_bar(sys.stdout):
            outcomes = build_images(names or [], profile, force=force)
        else:
            from lute_kernel.cli.build_display import BuildDisplay

            with BuildDisplay() as display:
                outcomes = build_images(
                    names or [],
                    profile,
                    force=force,
                    output=display.output,
                    status=display.status,
                    on_step=display.step,
                )
    done = ", ".join(f"{o.name} {o.action}" for o in outcomes) or "nothing to build"
    typer.echo(f"images: {done}")


@images_app.command("ls")
def list_images(site: SiteOption = None) -> None:
    """List every recipe: built?, stale?, address, SIF sha256, size, build time, site restriction."""
    from rich.console import Console
    from rich.table import Table

    from lute_kernel.images.status import image_statuses
    from lute_kernel.sites import load_site

    with reported_errors():
        rows = image_statuses(load_site(site))
    table = Table("image", "built", "stale", "address", "sha256", "size", "built at", "sites", "parent")
    problems = []
    for row in rows:
        record = row.record
        stale = {None: "-", True: "[yellow]stale[/yellow]", False: "no"}[row.stale]
        table.add_row(
            row.name,
            "[green]yes[/green]" if row.built else "[red]no[/red]",
            stale,
            row.address[:16] if row.address else "-",
            record.sha256[:12] if record and row.built else "-",
            f"{record.size / 1e6:.0f} MB" if record and row.built else "-",
            record.built_at.replace("T", " ").replace("+00:00", "Z") if record and row.built else "-",
            row.restriction or "all",
            row.parent or "-",
        )
        if row.problem:
            problems.append(f"{row.name}: {row.problem}")
    console = Console(width=None if sys.stdout.isatty() else 160)  # piped: keep addresses whole
    console.print(table)
    for problem in problems:
        console.print(f"[red]problem[/red] {problem}", highlight=False)


@images_app.command("import")
def import_recipe(
    dockerfile: Annotated[Path, typer.Argument(help="The tool's Dockerfile (its folder is the build context).")],
    name: Annotated[str, typer.Argument(help="The image's name: the recipe becomes recipes/NAME.def.j2.")],
    parent: Annotated[str, typer.Option("--parent", help="The image it starts from, instead of FROM.")] = "base",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing recipe of that name.")] = False,
    site: SiteOption = None,
) -> None:
    """Convert a Dockerfile into a recipe to review (FROM becomes the parent image; RUN %post; ENV %environment)."""
    from lute_kernel.images.importing import import_dockerfile
    from lute_kernel.images.paths import default_recipes_dir
    from lute_kernel.sites import load_site

    with reported_errors():
        profile = load_site(site)
        imported = import_dockerfile(
            dockerfile, name, parent=parent, recipes_dir=default_recipes_dir(profile), site=profile, force=force
        )
    typer.echo(f"images: wrote {imported.path}" + "".join(f"\n  copied {p}" for p in imported.copied))
    for note in imported.notes:
        typer.echo(f"  review: {note}")
    typer.echo(f"images: review it, then `lute-kernel images build {name}`")
