"""TestMultiNodeCommunication for real: mpi4py ranks in the psana2 image, alone and through the kernel.

Two ways in: the Task's own code under ``mpiexec -n 2`` inside the image (``run_standalone``, no
kernel: what the ranks do), and ``lute-kernel run`` (one rank with the direct launcher; two ranks
with the mpirun launcher, when ``lute-kernel run`` has ``--launcher``/``--ranks``). Needs the
psana2 image (``apptainer`` marker; skipped off CI until it is built, a failure in CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np
import pytest
from conftest import REPO, run_cli
from e2e import isolated_env, only_row, run_dirs

from lute_kernel.runtimes.apptainer import KERNEL_PACKAGE
from lute_kernel.sites import SiteProfile, load_site

pytestmark = [pytest.mark.integration, pytest.mark.apptainer]

TASK = "TestMultiNodeCommunication"

STANDALONE = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="LOG %(message)s")
from tasks.mpi_test import TestMultiNodeCommunication
result = TestMultiNodeCommunication.run_standalone(json.loads(sys.argv[1]))
out = {"status": result.task_status.value, "summary": result.summary, "payload": result.payload}
sys.stdout.write("RESULT " + json.dumps(out) + "\\n")  # one write: ranks share stdout
"""


def _ci_or_skip(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (needed in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site() -> SiteProfile:
    return load_site()


@pytest.fixture(scope="module")
def psana2_image(site: SiteProfile) -> str:
    from lute_kernel.images import find_image

    try:
        return str(find_image("psana2", site).runnable)
    except Exception as exc:  # not built here
        _ci_or_skip(f"psana2 image not available (just build-image psana2): {exc}")
        raise


@pytest.fixture(scope="module")
def run_options() -> str:
    """The ``lute-kernel run --help`` text: which launch options the kernel has."""
    done = run_cli("run", "--help", env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def in_image(site: SiteProfile, image: str, argv: List[str], work_dir: Path) -> List[str]:
    """Return argv run in the image the way the apptainer runtime runs a Task (kernel and tasks read-only)."""
    settings = site.apptainer
    binds = [
        f"{KERNEL_PACKAGE}:{KERNEL_PACKAGE}:ro",
        f"{REPO / 'tasks'}:{REPO / 'tasks'}:ro",
        str(work_dir),
        "/dev/shm",
    ]
    env = {"PYTHONPATH": str(KERNEL_PACKAGE.parent), "PYTHONNOUSERSITE": "1"}
    return [
        settings.binary,
        "exec",
        *settings.exec_flags,
        "--pwd",
        str(work_dir),
        *(opt for bind in binds for opt in ("--bind", bind)),
        *(opt for key, value in env.items() for opt in ("--env", f"{key}={value}")),
        image,
        *argv,
    ]


def run_standalone(
    site: SiteProfile, image: str, work_dir: Path, section: Dict[str, Any], ranks: int
) -> subprocess.CompletedProcess[str]:
    params = json.dumps({"lute_config": {"work_dir": str(work_dir)}, **section})
    python = [site.apptainer.python, "-c", STANDALONE, params]
    argv = ["mpiexec", "-n", str(ranks), *python] if ranks > 1 else python  # the image's MPICH
    done = subprocess.run(in_image(site, image, argv, work_dir), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def results(stdout: str) -> List[Dict[str, Any]]:
    return [json.loads(found) for found in re.findall(r"^RESULT (.*)$", stdout, re.MULTILINE)]


def array_crc(rank: int, size: int) -> int:
    return zlib.crc32(np.full(size, rank, dtype=np.float64).tobytes())


# --- the Task's code under mpiexec, without the kernel ----------------------------------------


@pytest.mark.mpi
def test_two_ranks_each_log_and_send_an_array_and_rank_zero_gathers_both(
    site: SiteProfile, psana2_image: str, work_dir: Path
) -> None:
    done = run_standalone(site, psana2_image, work_dir, {"send_obj": "array", "arr_size": 7}, ranks=2)
    hosts = dict(re.findall(r"^LOG rank (\d) of 2 on host (\S+)$", done.stderr, re.MULTILINE))
    assert sorted(hosts) == ["0", "1"], done.stderr
    for rank in (0, 1):
        assert f"progress 1/1: rank {rank}: sent array (56 bytes)" in done.stderr
    found = results(done.stdout)
    assert len(found) == 2 and found[0] == found[1]  # every rank ends with rank 0's result
    assert found[0]["status"] == "COMPLETED"
    assert found[0]["summary"] == {"ranks": 2, "send_obj": "array", "received": 2, "hosts": 1}
    reports = found[0]["payload"]["reports"]
    assert reports == [
        {"rank": rank, "host": hosts[str(rank)], "nbytes": 56, "crc32": array_crc(rank, 7)} for rank in (0, 1)
    ]


@pytest.mark.mpi
def test_two_ranks_send_different_png_plots(site: SiteProfile, psana2_image: str, work_dir: Path) -> None:
    done = run_standalone(site, psana2_image, work_dir, {"send_obj": "plot"}, ranks=2)
    assert re.findall(r"progress 1/1: rank (\d): sent plot \(\d+ bytes\)", done.stderr) != []
    [summary] = {json.dumps(r["summary"]) for r in results(done.stdout)}
    assert json.loads(summary) == {"ranks": 2, "send_obj": "plot", "received": 2, "hosts": 1}
    reports = results(done.stdout)[0]["payload"]["reports"]
    assert [r["rank"] for r in reports] == [0, 1] and reports[0]["crc32"] != reports[1]["crc32"]


def test_one_process_without_mpiexec_is_a_world_of_one(site: SiteProfile, psana2_image: str, work_dir: Path) -> None:
    done = run_standalone(site, psana2_image, work_dir, {"send_obj": "array"}, ranks=1)
    assert re.search(r"^LOG rank 0 of 1 on host \S+$", done.stderr, re.MULTILINE), done.stderr
    [found] = results(done.stdout)
    assert found["summary"] == {"ranks": 1, "send_obj": "array", "received": 1, "hosts": 1}


# --- through the kernel -----------------------------------------------------------------------


@pytest.fixture
def env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    return isolated_env(cli_env, tmp_path / "tmp")


def run_kernel(config: Path, env: Dict[str, str], *options: str, name: str = TASK) -> subprocess.CompletedProcess[str]:
    done = run_cli("run", name, "-c", str(config), "--runtime", "apptainer", *options, env=env, timeout=180)
    assert run_dirs(Path(env["TMPDIR"])) == []
    return done


def recorded_payload(row: Dict[str, Any]) -> Any:
    value = row["result.payload"]
    return json.loads(value) if isinstance(value, str) else value


def test_the_kernel_runs_it_on_one_rank_with_the_direct_launcher(
    psana2_image: str, run_options: str, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    if "--launcher" not in run_options or "--ranks" not in run_options:
        pytest.skip("needs `lute-kernel run --launcher direct --ranks 1` (the Task asks for 2 ranks by default)")
    config = make_config({TASK: {"send_obj": "array", "arr_size": 3}})
    done = run_kernel(config, env, "--launcher", "direct", "--ranks", "1", name="MultiNodeCommunicationTester")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"rank 0 of 1 on host \S+", done.stdout), done.stdout
    assert "rank 0: sent array (24 bytes)" in done.stdout
    row = only_row(work_dir, TASK)
    assert row["result.task_status"] == "COMPLETED"
    assert row["result.summary"] == "ranks: 1;send_obj: array;received: 1;hosts: 1"
    assert (row["prov.launcher"], row["prov.image"]) == ("direct", "psana2")
    [report] = recorded_payload(row)["reports"]
    assert (report["rank"], report["crc32"]) == (0, array_crc(0, 3))


@pytest.mark.mpi
def test_the_kernel_runs_it_on_two_ranks_with_mpirun(
    site: SiteProfile,
    psana2_image: str,
    run_options: str,
    make_config: Callable[..., Path],
    work_dir: Path,
    env: Dict[str, str],
) -> None:
    if "--launcher" not in run_options or "--ranks" not in run_options:
        pytest.skip("needs the mpirun launcher (`lute-kernel run --launcher mpirun --ranks 2`)")
    if shutil.which(site.mpi.mpirun, path=env.get("PATH")) is None:
        _ci_or_skip(f"needs the mpirun launcher's {site.mpi.mpirun!r} on the host PATH")
    config = make_config({TASK: {"send_obj": "plot"}})
    done = run_kernel(config, env, "--launcher", "mpirun", "--ranks", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    for rank in (0, 1):
        assert re.search(rf"rank {rank} of 2 on host \S+", done.stdout), done.stdout
        assert re.search(rf"rank {rank}: sent plot \(\d+ bytes\)", done.stdout), done.stdout
    assert re.search(r"^\[1\] .*rank 1 of 2 on host", done.stdout, re.MULTILINE), done.stdout  # the host shows the rank
    row = only_row(work_dir, TASK)
    assert row["result.task_status"] == "COMPLETED"
    assert row["result.summary"] == "ranks: 2;send_obj: plot;received: 2;hosts: 1"
    assert row["prov.launcher"] == "mpirun"
    assert [r["rank"] for r in recorded_payload(row)["reports"]] == [0, 1]
