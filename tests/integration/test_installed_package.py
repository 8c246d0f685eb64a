"""lute-kernel installed as a user installs it: `pip install .` (not editable) into a fresh venv, run from elsewhere.

Runs ``scripts/check-wheel-install.sh`` (what CI runs too): the installed package finds its Tasks
through the ``lute_kernel.tasks`` entry point, its site profiles and recipes as package data, and
keeps its build records in the user's state directory, never in a checkout. Marked ``apptainer``:
it also runs ``images build smoke``, linked from the image cache the session's images filled.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.apptainer]


def test_a_plain_pip_install_runs_tasks_and_builds_images_from_outside_the_repo(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "check-wheel-install.sh"), str(venv)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()), "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    assert "Test: COMPLETED" in out
    assert "images: base " in out and "smoke " in out
    site_packages = next(venv.glob("lib/python*/site-packages"))
    assert (site_packages / "lute_kernel" / "data" / "sites" / "local.yaml").is_file()
    assert not (site_packages / "lute_kernel" / "data" / "sites").is_symlink()  # copies, not links to a checkout
    assert (site_packages / "lute_kernel_tasks" / "bin" / "test_threads").stat().st_mode & 0o111
    assert "check-wheel-install: ok" in out
