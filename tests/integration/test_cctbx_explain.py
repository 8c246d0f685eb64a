"""``lute-kernel explain`` of the cctbx Tasks: the exact argv and the rendered phil file, nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Dict

import pytest
from conftest import UPSTREAM_CONFIGS, run_cli

pytestmark = [pytest.mark.integration]


def test_explain_shows_the_argv_and_the_phil_file_and_writes_nothing(
    make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str]
) -> None:
    section = {"in_file": "/data/r12/*.cbf", "phil_parameters": {"spotfinder_threshold_dispersion_gain": 1.6}}
    config = make_config({"IndexCCTBXXFEL": section}, run=12)
    done = run_cli("explain", "CCTBXIndexer", "-c", str(config), "--json", env=cli_env)  # upstream's managed-Task name
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    phil = str(work_dir / "cctbx_index.phil")
    assert (info["task"], info["kind"], info["image"]) == ("IndexCCTBXXFEL", "binary", "cctbx")
    assert info["argv"] == ["dials.stills_process", "/data/r12/*.cbf", phil]
    assert list(info["files"]) == [phil]
    assert "      gain = 1.6\n" in info["files"][phil]
    assert f"  output_dir = {work_dir}/cctbx_index_r0012\n" in info["files"][phil]

    text = run_cli("explain", "IndexCCTBXXFEL", "-c", str(config), env=cli_env)
    assert text.returncode == 0, text.stderr
    assert f"file {phil} (written before launch):\n  output {{\n" in text.stdout
    assert not Path(phil).exists() and not (work_dir / "lute.db").exists()


def test_a_merge_without_its_input_is_bad_input_naming_the_field(
    make_config: Callable[..., Path], cli_env: Dict[str, str]
) -> None:
    done = run_cli("explain", "MergeCCTBXXFEL", "-c", str(make_config({"MergeCCTBXXFEL": {}})), env=cli_env)
    assert done.returncode == 2
    assert "phil_parameters" in done.stderr and "no valid IndexCCTBXXFEL result" in done.stderr


def test_upstreams_test_yaml_cctbx_sections_validate_unchanged(
    tmp_path: Path, work_dir: Path, cli_env: Dict[str, str]
) -> None:
    source = UPSTREAM_CONFIGS / "test.yaml"
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    text, count = re.subn(r"(?m)^work_dir:.*$", f'work_dir: "{work_dir}"', source.read_text())
    assert count == 1  # only the header's SLAC path is changed
    config = tmp_path / "test.yaml"
    config.write_text(text)
    done = run_cli("validate", "-c", str(config), env=dict(cli_env, RUN="12", EXPERIMENT="mfxp1001"))
    lines = done.stdout.splitlines()
    for section in ("IndexCCTBXXFEL", "MergeCCTBXXFEL"):
        assert f"ok  {section}" in lines, done.stdout
    assert not (work_dir / "data_mfxp1001_12.loc").exists()  # validating writes no data_spec file
