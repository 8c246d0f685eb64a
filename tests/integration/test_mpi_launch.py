"""MPI launches for real (mpirun off Slurm): every rank connects, logs with its rank, rank 0 reports.

Marked ``mpi``: CI installs MPICH and mpi4py. The local runtime keeps these fast; one test runs the
ranks in the psana2 image. The faults: a rank that dies or raises (FAILED, no hang), a timeout
(TIMEDOUT, every rank gone), too few cores (exit 2 before launch), srun outside an allocation.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Callable, Dict

import pytest
from conftest import run_cli
from e2e import only_row, processes_marked, run_dirs, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.mpi]


@pytest.fixture
def env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "local.yaml").write_text("kill_grace_seconds: 2\nmpi:\n  oversubscribe: true\n  hello_timeout_s: 30\n")
    tcp_sites = tmp_path / "tcp-sites"
    tcp_sites.mkdir()
    (tcp_sites / "local.yaml").write_text("mpi:\n  oversubscribe: true\n  transport: tcp\n  tcp_host: 127.0.0.1\n")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return dict(
        cli_env,
        LUTE_SITES_DIR=str(sites),
        TCP_SITES=str(tcp_sites),
        TMPDIR=str(tmpdir),
        LUTE_TEST_MARKER=uuid.uuid4().hex,
        COLUMNS="250",
    )


def _no_leftovers(env: Dict[str, str]) -> None:
    assert run_dirs(Path(env["TMPDIR"])) == []
    left = [pid for pid in processes_marked(f"LUTE_TEST_MARKER={env['LUTE_TEST_MARKER']}\0") if not wait_gone(pid)]
    assert left == [], f"ranks left running: {left}"


def test_two_ranks_connect_log_with_their_rank_and_rank_0_reports(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"MpiReport": {}})
    result = run_cli("run", "MpiReport", "-c", str(cfg), "--launcher", "mpirun", "--ranks", "2", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1] INFO    rank 1 of 2 via ipc://" in result.stdout
    assert "INFO    rank 0 of 2 via ipc://" in result.stdout
    row = only_row(work_dir, "MpiReport")
    assert row["result.task_status"] == "COMPLETED" and row["result.summary"] == "size: 2;gathered: 2"
    assert row["prov.launcher"] == "mpirun" and json.loads(row["prov.argv"])[:3] == ["mpirun", "-n", "2"]
    _no_leftovers(env)


def test_ranks_forced_onto_tcp_still_authenticate_and_finish(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"MpiReport": {}})
    tcp_env = dict(env, LUTE_SITES_DIR=env["TCP_SITES"])
    result = run_cli("run", "MpiReport", "-c", str(cfg), "--launcher", "mpirun", "--ranks", "2", env=tcp_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rank 1 of 2 via tcp://127.0.0.1:" in result.stdout
    assert only_row(work_dir, "MpiReport")["result.task_status"] == "COMPLETED"


@pytest.mark.parametrize("raise_instead", [False, True], ids=["sigkill", "raise"])
def test_one_rank_failing_fails_the_task_without_a_hang(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str], raise_instead: bool
) -> None:
    cfg = make_config({"MpiRankCrash": {"raise_instead": raise_instead}}, task_timeout=120)
    started = time.monotonic()
    result = run_cli("run", "MpiRankCrash", "-c", str(cfg), "--launcher", "mpirun", "--ranks", "2", env=env)
    assert time.monotonic() - started < 60, "a dead rank must not hang the run until its timeout"
    assert result.returncode == 1, result.stdout + result.stderr
    row = only_row(work_dir, "MpiRankCrash")
    assert row["result.task_status"] == "FAILED" and row["valid_flag"] == 0
    if raise_instead:
        assert "rank 1 failed on purpose" in row["result.summary"]
    _no_leftovers(env)


def test_a_timeout_kills_every_rank(make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]) -> None:
    cfg = make_config({"MpiReport": {"sleep_secs": 60}}, task_timeout=3)
    result = run_cli("run", "MpiReport", "-c", str(cfg), "--launcher", "mpirun", "--ranks", "2", env=env)
    assert result.returncode == 1 and "TIMEDOUT" in result.stdout, result.stdout + result.stderr
    assert only_row(work_dir, "MpiReport")["result.task_status"] == "TIMEDOUT"
    _no_leftovers(env)


def test_too_few_cores_is_an_input_error_before_launch(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str], tmp_path: Path
) -> None:
    strict = tmp_path / "strict"
    strict.mkdir()
    (strict / "local.yaml").write_text("mpi:\n  oversubscribe: false\n")
    cfg = make_config({"MpiReport": {}})
    result = run_cli(
        "run",
        "MpiReport",
        "-c",
        str(cfg),
        "--launcher",
        "mpirun",
        "--ranks",
        "64",
        env=dict(env, LUTE_SITES_DIR=str(strict)),
    )
    assert result.returncode == 2 and "need more cores than this node has" in result.stderr
    assert not (work_dir / "lute.db").exists()


def test_srun_outside_an_allocation_is_a_clear_error(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"MpiReport": {}})
    outside = {k: v for k, v in env.items() if not k.startswith("SLURM_")}
    result = run_cli("run", "MpiReport", "-c", str(cfg), "--launcher", "srun", "--ranks", "2", env=outside)
    assert result.returncode == 2 and "srun needs a Slurm allocation" in result.stderr
    assert not (work_dir / "lute.db").exists()


@pytest.mark.apptainer
def test_psana2_under_mpi_writes_the_same_hdf5_as_one_process(
    make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    import subprocess

    from lute_kernel.images import find_image
    from lute_kernel.sites import load_site

    image = str(find_image("psana2", load_site()).runnable)
    xtc = work_dir / "xtc"
    (xtc / "smalldata").mkdir(parents=True)
    name = "xpptut15-r0014-s000-c000"
    script = (
        f"cd {xtc} && xtcwriter -f {name}.xtc2 -n 60 >/dev/null && "
        f"smdwriter -f {name}.xtc2 -o smalldata/{name}.smd.xtc2 >/dev/null"
    )
    made = subprocess.run(["apptainer", "exec", "--containall", "--bind", str(work_dir), image, "sh", "-c", script])
    assert made.returncode == 0
    outputs = {}
    for mode, extra in (("serial", []), ("mpi", ["--launcher", "mpirun", "--ranks", "3"])):
        out = work_dir / f"{mode}.h5"
        cfg = make_config({"SmallDataPsana2": {"xtc_dir": str(xtc), "out_file": str(out)}})
        result = run_cli(
            "run", "SmallDataPsana2", "-c", str(cfg), "--runtime", "apptainer", *extra, env=env, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outputs[mode] = out
    compare = (
        "import h5py, numpy as np, sys\n"
        "def read(p):\n"
        "    out = {}\n"
        "    with h5py.File(p) as f:\n"
        "        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)\n"
        "    return out\n"
        "a, b = read(sys.argv[1]), read(sys.argv[2])\n"
        "assert sorted(a) == sorted(b), (sorted(a), sorted(b))\n"
        "assert all(np.array_equal(a[k], b[k]) for k in a)\n"
        "assert len(a['timestamp']) == 60\n"
        "print('same')\n"
    )
    checked = subprocess.run(
        ["apptainer", "exec", "--containall", "--bind", str(work_dir), image, "python3", "-c", compare,
         str(outputs["serial"]), str(outputs["mpi"])],
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.stdout.strip() == "same", checked.stderr
    rows = {r: None for r in ("serial", "mpi")}
    assert rows
