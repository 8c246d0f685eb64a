"""`lute-kernel tasks`: image (site-only marked), MPI and GPU needs per Task, with no heavy import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar, Dict

from lute_kernel.cli.task_table import TaskRow, image_notes, mpi_need, task_rows
from lute_kernel.task import Resources, Task, TaskSpec
from lute_kernel.task_catalogue import TaskFacts
from lute_kernel.task_lookup import _facts, task_catalogue

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
HEAVY = ("psana", "h5py", "mpi4py", "cctbx", "dials", "dxtbx", "scipy", "matplotlib", "pyFAI", "prefect", "spython")


class GpuSweep(Task):
    """Four ranks with two GPUs each."""

    image = "nowhere"
    mpi = True
    resources: ClassVar[Resources] = Resources(ranks=4, gpus=2)


class AtLeastThree(Task):
    """psana2's parallel mode."""

    image = "psana2"
    mpi = True
    min_ranks = 3


def facts(cls: type[Task]) -> TaskFacts:
    return TaskFacts.from_dict(_facts(TaskSpec(name=cls.__name__, cls=cls, module="m", source="t", aliases=("Alias",))))


def test_mpi_and_gpu_columns_say_what_a_task_needs() -> None:
    rows = task_rows([facts(GpuSweep), facts(AtLeastThree)], {"psana2": "x only"}, known_images=("psana2",))
    assert rows == [
        TaskRow("GpuSweep", "nowhere (no recipe)", "MPI, 4 ranks", "2 GPUs", "python", "Alias", GpuSweep.__doc__),
        TaskRow("AtLeastThree", "psana2 (x only)", "MPI, 3+ ranks", "-", "python", "Alias", "psana2's parallel mode."),
    ]  # grouped by image


def test_the_shipped_tasks() -> None:
    catalogue, failures = task_catalogue([REPO / "tasks"])
    assert failures == []
    known = ("base", "cctbx", "ccp4", "crystfel", "psana1", "psana2", "smoke")
    rows: Dict[str, TaskRow] = {r.name: r for r in task_rows(catalogue, image_notes(RECIPES), known)}
    assert (rows["FindPeaksSFX"].image, rows["FindPeaksSFX"].mpi, rows["FindPeaksSFX"].gpus) == ("psana2", "MPI", "-")
    assert (rows["IndexCrystFEL"].image, rows["IndexCrystFEL"].mpi) == ("crystfel (s3df only)", "-")
    assert rows["FindPeaksPyAlgos"].image == "psana1 (s3df only)"
    assert rows["IndexCCTBXXFEL"].image == "cctbx" and rows["IndexCCTBXXFEL"].mpi == "MPI"
    assert mpi_need(next(f for f in catalogue if f.name == "ConcatenateStreamFiles")) == "-"


def test_image_notes_of_a_missing_or_broken_recipes_folder(tmp_path: Path) -> None:
    assert image_notes(None) == {} and image_notes(tmp_path / "none") == {}
    (tmp_path / "bad.def.j2").write_text("no metadata block\n")
    assert image_notes(tmp_path) == {"bad": "recipe unreadable"}


def test_the_command_imports_no_tasks_heavy_dependencies(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.argv = ["lute-kernel", "tasks"]
        from lute_kernel.cli import _run_app
        code = _run_app()
        print("HEAVY", sorted(m for m in {HEAVY!r} if m in sys.modules), code, file=sys.stderr)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="250")
    env.pop("LUTE_SITE", None)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=REPO
    )
    assert result.stderr.strip().splitlines()[-1] == "HEAVY [] 0", result.stderr
    assert "FindPeaksSFX" in result.stdout and "crystfel (s3df only)" in result.stdout
    header = result.stdout.splitlines()[1]
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "Task", "image", "MPI", "GPU", "kind", "aliases", "description",
    ]  # fmt: skip
