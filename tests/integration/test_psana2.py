"""SmallDataPsana2 for real: psana2 reads XTC2 data made by psana's own writer; the HDF5 file is checked.

The data is generated in each test with the ``xtcwriter``/``smdwriter`` binaries of the psana wheel
(never committed), inside the same environment that runs the Task: the ``psana2`` image
(``apptainer`` marker; skipped off CI until it is built, a failure in CI), or the kernel's own Python
when psana is installed there (the ``local`` runtime, for development). The HDF5 file is read and
psana is asked directly, in that environment, by ``PROBE``: the host needs neither psana nor h5py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import pytest
from conftest import REPO, run_cli
from e2e import isolated_env, only_row, run_dirs

pytestmark = [pytest.mark.integration]

EVENTS = 50
ROI = [[0, 2], [1, 4]]  # rows 0-1, cols 1-3 of each of xppcspad's segments

PROBE = """
import json, sys
import h5py, numpy as np, psana
out_file, xtc_file, roi = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with h5py.File(out_file, "r") as f:
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    datasets = {name: f[name][()].tolist() for name in names}
    attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()}
direct = {"timestamp": [], "sum": [], "roi_sum": []}
index = tuple(slice(a, b) for a, b in roi)
for run in psana.DataSource(files=[xtc_file], skip_calib_load="all").runs():
    det = run.Detector("xppcspad")
    for evt in run.events():
        raw = det.raw.raw(evt)
        direct["timestamp"].append(evt.timestamp)
        direct["sum"].append(float(raw.astype(np.float64).sum()))
        direct["roi_sum"].append(float(raw[(slice(None),) + index].astype(np.float64).sum()))
print(json.dumps({"datasets": datasets, "attrs": attrs, "direct": direct}))
"""


@dataclass
class Psana2Env:
    """Where psana runs: the psana2 image or this Python. ``command`` runs argv there."""

    runtime: str
    prefix: List[str]
    python: str
    site_packages: str = ""

    mpiexec: str = "mpiexec"

    def command(self, argv: List[str], work: Path, binds: Sequence[str] = ()) -> List[str]:
        """Return argv run in this environment with ``work`` (and ``binds``) visible in the container."""
        if self.runtime == "apptainer":
            options = [opt for bind in (str(work), *binds) for opt in ("--bind", bind)]
            return [*self.prefix[:-1], *options, "--pwd", str(work), self.prefix[-1], *argv]
        return argv

    def run(self, argv: List[str], work: Path, binds: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        """Run argv there; fail the test with its output when it fails."""
        done = subprocess.run(self.command(argv, work, binds), capture_output=True, text=True, timeout=300, cwd=work)
        assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def tool(self, name: str) -> str:
        """Return the path of one of the wheel's binaries (site-packages/bin)."""
        return os.path.join(self.site_packages, "bin", name)


def _image_env() -> Psana2Env:
    try:
        from lute_kernel.images import find_image
        from lute_kernel.sites import load_site

        sif = str(find_image("psana2", load_site()).sif)
    except Exception as exc:  # no images module yet, or the image is not built
        if os.environ.get("CI"):
            pytest.fail(f"the psana2 image is needed in CI (just build-image psana2): {exc}")
        pytest.skip(f"psana2 image not available (just build-image psana2): {exc}")
    return Psana2Env("apptainer", ["apptainer", "exec", "--containall", "--cleanenv", "--no-home", sif], "python3")


