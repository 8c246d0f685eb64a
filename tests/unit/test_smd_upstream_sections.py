"""Upstream LUTE's own config files: every SubmitSMD and Analyze* section validates unchanged.

``../shared/upstream-configs/mfx.yaml`` and ``test.yaml`` (verbatim from upstream) are read with
the kernel's loader and its substitutions, at site ``s3df`` with its data root pointed at this
test's folder (``$LUTE_DATA_ROOT``). mfx.yaml is read as shipped: its ``work_dir: ""`` is the
experiment's scratch folder there and its commented-out ``run`` is ``$RUN_NUM``'s, as upstream's
header does. test.yaml names a SLAC work_dir, which becomes this test's folder in a copy (only
that line changes). ``$EXPERIMENT`` and ``$RUN`` come from the environment given to the loader.
mfx.yaml's analyzers name no ``smd_path``: it comes from a SubmitSMD row of the run, or the run's
file, as upstream's. (Neither file has a geometry section.) Skipped when the folder is absent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from lute_kernel.config import LoadedConfig, load_config
from lute_kernel.db import RunRecord, record_run
from lute_kernel.errors import ParameterError
from lute_kernel.parameters import AnalysisHeader
from lute_kernel.registry import discover
from lute_kernel.sites import load_site
from lute_kernel.validation import validate_header, validate_parameters

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO.parent / "shared" / "upstream-configs"
REGISTRY = discover([REPO / "tasks"], entry_points=False)
ENV = {"EXPERIMENT": "mfxl1013621", "RUN": "12", "RUN_NUM": "12"}
SECTIONS: Dict[str, List[str]] = {
    "mfx.yaml": ["SubmitSMD", "AnalyzeSmallDataXSS", "AnalyzeSmallDataXAS", "AnalyzeSmallDataXES"],
    "test.yaml": ["SubmitSMD", "AnalyzeSmallDataXSS", "AnalyzeSmallDataXAS"],
}

pytestmark = pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"no upstream configs at {UPSTREAM}")


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    """The experiment's scratch folder under the data root: mfx.yaml's work_dir at s3df (and test.yaml's copy)."""
    path = tmp_path / "ds" / "mfx" / "mfxl1013621" / "scratch"
    path.mkdir(parents=True)
    return path


def loaded(name: str, tmp_path: Path, work_dir: Path) -> Tuple[LoadedConfig, AnalysisHeader]:
    """The upstream file (test.yaml: a copy with work_dir set) loaded, and its header validated at s3df."""
    source = UPSTREAM / name
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    path = source
    text = source.read_text()
    if not re.search(r'(?m)^work_dir: ""', text):
        text, count = re.subn(r"(?m)^work_dir:.*$", f'work_dir: "{work_dir}"', text)
        assert count == 1
        path = tmp_path / name
        path.write_text(text)
    env = {**ENV, "LUTE_DATA_ROOT": str(tmp_path / "ds")}
    config = load_config(path, env=env)
    return config, validate_header(config, site=load_site("s3df"), env=env)


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_the_sections_validate_unchanged(name: str, tmp_path: Path, work_dir: Path) -> None:
    config, header = loaded(name, tmp_path, work_dir)
    assert (header.experiment, str(header.run), header.work_dir) == ("mfxl1013621", "12", str(work_dir))
    smd_file = work_dir / "hdf5" / "smalldata" / "mfxl1013621_Run0012.h5"  # what SubmitSMD writes for this run
    smd_file.parent.mkdir(parents=True)
    smd_file.write_bytes(b"")
    for section in SECTIONS[name]:
        assert config.has_section(section), section
        params = validate_parameters(REGISTRY.get(section), config, header)
        if section == "SubmitSMD":
            assert params.default is True
        elif name == "mfx.yaml":
            assert params.smd_path == str(smd_file)  # no smd_path in the section: the run's file


def test_test_yaml_keeps_upstreams_values(tmp_path: Path, work_dir: Path) -> None:
    config, header = loaded("test.yaml", tmp_path, work_dir)
    smd = validate_parameters(REGISTRY.get("SubmitSMD"), config, header)
    assert (smd.run, smd.experiment, smd.directory) == (
        "99",
        "mfxl1013621",
        "/sdf/home/d/dorlhiac/scratch/lute_tests/test_smd",
    )
    assert smd.producer == "/sdf/data/lcls/ds/mfx/mfxl1013621/results/smalldata_tools/producers/smd_producer.py"
    assert smd.result_from_params() == "/sdf/home/d/dorlhiac/scratch/lute_tests/test_smd/mfxl1013621_Run0099.h5"
    xas = validate_parameters(REGISTRY.get("AnalyzeSmallDataXAS"), config, header)
    assert xas.smd_path.endswith("xcsl1018322_Run0018.h5")  # the last of its three smd_path lines, as YAML reads it
    assert (xas.ccm, xas.ccm_set, xas.thresholds.min_ipm) == ("epics/ccm_E", "epicsUser/ccm_E_setpoint", 500)
    xss = validate_parameters(REGISTRY.get("AnalyzeSmallDataXSS"), config, header)
    assert (xss.ipm_var, xss.scan_var, xss.thresholds.min_Iscat) == ("ipm5/sum", ["lxt", "lens_v", "lens_h"], 10)


def test_mfx_yaml_analyzers_take_submit_smds_row_of_the_run(tmp_path: Path, work_dir: Path) -> None:
    config, header = loaded("mfx.yaml", tmp_path, work_dir)
    with pytest.raises(ParameterError, match="No path provided for hdf5 and cannot auto-determine"):
        validate_parameters(REGISTRY.get("AnalyzeSmallDataXES"), config, header)
    smd = validate_parameters(REGISTRY.get("SubmitSMD"), config, header)
    record_run(
        work_dir,
        RunRecord(
            task_name="SubmitSMD",
            header=header.db_header(),
            parameters=smd.task_values(),
            task_status="COMPLETED",
            summary="",
            payload=smd.result_from_params(),
        ),
    )
    for section in ("AnalyzeSmallDataXSS", "AnalyzeSmallDataXAS", "AnalyzeSmallDataXES"):
        params = validate_parameters(REGISTRY.get(section), config, header)
        assert params.smd_path == str(work_dir / "hdf5" / "smalldata" / "mfxl1013621_Run0012.h5")
