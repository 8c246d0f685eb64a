"""`lute-kernel run`'s work, without typer: prepare, run with live output and signals, report, return the code.

Owns the run path of the command line: signal forwarding from before anything slow starts, the
skip-if-done check, the live display, the status line, and the exit code (0 completed or already
done, 1 the Task did not complete or was not recorded, 2 bad input). Both the typer command and the
lean entry (``lute_kernel.cli.lean``, which imports neither typer nor rich before the Task starts)
call :func:`run_all_and_report` (one Task or several in a row), so they print the same lines and
return the same codes.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

from lute_kernel.cli import start_up_gc
from lute_kernel.cli.messages import print_error
from lute_kernel.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_TASK_FAILED, InputError, LuteError

if TYPE_CHECKING:
    from lute_kernel.early_launch import EarlyStart

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
"""Signals that cancel the run (forwarded to the Task): Ctrl-C, scancel/kill, a closed terminal, Ctrl-\\."""


def _report_done(row: Dict[str, Any], task: str, db_file: Path) -> None:
    start = str(row.get("prov.start") or row.get("timestamp") or "")[:19].replace("T", " ")
    print(
        f"{task}: already done: row {row.get('id')} in {db_file} (COMPLETED {start} UTC) has the same parameters,"
        " image digest and kernel version for this run; not run again (--force runs it)",
        flush=True,
    )


def _error_code(err: LuteError) -> int:
    print_error(str(err))
    return EXIT_BAD_INPUT if isinstance(err, InputError) else EXIT_TASK_FAILED


def run_all_and_report(
    tasks: Sequence[str], config: Path, *, early: Optional[EarlyStart] = None, **options: Any
) -> int:
    """Run several Tasks one after the other in this process (imports paid once); stop at the first that fails.

    Each is prepared only once the one before it has been recorded, so DB-derived defaults see its
    row, as separate ``run`` commands would. Returns the exit code of the last Task run. ``early``
    (the command's early start) belongs to the first Task.
    """
    code = EXIT_OK
    if len(tasks) > 1:  # the same config and site profile for each: parsed once (an edit meanwhile still counts)
        from lute_kernel import parse_memo

        parse_memo.enable()
    for index, task in enumerate(tasks):
        code = run_and_report(task, config, early=early if index == 0 else None, **options)
        if code != EXIT_OK:
            if index + 1 < len(tasks):
                skipped = ", ".join(tasks[index + 1 :])
                print_error(f"stopped after {task} (exit {code}); not run: {skipped}")
            break
    return code


def run_and_report(
    task: str,
    config: Path,
    *,
    skip_done: bool = False,
    profile: bool = False,
    early: Optional[EarlyStart] = None,
    **options: Any,
) -> int:
    """Prepare TASK, run it with live output and signal forwarding, print the status line; return the exit code.

    ``profile`` (or ``LUTE_PROFILE=1``) prints where the wall time went, on stderr, at the end.
    ``early``: this command's early start (:mod:`lute_kernel.early_launch`): the launch it made last
    time, started before validation, is kept only when it is exactly the launch this run needs; this
    run's launch is kept for the next time. Closed here whatever happens.
    """
    from lute_kernel.cancel import CancelToken

    cancel = CancelToken()
    # Installed before anything slow: a signal during start-up cancels cleanly (nothing is launched
    # yet, so preparing is simply not continued), instead of a traceback from wherever it landed.
    previous = {s: signal.signal(s, lambda signum, _frame: cancel.cancel(signum)) for s in FORWARDED_SIGNALS}
    try:
        from lute_kernel.api import done_row, launch_settings, prepare, run_prepared

        try:
            run_dir_name = early.run_dir_name if early is not None else None
            prepared = prepare(task, config, run_dir_name=run_dir_name, **options)
            done = done_row(prepared) if skip_done else None
        except LuteError as err:
            return _error_code(err)
        finally:
            start_up_gc.release()  # the collector is on again before any Task code runs
        if done is not None:
            from lute_kernel.db import db_path

            _report_done(done, prepared.spec.name, db_path(prepared.work_dir))
            return EXIT_OK
        if cancel.cancelled:
            print_error(f"cancelled by {signal.Signals(cancel.signum or 2).name} before launch")
            return EXIT_TASK_FAILED
        from lute_kernel.cli.progress import RunDisplay

        settings = launch_settings(prepared)
        started = early.take(prepared.plan, settings) if early is not None else None
        try:
            with RunDisplay() as display:
                outcome = run_prepared(prepared, on_event=display.sink(), cancel=cancel, early=started)
        except LuteError as err:
            return _error_code(err)
        finally:
            if early is not None:
                early.close()  # not adopted (a failed 'before' tasklet): killed, its folder gone
        if early is not None:
            early.keep(str(config), prepared.plan, prepared.request, settings)  # for the next run of this command
    finally:
        if early is not None:
            early.close()  # bad input, a cancel, a done row: what started early goes first
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        cancel.close()
    from lute_kernel.summaries import summary_text

    summary = f" — {summary_text(outcome.summary)}" if outcome.summary else ""
    where = f"row {outcome.row_id} in {outcome.db_path}" if outcome.row_id is not None else "NOT RECORDED"
    print(f"{outcome.task_name}: {outcome.status.value} in {outcome.seconds:.2f} s ({where}){summary}", flush=True)
    from lute_kernel.profile import profiling_requested

    if profile or profiling_requested():
        print(outcome.timeline.report(), file=sys.stderr, flush=True)
    if outcome.not_recorded:
        print_error(f"not recorded in {outcome.db_path}: {outcome.not_recorded}")
        return EXIT_TASK_FAILED
    return EXIT_OK if outcome.ok else EXIT_TASK_FAILED
