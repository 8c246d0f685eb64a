"""Shared set-up of the small-data and geometry integration tests: the psana2 image, data, configs, probes.

The data are XTC2 runs written inside the psana2 image by ``tests/data_makers/smd_runs.py`` (psana's
DgramEdit, pyFAI's AgBh calibrant), once per test session, with what was injected in ``truth.json``.
A site profile (the repo's ``local.yaml`` plus ``mpi.oversubscribe`` for 2-3 ranks on 2 cores, and
the data folder among its ``apptainer.binds``) lets every Task container read them. ``probe`` runs
a short Python program in the image (h5py, psana) and returns what it printed as JSON: the host
needs neither.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from conftest import REPO, TEST_TASKS, run_cli, write_config
from e2e import run_dirs

EXPERIMENT = "xppl1001021"
DATA_MAKER = REPO / "tests" / "data_makers" / "smd_runs.py"
READ_H5 = """
import json, sys
import h5py, numpy as np
path, keys = sys.argv[1], json.loads(sys.argv[2])
with h5py.File(path, "r") as f:
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    shapes = {n: list(f[n].shape) for n in names}
    values = {k: np.asarray(f[k][()]).tolist() for k in keys if k in f}
    attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()}
print(json.dumps({"shapes": shapes, "values": values, "attrs": attrs}))
"""


class World:
    """A module's psana2 image, data folder, truth and CLI environment."""

    def __init__(self, sif: str, data: Path, truth: Dict[str, Any], env: Dict[str, str]) -> None:
        self.sif, self.data, self.truth, self.env = sif, data, truth, env

    def binds(self, *more: Path) -> List[str]:
        """Binds for a probe: the data and ``more`` folders."""
        return [str(self.data), *map(str, more)]


def make_world(factory: pytest.TempPathFactory) -> World:
    """Find the image, write the data, make the site profile and the CLI's environment."""
    sif = psana2_sif()
    data = factory.mktemp("smd-data")
    truth = make_data(sif, data)
    env = dict(os.environ, LUTE_TASKS_PATH=str(TEST_TASKS), COLUMNS="250")
    env.pop("LUTE_SITE", None)
    env["LUTE_SITES_DIR"] = str(site_dir(factory.mktemp("smd-site"), data))
    return World(sif, data, truth, env)


def psana2_sif() -> str:
    """The psana2 image to run in: skipped off CI until it is built, a failure in CI."""
    try:
        from lute_kernel.images import find_image
        from lute_kernel.sites import load_site

        return str(find_image("psana2", load_site()).runnable)
    except Exception as exc:  # not built here
        if os.environ.get("CI"):
            pytest.fail(f"the psana2 image is needed in CI (just build-image psana2): {exc}")
        pytest.skip(f"psana2 image not available (just build-image psana2): {exc}")
        raise


def in_image(sif: str, argv: List[str], binds: List[str], cwd: Path, timeout: float = 300) -> str:
    """Run argv in the image (binds at the same path, tests read-only); fail with its output; return stdout."""
    options = [opt for bind in [*binds, f"{REPO / 'tests'}:{REPO / 'tests'}:ro"] for opt in ("--bind", bind)]
    command = ["apptainer", "exec", "--containall", "--cleanenv", "--no-home", *options, "--pwd", str(cwd), sif, *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv[:2]} failed in the image:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def make_data(sif: str, folder: Path) -> Dict[str, Any]:
    """Write the runs (with their small-data index, for MPI) into ``folder``; return the truth."""
    folder.mkdir(parents=True, exist_ok=True)
    in_image(sif, ["python3", str(DATA_MAKER), str(folder), "--index"], [str(folder)], folder)
    truth: Dict[str, Any] = json.loads((folder / "truth.json").read_text())
    return truth


def site_dir(folder: Path, data: Path) -> Path:
    """A site profile folder: the repo's local profile, oversubscribed MPI, the data folder bound."""
    profile = yaml.safe_load((REPO / "config" / "sites" / "local.yaml").read_text())
    profile.setdefault("mpi", {}).update(oversubscribe=True, hello_timeout_s=120)
    profile.setdefault("apptainer", {})["binds"] = [str(data)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "local.yaml").write_text(yaml.safe_dump(profile))
    return folder


def config(path: Path, work_dir: Path, run: int, sections: Dict[str, Any]) -> Path:
    """A config for one run of the test experiment."""
    header = {
        "title": "small data",
        "experiment": EXPERIMENT,
        "run": run,
        "date": "2026/12/01",
        "lute_version": 0.1,
        "task_timeout": 600,
        "work_dir": str(work_dir),
    }
    return write_config(path, header, sections)


def run_task(task: str, cfg: Path, env: Dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    """``lute-kernel run TASK`` in its container; nothing may be left in TMPDIR."""
    done = run_cli("run", task, "-c", str(cfg), "--runtime", "apptainer", *options, env=env, timeout=600)
    assert run_dirs(Path(env["TMPDIR"])) == [], "a run directory was left behind"
    return done


def read_h5(sif: str, path: str, keys: List[str], binds: List[str]) -> Dict[str, Any]:
    """Shapes of every dataset, values of ``keys`` and the root attributes of an HDF5 file."""
    folder = Path(path).parent
    out = in_image(sif, ["python3", "-c", READ_H5, path, json.dumps(keys)], binds, folder)
    found: Dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


def payload_of(row: Dict[str, Any]) -> Any:
    """The recorded payload, decoded when it is JSON."""
    value = row["result.payload"]
    try:
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
    except json.JSONDecodeError:
        return value


def smd_section(
    run: int, xtc_dir: Path, truth: Dict[str, Any], extra: Optional[Dict[str, Any]] = None
) -> Dict[str, Any]:
    """A SubmitSMD section for one of the runs: its ROIs and pyFAI integration of the injected geometry."""
    xss = truth["xss"]
    pixel, (cy, cx) = xss["pixel"], xss["center"]
    azav = {
        "pix_size": pixel,
        "npts": 120,
        "npts_az": 8,
        "int_units": "q_A^-1",
        "return2d": True,
        "ai_kwargs": {"dist": xss["dist"], "poni1": (cy + 0.5) * pixel, "poni2": (cx + 0.5) * pixel},
    }
    section: Dict[str, Any] = {
        "xtc_dir": str(xtc_dir),
        "default": True,
        "detnames": ["epix10k2M"],
        "getAzIntPyFAIParams": {"epix10k2M": azav},
    }
    if run == xss["run"]:
        section["getROIs"] = {"epix_2": {"ROIs": [[[0, 60], [0, 30]]], "writeArea": True}}
    elif run == truth["xas"]["run"]:
        section.update(epicsPV=["ccm_E"], getROIs={"epix_1": {"ROIs": [[[0, 40], [0, 40]]]}})
    else:
        agbh = truth["agbh"]
        center = 0.5 * agbh["shape"][0] * agbh["pixel"]  # today's geometry: the beam at the centre
        section = {
            "xtc_dir": str(xtc_dir),
            "detnames": ["Rayonix"],
            "getAzIntPyFAIParams": {
                "Rayonix": {
                    "pix_size": agbh["pixel"],
                    "npts": 256,
                    "int_units": "2th_deg",
                    "ai_kwargs": {"dist": agbh["guess_dist"], "poni1": center, "poni2": center},
                }
            },
        }
    section.update(extra or {})
    return section