def _local_env() -> Psana2Env:
    check = subprocess.run([sys.executable, "-c", "import psana, h5py"], capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        pytest.skip("psana (and h5py, MPI) not importable in the kernel's Python: the local runtime cannot run it")
    beside = Path(sys.executable).with_name("mpiexec")  # a venv with PyPI's mpich wheel has its own
    return Psana2Env("local", [], sys.executable, mpiexec=str(beside) if beside.exists() else "mpiexec")


@pytest.fixture(scope="session", params=[pytest.param("apptainer", marks=pytest.mark.apptainer), pytest.param("local")])
def psana_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Psana2Env:
    found = _image_env() if request.param == "apptainer" else _local_env()
    where = "import os, psana; print(os.path.dirname(os.path.dirname(psana.__file__)))"
    found.site_packages = found.run([found.python, "-c", where], tmp_path_factory.mktemp("psana")).stdout.strip()
    return found


@pytest.fixture
def xtc_dir(psana_env: Psana2Env, work_dir: Path) -> Path:
    """Run 14 of xpptut15 (EVENTS events) as an experiment folder, with its small-data index.

    Under work_dir: the apptainer runtime binds work_dir into the Task's container.
    """
    folder = work_dir / "xtc"
    (folder / "smalldata").mkdir(parents=True)
    data = folder / "xpptut15-r0014-s000-c000.xtc2"
    psana_env.run([psana_env.tool("xtcwriter"), "-f", str(data), "-n", str(EVENTS)], work_dir)
    index = folder / "smalldata" / "xpptut15-r0014-s000-c000.smd.xtc2"
    psana_env.run([psana_env.tool("smdwriter"), "-f", str(data), "-o", str(index)], work_dir)
    return folder


@pytest.fixture
def env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    return isolated_env(cli_env, tmp_path / "tmp")


def probe(psana_env: Psana2Env, work_dir: Path, out_file: str, xtc_file: Path) -> Dict[str, Any]:
    argv = [psana_env.python, "-c", PROBE, out_file, str(xtc_file), json.dumps(ROI)]
    return json.loads(psana_env.run(argv, work_dir).stdout.strip().splitlines()[-1])


def run_task(psana_env: Psana2Env, config: Path, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = run_cli("run", "SmallDataPsana2", "-c", str(config), "--runtime", psana_env.runtime, env=env, timeout=300)
    assert run_dirs(Path(env["TMPDIR"])) == []
    return result


def test_one_entry_per_event_and_sums_match_psana(
    psana_env: Psana2Env, xtc_dir: Path, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    xtc_file = next(xtc_dir.glob("*.xtc2"))
    config = make_config({"SmallDataPsana2": {"files": [str(xtc_file)], "roi": ROI, "progress_every": 10}})
    result = run_task(psana_env, config, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rank 0: {EVENTS} events" in result.stdout  # progress reached the host

    row = only_row(work_dir, "SmallDataPsana2")
    out_file = str(work_dir / "smalldata" / "xpptut15_r0014.h5")
    assert row["result.payload"] == out_file and row["result.task_status"] == "COMPLETED"
    assert f"events: {EVENTS};" in row["result.summary"] and "rate_hz: " in row["result.summary"]
    if psana_env.runtime == "apptainer":
        assert row["prov.image"] == "psana2"

    found = probe(psana_env, work_dir, out_file, xtc_file)
    datasets, direct = found["datasets"], found["direct"]
    assert sorted(datasets) == ["timestamp", "xppcspad/roi_sum", "xppcspad/sum"]
    assert {name: len(values) for name, values in datasets.items()} == dict.fromkeys(datasets, EVENTS)
    assert datasets["timestamp"] == sorted(direct["timestamp"])  # event-aligned, in time order
    assert datasets["xppcspad/sum"] == direct["sum"]
    assert datasets["xppcspad/roi_sum"] == direct["roi_sum"]
    attrs = found["attrs"]
    assert (attrs["experiment"], attrs["run"], attrs["detector"], attrs["array"]) == ("xpptut15", 14, "xppcspad", "raw")
    assert attrs["roi"] == ROI and attrs["psana_version"]


def test_the_experiment_folder_gives_the_same_rows(
    psana_env: Psana2Env, xtc_dir: Path, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    # The form MPI runs use: psana2 finds the run's files and small-data index in xtc_dir, offline.
    section = {"xtc_dir": str(xtc_dir), "roi": ROI, "max_events": 20, "out_file": "first20.h5"}
    result = run_task(psana_env, make_config({"SmallDataPsana2": section}), env)
    assert result.returncode == 0, result.stdout + result.stderr
    found = probe(psana_env, work_dir, str(work_dir / "first20.h5"), next(xtc_dir.glob("*.xtc2")))
    datasets, direct = found["datasets"], found["direct"]
    assert {name: len(values) for name, values in datasets.items()} == dict.fromkeys(datasets, 20)
    assert datasets["timestamp"] == direct["timestamp"][:20]
    assert datasets["xppcspad/sum"] == direct["sum"][:20]
    assert datasets["xppcspad/roi_sum"] == direct["roi_sum"][:20]


def test_an_unknown_detector_fails_and_names_the_ones_there(
    psana_env: Psana2Env, xtc_dir: Path, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    section = {"files": [str(next(xtc_dir.glob("*.xtc2")))], "detector": "xppcspadd"}
    result = run_task(psana_env, make_config({"SmallDataPsana2": section}), env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no detector 'xppcspadd' in run 14; found ['epicsinfo', 'xppcspad', 'xpphsd']" in result.stdout
    assert only_row(work_dir, "SmallDataPsana2")["result.task_status"] == "FAILED"
    assert not (work_dir / "smalldata").exists()  # nothing half-written


MPI_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tasks.psana2 import SmallDataPsana2
result = SmallDataPsana2.run_standalone(json.loads(sys.argv[2]))
sys.stdout.write("RESULT " + json.dumps(result.summary) + "\\n")  # one write: ranks share stdout
"""


@pytest.mark.mpi
def test_mpi_ranks_write_the_same_file_as_one_process(
    psana_env: Psana2Env, xtc_dir: Path, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    # Until the kernel launches MPI Tasks (mpirun/srun launchers), run the Task itself under mpiexec:
    # psana2 makes rank 0 SMD0, rank 1 the event builder and ranks 2-3 bigdata ranks sharing the events.
    section = {"xtc_dir": str(xtc_dir), "roi": ROI, "batch_size": 5, "progress_every": 5}
    serial = run_task(psana_env, make_config({"SmallDataPsana2": {**section, "out_file": "serial.h5"}}), env)
    assert serial.returncode == 0, serial.stdout + serial.stderr
    params = {"lute_config": {"experiment": "xpptut15", "run": 14, "work_dir": str(work_dir)}}
    params.update(section, out_file="mpi.h5")
    argv = [psana_env.mpiexec, "-n", "4", psana_env.python, "-c", MPI_RUN, str(REPO), json.dumps(params)]
    done = psana_env.run(argv, work_dir, binds=[f"{REPO}:{REPO}:ro", "/dev/shm"])
    summaries = [json.loads(found) for found in re.findall(r"RESULT (\{[^}]*\})", done.stdout)]
    assert len(summaries) == 4 and all(s == summaries[0] for s in summaries)  # every rank returns rank 0's summary
    assert summaries[0]["events"] == EVENTS and summaries[0]["ranks"] == 4
    workers = set(re.findall(r"rank (\d+): \d+ events", done.stderr))
    assert workers and workers <= {"2", "3"}, done.stderr  # only bigdata ranks see events (usually both)
    xtc_file = next(xtc_dir.glob("*.xtc2"))
    one, many = (probe(psana_env, work_dir, str(work_dir / name), xtc_file) for name in ("serial.h5", "mpi.h5"))
    assert many["datasets"] == one["datasets"] and many["attrs"] == one["attrs"]
    assert len(one["datasets"]["timestamp"]) == EVENTS
