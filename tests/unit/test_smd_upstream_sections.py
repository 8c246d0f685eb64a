"""Upstream LUTE's own config files: every SubmitSMD and Analyze* section validates unchanged.

``../shared/upstream-configs/mfx.yaml`` and ``test.yaml`` (verbatim from upstream) are read with
the kernel's loader and its substitutions; only the header is overridden, in a copy: ``work_dir``
(``""`` in mfx.yaml: upstream's default is the experiment's scratch folder, which another change
adds; a SLAC path in test.yaml) becomes this test's folder, and mfx.yaml, whose ``run`` is
commented out (upstream takes it from ``$RUN_NUM``, also being added), gets ``run: 12``.
``$EXPERIMENT`` and ``$RUN`` come from the environment given to the loader. mfx.yaml's analyzers
name no ``smd_path``: it comes from a SubmitSMD row of the run, or the run's file, as upstream's.
(Neither file has a geometry section.) Skipped when the folder is absent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

import pytest

from lute_kernel.config import load_config
from lute_kernel.db import RunRecord, record_run
from lute_kernel.errors import ParameterError
from lute_kernel.registry import discover
from lute_kernel.validation import validate_header, validate_parameters

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO.parent / "shared" / "upstream-configs"
REGISTRY = discover([REPO / "tasks"], entry_points=False)
ENV = {"EXPERIMENT": "mfxl1013621", "RUN": "12"}
SECTIONS: Dict[str, List[str]] = {
    "mfx.yaml": ["SubmitSMD", "AnalyzeSmallDataXSS", "AnalyzeSmallDataXAS", "AnalyzeSmallDataXES"],
    "test.yaml": ["SubmitSMD", "AnalyzeSmallDataXSS", "AnalyzeSmallDataXAS"],
}

pytestmark = pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"no upstream configs at {UPSTREAM}")


def with_our_header(name: str, tmp_path: Path, work_dir: Path) -> Path:
    """A copy of the upstream file with work_dir (and, when missing, run) set; the sections untouched."""
    source = UPSTREAM / name
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    text = source.read_text()
    text, count = re.subn(r"(?m)^work_dir:.*$", f'work_dir: "{work_dir}"', text)
    assert count == 1
    if not re.search(r"(?m)^run:", text):
        text = re.sub(r"(?m)^(experiment:.*)$", r"\1\nrun: 12", text, count=1)
    sections = source.read_text().split("\n...\n", 1)[1]  # everything after the header document
    assert text.endswith(sections)  # only the header changed
    copy = tmp_path / name
    copy.write_text(text)
    return copy


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_the_sections_validate_unchanged(name: str, tmp_path: Path, work_dir: Path) -> None:
    config = load_config(with_our_header(name, tmp_path, work_dir), env=ENV)
    header = validate_header(config)
    assert (header.experiment, str(header.run)) == ("mfxl1013621", "12")
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
    config = load_config(with_our_header("test.yaml", tmp_path, work_dir), env=ENV)
    header = validate_header(config)
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
    config = load_config(with_our_header("mfx.yaml", tmp_path, work_dir), env=ENV)
    header = validate_header(config)
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
