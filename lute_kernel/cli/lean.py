"""The lean paths of ``lute-kernel run`` and ``tasks``: the same commands without importing typer or click first.

Owns recognising a plain ``run`` command line (a Task, ``-c/--config`` and the run options, no help
or completion request) and parsing it with argparse, so a run pays ~0.1 s less before its Task may
start. Anything else — ``--help``, a usage error, an option it does not know — returns None and the
typer app handles the command as always, so errors and help read exactly as they do there.
Both paths end in :func:`lute_kernel.cli.run_cmd.run_and_report`; the lean one first, when the process
is its own, starts the launch this command line made last time (:mod:`lute_kernel.early_launch`:
before argparse is even imported) and, unless that started a launch, forks the run's database
writer (:mod:`lute_kernel.db.writer_process`), and then ends the process
without the interpreter's teardown (:mod:`lute_kernel.cli.quick_exit`) when the command line is the
process's own. A plain ``tasks`` listing
(``--site``, ``--[no-]show-failures``) goes straight to :func:`lute_kernel.cli.task_list.print_task_list`,
as the typer command does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence

if TYPE_CHECKING:  # argparse (~10 ms) is imported once a line is parsed: an early start goes first
    import argparse

    from lute_kernel.early_launch import EarlyStart

_PASS_TO_TYPER = ("--help", "-h", "--install-completion", "--show-completion")


class _Unusual(Exception):
    """The command line is not a plain run: typer takes it."""


def _new_parser(prog: str) -> argparse.ArgumentParser:
    """An ArgumentParser that raises `_Unusual` instead of exiting."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # never exit from here
            raise _Unusual(message)

    return _Parser(prog=prog, add_help=False, allow_abbrev=False)


def _parser() -> argparse.ArgumentParser:
    parser = _new_parser("lute-kernel run")
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--site")
    parser.add_argument("--runtime")
    parser.add_argument("--launcher")
    parser.add_argument("-n", "--ranks", type=int)
    parser.add_argument("--skip-done", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--profile", action="store_true")
    return parser


def parse_run(argv: Sequence[str]) -> Optional[argparse.Namespace]:
    """Return the options of a plain ``run`` command line (``argv`` without the program), or None."""
    if not argv or argv[0] != "run" or any(a.startswith(_PASS_TO_TYPER) for a in argv[1:]):
        return None
    try:
        return _parser().parse_args(list(argv[1:]))
    except (_Unusual, ValueError):
        return None


def lean_run(argv: Sequence[str]) -> Optional[int]:
    """Run a plain ``run`` command line and return its exit code; None when typer must handle it."""
    if not argv or argv[0] != "run":
        return None
    from lute_kernel.cli.quick_exit import end_command, is_own_command

    own = is_own_command(argv)
    early = _early_start(argv) if own else None  # first: the container starts while the rest is imported
    try:
        options = parse_run(argv)
        if options is None:
            return None
        if options.skip_done and early is not None:  # never kept for --skip-done: nothing can have started
            early.close()
            early = None
        if own:
            from lute_kernel.cli import start_up_gc

            start_up_gc.hold()  # until the first Task is prepared (run_cmd releases it)
        if own and (early is None or early.started is None):  # before the imports below: they overlap
            # the DB layer's import. Not beside a container starting early: the two cores are busy with
            # it and this process, and the RUNNING row, written here, is ready long before its hello.
            from lute_kernel.db.writer_process import start

            start()
        from lute_kernel.pydantic_plugins import skip_lookup_when_none

        skip_lookup_when_none()  # before the first validator: pydantic's plugin lookup costs ~20 ms
        from pathlib import Path  # not before the early start (~3 ms)

        from lute_kernel.cli.run_cmd import run_all_and_report

        code = run_all_and_report(
            options.tasks,
            Path(options.config),
            skip_done=options.skip_done and not options.force,
            profile=options.profile,
            site=options.site,
            runtime=options.runtime,
            launcher=options.launcher,
            ranks=options.ranks,
            early=None if options.skip_done else early,
        )
    finally:
        if early is not None:
            early.close()  # adopted by the run, or discarded: nothing started early outlives the command
    # This process's own `run` ends here once everything is written (atexit hooks run, streams flushed).
    return end_command(argv, code)


def _early_start(argv: Sequence[str]) -> Optional[EarlyStart]:
    """This command line's early start (:mod:`lute_kernel.early_launch`), unless ``LUTE_NO_EARLY_START`` is set."""
    import os

    from lute_kernel import launch_memo

    if not launch_memo.enabled(os.environ):
        return None
    from lute_kernel.early_launch import EarlyStart

    return EarlyStart.begin(argv)


def parse_tasks(argv: Sequence[str]) -> Optional[argparse.Namespace]:
    """Return the options of a plain ``tasks`` listing (``--site``, ``--[no-]show-failures``), or None."""
    if not argv or argv[0] != "tasks" or any(a.startswith(_PASS_TO_TYPER) for a in argv[1:]):
        return None
    parser = _new_parser("lute-kernel tasks")
    parser.add_argument("--site")
    parser.add_argument("--show-failures", dest="show_failures", action="store_true", default=True)
    parser.add_argument("--no-show-failures", dest="show_failures", action="store_false")
    try:
        return parser.parse_args(list(argv[1:]))  # a subcommand (``show``) is an unknown argument: typer's
    except (_Unusual, ValueError):
        return None


def lean_tasks(argv: Sequence[str]) -> Optional[int]:
    """List the Tasks for a plain ``tasks`` command line and return 0; None when typer must handle it.

    A kernel error (say, an unknown ``--site``) also returns None: typer's command reports it as always.
    """
    options = parse_tasks(argv)
    if options is None:
        return None
    from lute_kernel.cli.task_list import print_task_list
    from lute_kernel.errors import LuteError

    try:
        print_task_list(options.site, options.show_failures)
    except LuteError:
        return None
    return 0


def lean_command(argv: Sequence[str]) -> Optional[int]:
    """Run ``argv`` on a lean path when it is a plain ``run`` or ``tasks``; None: typer handles it."""
    code = lean_run(argv)
    return code if code is not None else lean_tasks(argv)


__all__: List[str] = ["lean_command", "lean_run", "lean_tasks", "parse_run", "parse_tasks"]
