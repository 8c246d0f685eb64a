"""Errors where they land: plain `error:` last lines off a terminal, rich on one; shell completion."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
BOX = set("╭╮╰╯│─┃━┏┓┗┛")


def _env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), LUTE_TASKS_PATH=str(REPO / "tests" / "tasks"), **extra)
    env.pop("LUTE_SITE", None)
    return env


def run_piped(args: List[str], **extra: str) -> subprocess.CompletedProcess[str]:
    script = f"import sys; sys.argv = ['lute-kernel', *{args!r}]\nfrom lute_kernel.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(**extra), timeout=60)


def run_on_terminal(args: List[str]) -> Tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return (exit code, what it showed)."""
    script = f"import sys; sys.argv = ['lute-kernel', *{args!r}]\nfrom lute_kernel.cli import main\nmain()\n"
    leader, follower = pty.openpty()
    env = _env(TERM="xterm", COLUMNS="100")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(timeout=60), shown.decode(errors="replace")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "Test"], "error: Missing option '--config' / '-c'."),
        (["bogus"], "error: No such command 'bogus'."),
        (["db", "show"], "error: Missing argument 'task'."),
        (["run", "Test", "-c", "x.yaml", "--ranks", "many"], "error: Invalid value for '--ranks' / '-n'"),
    ],
)
def test_usage_errors_end_with_a_plain_error_line_off_a_terminal(args: List[str], message: str) -> None:
    done = run_piped(args)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[-1].startswith(message), done.stderr
    assert lines[0].startswith("Usage: lute-kernel ")
    assert not BOX & set(done.stderr) and "\x1b" not in done.stderr


def test_kernel_errors_are_plain_too(tmp_path: Path) -> None:
    done = run_piped(["db", "ls", "-w", str(tmp_path)])
    assert done.returncode == 2
    assert done.stderr == f"error: no database at {tmp_path / 'lute.db'}\n"


def test_on_a_terminal_errors_keep_richs_formatting(tmp_path: Path) -> None:
    code, shown = run_on_terminal(["run", "Test"])
    assert code == 2
    assert "Missing option" in shown and BOX & set(shown)  # typer's panel
    code, shown = run_on_terminal(["db", "ls", "-w", str(tmp_path)])
    assert code == 2 and "error:" in shown and "\x1b[" in shown  # coloured


def complete(words: str, cword: int) -> List[str]:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv = ['lute-kernel']\nfrom lute_kernel.cli import main\nmain()\n"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(_LUTE_KERNEL_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword)),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_task_names_aliases_images_and_sections_complete(tmp_path: Path) -> None:
    assert {"Test", "TestSocket", "Tester", "TestWriteOutput"} <= set(complete("lute-kernel run Te", 2))
    assert "Tester" in complete("lute-kernel tasks show Tes", 3)
    assert set(complete("lute-kernel images build ps", 3)) >= {"psana2"}
    config = tmp_path / "c.yaml"
    config.write_text("%YAML 1.3\n---\nwork_dir: /tmp\n...\n---\nAlpha: {}\nAlbert: {x: 1}\nBeta: {}\n...\n")
    assert complete(f"lute-kernel config show -c {config} --section Al", 6) == ["Albert", "Alpha"]
    assert complete("lute-kernel config show -c /nonexistent.yaml --section Al", 6) == []
