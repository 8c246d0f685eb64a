"""The lute-kernel entry point: one line for interrupts (exit 130) and for internal errors (exit 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

import pytest

REPO = Path(__file__).resolve().parents[2]

PRELUDE = """\
import os, signal, sys, threading
sys.argv = ["lute-kernel", *ARGS]
"""


def run_script(body: str, args: List[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``body`` (which ends by calling lute_kernel.cli.main) in a fresh interpreter."""
    script = PRELUDE.replace("ARGS", repr(args)) + textwrap.dedent(body)
    env: Dict[str, str] = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    env["LUTE_TASKS_PATH"] = str(REPO / "tests" / "tasks")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=REPO)


def crash_files(tmp_path: Path) -> List[Path]:
    return sorted(tmp_path.glob("lute-kernel-crash-*.txt"))


def test_an_unexpected_exception_is_one_line_and_a_traceback_file(tmp_path: Path) -> None:
    result = run_script(
        """
        import lute_kernel.registry, lute_kernel.task_lookup
        def broken(*args, **kwargs):
            raise RuntimeError("boom\\n  on two lines")
        lute_kernel.registry.discover = lute_kernel.task_lookup.task_catalogue = broken
        from lute_kernel.cli import main
        main()
        """,
        ["tasks"],
        tmp_path,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [crash] = crash_files(tmp_path)
    assert result.stderr == f"error: internal error: RuntimeError: boom on two lines (traceback in {crash})\n"
    text = crash.read_text()
    assert text.startswith("lute-kernel tasks\nTraceback (most recent call last):")
    assert "RuntimeError: boom" in text
    assert oct(crash.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("where", "body"),
    [
        (
            "in-a-command",
            """
            import lute_kernel.registry, lute_kernel.task_lookup
            def interrupted(*args, **kwargs):
                raise KeyboardInterrupt
            lute_kernel.registry.discover = lute_kernel.task_lookup.task_catalogue = interrupted
            """,
        ),
        (
            "a-real-sigint-in-a-command",
            """
            import lute_kernel.registry, lute_kernel.task_lookup
            def interrupted(*args, **kwargs):
                os.kill(os.getpid(), signal.SIGINT)
                signal.pause()  # the handler raises KeyboardInterrupt before this returns
            lute_kernel.registry.discover = lute_kernel.task_lookup.task_catalogue = interrupted
            """,
        ),
        (
            "while-importing-the-commands",
            """
            class Interrupt:
                def find_spec(self, name, path=None, target=None):
                    if name in ("lute_kernel.cli.app", "lute_kernel.cli.task_list"):  # typer's or the lean path
                        raise KeyboardInterrupt
                    return None
            sys.meta_path.insert(0, Interrupt())
            """,
        ),
        (
            "while-exiting",
            """
            import atexit
            def late():
                os.kill(os.getpid(), signal.SIGINT)
                signal.pause()
            atexit.register(late)
            """,
        ),
    ],
)
def test_an_interrupt_is_exit_130_and_one_line(where: str, body: str, tmp_path: Path) -> None:
    result = run_script(textwrap.dedent(body) + "\nfrom lute_kernel.cli import main\nmain()\n", ["tasks"], tmp_path)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "lute-kernel: interrupted\n"
    assert crash_files(tmp_path) == []


@pytest.mark.parametrize("signals", [1, 2, 5, 50, 500])
@pytest.mark.parametrize("args", [["tasks"], ["validate", "-c", "/nonexistent.yaml"], ["--help"]])
def test_a_storm_of_sigints_during_start_up_never_prints_a_traceback(
    signals: int, args: List[str], tmp_path: Path
) -> None:
    # The storm starts when the commands start importing (inside main) and may last past exit.
    result = run_script(
        f"""
        def storm():
            for _ in range({signals}):
                os.kill(os.getpid(), signal.SIGINT)
        class StartStorm:
            def find_spec(self, name, path=None, target=None):
                if name == "lute_kernel.cli.app":
                    threading.Thread(target=storm, daemon=True).start()
                return None
        sys.meta_path.insert(0, StartStorm())
        from lute_kernel.cli import main
        main()
        """,
        args,
        tmp_path,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
    if result.returncode == 130:
        assert result.stderr.endswith("lute-kernel: interrupted\n")
        assert result.stderr.count("interrupted") == 1
    else:  # the command was over before the first signal landed
        assert result.returncode in (0, 2), result.stderr
    assert crash_files(tmp_path) == []


def test_ordinary_exits_are_unchanged(tmp_path: Path) -> None:
    body = "from lute_kernel.cli import main\nmain()\n"
    version = run_script(body, ["--version"], tmp_path)
    assert (version.returncode, version.stderr) == (0, "")
    assert version.stdout.startswith("lute-kernel ")
    usage = run_script(body, ["run"], tmp_path)
    assert usage.returncode == 2
    assert usage.stderr.startswith("Usage: lute-kernel run ")
    bad = run_script(body, ["validate", "-c", str(tmp_path / "absent.yaml")], tmp_path)
    assert bad.returncode == 2
    assert bad.stderr == f"error: {tmp_path / 'absent.yaml'}: configuration file not found\n"


def test_importing_the_package_does_not_import_the_commands() -> None:
    code = "import sys, lute_kernel.cli; print('lute_kernel.cli.app' in sys.modules, 'typer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_app_is_the_typer_app_whatever_was_imported_first() -> None:
    code = (
        "import lute_kernel.cli.app, typer\n"
        "from lute_kernel.cli import app\n"
        "import lute_kernel.cli as cli\n"
        "print(isinstance(app, typer.Typer), isinstance(cli.app, typer.Typer))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("line", ["lute-kernel: interrupted", "error: internal error: X: y (traceback in /tmp/f)"])
def test_a_reported_line_is_one_write_with_its_newline(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under PYTHONUNBUFFERED each write is a syscall: a signal ending the process between two would cut the line."""
    import lute_kernel.cli as cli

    writes: List[str] = []

    class Recorder:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(cli.sys, "stderr", Recorder())
    cli._say(line)
    assert writes == [line + "\n"]
