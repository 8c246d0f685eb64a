"""``lute-kernel tasks``: the registered Tasks grouped by image, and ``tasks show NAME`` (upstream's ``lute_help``).

Owns the listing (one section per image: name, kind, aliases, MPI/GPU needs, description; modules that
failed to load after it) and the page of one Task (every parameter with type, default — and where a
default comes from the DB —, description and flag; image, MPI and GPU needs), or its JSON schema with
``--json``. What is said comes from `lute_kernel.task_help`; this module only lays it out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from lute_kernel.cli.common import SiteOption, reported_errors
from lute_kernel.cli.completion import complete_task

if TYPE_CHECKING:
    from lute_kernel.task_help import TaskHelp

tasks_app = typer.Typer(
    help="The registered Tasks, grouped by image; `tasks show NAME` for one Task's parameters.",
    invoke_without_command=True,
)


@tasks_app.callback()
def list_tasks(
    ctx: typer.Context,
    show_failures: bool = typer.Option(True, help="Also list Task modules that failed to load."),
    site: SiteOption = None,
) -> None:
    """List the registered Tasks by image: name, kind, aliases, needs, one-line description."""
    if ctx.invoked_subcommand is not None:
        return
    from lute_kernel.cli.task_list import print_task_list

    with reported_errors():
        print_task_list(site, show_failures)


@tasks_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Task name or alias.", autocompletion=complete_task)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON schema of the Task's section.")] = False,
) -> None:
    """Show one Task: every parameter (type, default, where a default comes from, description, flag) and its needs."""
    from lute_kernel.registry import discover
    from lute_kernel.task_help import describe_task, parameter_schema

    with reported_errors():
        spec = discover().get(name)
    if as_json:
        typer.echo(json.dumps(parameter_schema(spec), indent=2))
        return
    _print_help(describe_task(spec))


def _print_help(help_: TaskHelp) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    console.print(Text(help_.name, style="bold"), Text(f"({help_.kind} Task)"))
    if help_.description:
        console.print(Text(help_.description))
    needs = [f"image {help_.image}"]
    if help_.mpi:
        needs.append(f"MPI (at least {help_.min_ranks} rank{'s' if help_.min_ranks > 1 else ''})")
    else:
        needs.append("no MPI")
    if help_.ranks > 1:
        needs.append(f"{help_.ranks} ranks by default")
    needs.append(f"{help_.gpus} GPU{'s' if help_.gpus != 1 else ''}" if help_.gpus else "no GPU")
    if help_.cpus_per_rank > 1:
        needs.append(f"{help_.cpus_per_rank} CPUs per rank")
    console.print(Text("needs: " + ", ".join(needs)))
    if help_.aliases:
        console.print(Text("aliases: " + ", ".join(help_.aliases)))
    console.print(Text(f"from: {help_.source}", style="dim"))
    binary = any(p.flag for p in help_.parameters)
    table = Table("parameter", "type", "default", "description", *(["flag"] if binary else []), title="Parameters")
    for param in help_.parameters:
        default = Text("required", style="bold") if param.required else Text(param.default)
        if param.from_db:
            default.append("\nor from the DB: " + "; ".join(param.from_db), style="cyan")
        flag = [Text(param.flag)] if binary else []
        table.add_row(Text(param.name), Text(param.type), default, Text(param.description), *flag)
    console.print(table)
