"""Shared by the fault suites: run the real CLI in a private TMPDIR, with the local or the apptainer runtime."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from conftest import REPO
from e2e import isolated_env, processes_marked, run_dirs, wait_gone

RUNTIMES = [
    pytest.param("local", id="local"),
    pytest.param("apptainer", id="apptainer", marks=[pytest.mark.apptainer]),
]


@pytest.fixture(scope="session")
def images_built() -> None:
    """Make sure the images the fault Tasks use exist (a no-op when they are built)."""
    built = subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", "images", "build", "base", "smoke"],
        cwd=REPO,
        text=True,
        capture_output=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr


def fault_env(cli_env: Dict[str, str], tmp_path: Path, **extra: str) -> Dict[str, str]:
    """A CLI environment with a private TMPDIR and a marker every process of the run inherits."""
    return isolated_env(cli_env, tmp_path / "tmp", LUTE_TEST_MARKER=uuid.uuid4().hex, **extra)


def leftovers(env: Dict[str, str]) -> Tuple[List[str], List[int]]:
    """Return the run directories and the marked processes still there after a run."""
    marker = f"LUTE_TEST_MARKER={env['LUTE_TEST_MARKER']}\0"
    return run_dirs(Path(env["TMPDIR"])), [p for p in processes_marked(marker) if not wait_gone(p)]


def runtime_args(runtime: str) -> List[str]:
    return ["--runtime", runtime]
