"""Upstream's mfx.yaml validates as shipped: `lute-kernel validate -c mfx.yaml --site s3df`.

Its header is upstream's template for every MFX experiment: ``experiment: "{{ $EXPERIMENT }}"``,
no run (the eLog's ``$RUN_NUM``), ``work_dir: ""`` (the experiment's scratch folder at S3DF). Only
``EXPERIMENT`` and ``RUN_NUM`` are set, and the site's data root points at a temporary folder
(``$LUTE_DATA_ROOT``) holding the experiment's scratch folder; the file is read in place, unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest
from conftest import UPSTREAM_CONFIGS, run_cli

pytestmark = pytest.mark.integration

MFX = UPSTREAM_CONFIGS / "mfx.yaml"
EXPERIMENT = "mfxl1001021"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    if not MFX.is_file():
        pytest.skip(f"{MFX} is absent")
    folder = tmp_path / "ds" / "mfx" / EXPERIMENT / "scratch"
    smd = folder / "hdf5" / "smalldata" / f"{EXPERIMENT}_Run0012.h5"  # SubmitSMD's file of the run: the analyzers'
    smd.parent.mkdir(parents=True)
    smd.write_bytes(b"")
    return folder


@pytest.fixture
def env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    env = {k: v for k, v in cli_env.items() if k not in ("RUN", "RUN_NUM", "EXPERIMENT", "LUTE_DATA_ROOT")}
    return {**env, "EXPERIMENT": EXPERIMENT, "RUN_NUM": "12_20261122T101500", "LUTE_DATA_ROOT": str(tmp_path / "ds")}


def test_mfx_yaml_validates_as_shipped_at_s3df(scratch: Path, env: Dict[str, str]) -> None:
    before = MFX.read_bytes()
    result = run_cli("validate", "-c", str(MFX), "--site", "s3df", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ok  header"
    assert lines[-1] == "10 valid, 0 invalid", result.stdout
    assert MFX.read_bytes() == before


def test_config_show_prints_the_header_as_a_run_sees_it(scratch: Path, env: Dict[str, str]) -> None:
    result = run_cli("config", "show", "-c", str(MFX), "--site", "s3df", env=env)
    assert result.returncode == 0, result.stderr
    header = json.loads(result.stdout)["header"]
    assert (header["experiment"], header["run"], header["work_dir"]) == (EXPERIMENT, 12, str(scratch))


def test_without_the_site_default_the_error_names_work_dir(scratch: Path, env: Dict[str, str]) -> None:
    result = run_cli("validate", "-c", str(MFX), "--site", "local", env=env)
    assert result.returncode == 2
    assert result.stdout.splitlines()[0].startswith(f"ERR header: {MFX}:9: work_dir is empty and site 'local'")


def test_a_missing_scratch_folder_is_named_not_created(tmp_path: Path, env: Dict[str, str]) -> None:
    if not MFX.is_file():
        pytest.skip(f"{MFX} is absent")
    result = run_cli("validate", "-c", str(MFX), "--site", "s3df", env=env)
    folder = tmp_path / "ds" / "mfx" / EXPERIMENT / "scratch"
    assert result.returncode == 2
    assert f"work_dir '{folder}' (work_dir is empty: the default of site 's3df'" in result.stdout
    assert not folder.exists()
