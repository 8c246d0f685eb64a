"""The `run` process ends without the interpreter's teardown, and loses nothing by it.

A Task that prints and logs a lot, then finishes: every line is in the command's output, the exit
code and the row are those of the typer path (which exits the interpreter's usual way); atexit
hooks still run; a process that is not only this command (another thread alive, another command
line) is never ended.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from conftest import REPO, TEST_TASKS

from lute_kernel.cli.quick_exit import end_command, is_own_command

LINES = 3000

CHATTY = '''
import sys
from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import Task


class Chatty(Task):
    """Prints and logs many lines, the last ones without a newline or a flush of its own."""

    image = "smoke"

    class Parameters(TaskParameters):
        lines: int = param(10, "How many lines to print on stdout and on stderr.")

    def run(self) -> None:
        for i in range(self.params.lines):
            print(f"out line {i}")
            print(f"err line {i}", file=sys.stderr)
            if i % 100 == 0:
                self.log.info("log line %d", i)
        sys.stdout.write("no newline at the end")
        self.result.summary = "chatted"
'''

VOLATILE = ("id", "timestamp", "prov.start", "prov.end", "prov.pid", "prov.pid_start", "prov.argv")
"""Columns that differ between any two runs (times, ids, the kernel's pid and its argv)."""


@pytest.fixture
def chatty_env(tmp_path: Path) -> Dict[str, str]:
    folder = tmp_path / "chatty_tasks"
    folder.mkdir()
    (folder / "chatty.py").write_text(CHATTY)
    env = dict(os.environ)
    env["LUTE_TASKS_PATH"] = os.pathsep.join([str(folder), str(TEST_TASKS)])
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("LUTE_SITE", None)
    return env


def _argv(args: List[str], *, lean: bool, prelude: str = "") -> List[str]:
    """The command line of ``lute-kernel ARGS``, on the lean path or (lean False) through typer's."""
    code = (
        "import sys; sys.argv = ['lute-kernel', *sys.argv[1:]]\n"
        + prelude
        + ("" if lean else "import lute_kernel.cli.lean as l; l.lean_run = lambda argv: None\n")
        + "from lute_kernel.cli import main; main()\n"
    )
    return [sys.executable, "-c", code, *args]


def _cli(args: List[str], env: Dict[str, str], *, lean: bool, prelude: str = "") -> subprocess.CompletedProcess[str]:
    argv = _argv(args, lean=lean, prelude=prelude)
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def _rows(db_file: Path, table: str) -> List[Tuple[Any, ...]]:
    with sqlite3.connect(db_file) as db:
        cursor = db.execute(f'SELECT * FROM "{table}" ORDER BY id')
        names = [d[0] for d in cursor.description]
        keep = [i for i, name in enumerate(names) if name not in VOLATILE]
        return [tuple(row[i] for i in keep) for row in cursor.fetchall()]


def test_every_line_of_a_chatty_task_is_in_the_output_and_the_rows_match_typers(
    make_config: Callable[..., Path], chatty_env: Dict[str, str], work_dir: Path
) -> None:
    config = make_config({"Chatty": {"lines": LINES}})
    outputs = []
    for lean in (True, False):
        done = _cli(["run", "Chatty", "-c", str(config)], chatty_env, lean=lean)
        assert done.returncode == 0, done.stderr[-2000:]
        for i in range(LINES):
            assert f"out line {i}" in done.stdout
            assert f"err line {i}" in done.stdout + done.stderr
        assert "no newline at the end" in done.stdout + done.stderr
        assert sum(f"log line {i}" in done.stdout + done.stderr for i in range(0, LINES, 100)) == LINES // 100
        assert done.stdout.splitlines()[-1].startswith("Chatty: COMPLETED in ")  # the kernel's last line too
        outputs.append(sorted(line for line in done.stdout.splitlines() if " in " not in line))
    assert outputs[0] == outputs[1]
    first, second = _rows(work_dir / "lute.db", "Chatty")
    assert first == second


@pytest.mark.parametrize(
    ("section", "code"),
    [({"throw_error": True}, 1), ({"compound_var": {"int_var": "x"}}, 2)],
    ids=["failed", "bad-input"],
)
def test_atexit_hooks_run_and_exit_codes_stay(
    section: Dict[str, Any], code: int, make_config: Callable[..., Path], chatty_env: Dict[str, str]
) -> None:
    config = make_config({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}, **section}})
    prelude = textwrap.dedent(
        """
        import atexit, logging
        logging.basicConfig(stream=sys.stderr)
        atexit.register(lambda: print("HOOK RAN " + "x" * 100000, flush=False))
        """
    )
    for lean in (True, False):
        done = _cli(["run", "Test", "-c", str(config)], chatty_env, lean=lean, prelude=prelude)
        assert done.returncode == code, done.stderr[-2000:]
        assert done.stdout.rstrip().endswith("HOOK RAN " + "x" * 100000)  # printed at exit, still flushed


def test_a_stdout_that_cannot_be_flushed_ends_as_the_interpreter_would(
    make_config: Callable[..., Path], chatty_env: Dict[str, str], request: pytest.FixtureRequest
) -> None:
    config = make_config({"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}})
    codes = []
    # The broken pipe is an internal error whose traceback goes to a file in $TMPDIR: a short one of ours.
    tmp = Path(tempfile.mkdtemp(prefix="lkq-"))
    chatty_env = {**chatty_env, "TMPDIR": str(tmp)}
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    for lean in (True, False):
        with subprocess.Popen(
            _argv(["run", "Test", "-c", str(config)], lean=lean),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=chatty_env,
            cwd=REPO,
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()  # the reader went away (`| head -0`)
            proc.stderr.read()
            codes.append(proc.wait(timeout=120))
    # Both paths agree, whatever the interpreter makes of the broken pipe.
    assert codes[0] == codes[1], codes


def test_only_the_process_own_command_line_ends_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["lute-kernel", "run", "Test", "-c", "x.yaml"])
    assert is_own_command(["run", "Test", "-c", "x.yaml"])
    assert not is_own_command(["run", "Other", "-c", "x.yaml"])  # a command run in-process for another
    assert end_command(["run", "Other", "-c", "x.yaml"], 3) == 3


def test_a_live_non_daemon_thread_or_another_thread_keeps_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["lute-kernel", "run", "Test", "-c", "x.yaml"])
    argv = ["run", "Test", "-c", "x.yaml"]
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        assert not is_own_command(argv)  # the interpreter's exit would wait for it
        assert end_command(argv, 1) == 1
    finally:
        release.set()
        worker.join()
    seen: List[bool] = []
    side = threading.Thread(target=lambda: seen.append(is_own_command(argv)))
    side.start()
    side.join()
    assert seen == [False]  # not the main thread
