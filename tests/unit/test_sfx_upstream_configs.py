"""Every section of upstream's real configs that belongs to the SFX Tasks validates unchanged.

The files (../shared/upstream-configs, reference data, never copied) are read as they are; only the
header is pointed at this machine: ``work_dir`` (``""`` or an S3DF path there) becomes a temporary
folder and a missing run becomes ``RUN_NUM``'s, as upstream's header does. The sections themselves
are not touched: substitutions (``{{ $EXPERIMENT }}``, ``{{ $LUTE_PATH }}``) come from the
environment given to the loader. Sections of Tasks outside this issue are left to their owners.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import UPSTREAM_CONFIGS

from lute_kernel.config import load_config
from lute_kernel.registry import discover
from lute_kernel.validation import validate_file

SFX_TASKS = {
    "FindPeaksSFX",
    "FindPeaksPyAlgos",
    "IndexCrystFEL",
    "ConcatenateStreamFiles",
    "MergePartialator",
    "CompareHKL",
    "ManipulateHKL",
    "DimpleSolve",
    "RunSHELXC",
}
EXPECTED = {
    "mfx.yaml": {"FindPeaksPyAlgos", "IndexCrystFEL", "MergePartialator", "CompareHKL", "DimpleSolve"},
    "test.yaml": {"FindPeaksPyAlgos", "IndexCrystFEL", "MergePartialator", "CompareHKL", "DimpleSolve"},
    "functional_sfx_crystfel_config.yaml": {
        "FindPeaksSFX", "IndexCrystFEL", "ConcatenateStreamFiles", "MergePartialator", "CompareHKL", "ManipulateHKL",
    },
}  # fmt: skip


def local_copy(name: str, tmp_path: Path, work_dir: Path) -> Path:
    source = UPSTREAM_CONFIGS / name
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    text = source.read_text()
    header, sep, rest = text.partition("\n...\n")
    header, count = re.subn(r"(?m)^work_dir:.*$", f'work_dir: "{work_dir}"', header)
    assert count == 1 and sep
    if not re.search(r"(?m)^run:", header):  # mfx.yaml comments its run out: the eLog's RUN_NUM gives it
        header += '\nrun: "{{ $RUN_NUM }}"'
    path = tmp_path / name
    path.write_text(header + sep + rest)
    return path


@pytest.fixture
def env(tmp_path: Path) -> Dict[str, str]:
    lute_path = tmp_path / "lute"
    geometry = lute_path / "tests" / "functional" / "sfx_mfx100848724_r51_crystfel" / "refined_356mm.geom"
    geometry.parent.mkdir(parents=True)
    geometry.write_text("p0/min_fs = 0\np0/max_fs = 1\np0/min_ss = 0\np0/max_ss = 1\n")
    return {"EXPERIMENT": "mfxl1001021", "RUN": "12", "RUN_NUM": "12", "LUTE_PATH": str(lute_path)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sfx_sections_validate_unchanged(name: str, tmp_path: Path, work_dir: Path, env: Dict[str, str]) -> None:
    config = load_config(local_copy(name, tmp_path, work_dir), env=env)
    reports = {report.section: report for report in validate_file(config, discover())}
    assert reports["header"].ok, reports["header"].message
    mine = {section for section in reports if section in SFX_TASKS}
    assert mine == EXPECTED[name]
    failures: List[str] = [f"{s}: {reports[s].message}" for s in sorted(mine) if not reports[s].ok]
    assert failures == []


def test_a_bad_value_in_a_real_looking_section_names_the_section_field_and_line(
    tmp_path: Path, work_dir: Path, env: Dict[str, str]
) -> None:
    path = local_copy("mfx.yaml", tmp_path, work_dir)
    text = path.read_text().replace('event_receiver: "evr0"', 'event_receiver: "evr9"', 1)
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "evr9" in row)
    config = load_config(path, env=env)
    [report] = [r for r in validate_file(config, discover()) if r.section == "FindPeaksPyAlgos"]
    assert not report.ok
    assert "FindPeaksPyAlgos" in report.message and "event_receiver" in report.message
    assert f"event_receiver (line {line})" in report.message, report.message


def test_the_example_sfx_config_validates(tmp_path: Path, work_dir: Path) -> None:
    from conftest import REPO

    (work_dir / "data").mkdir()
    (work_dir / "data" / "jungfrau.geom").write_text("p0/min_fs = 0\n")
    config = load_config(REPO / "config" / "examples" / "sfx.yaml", env={"LUTE_WORK_DIR": str(work_dir)})
    reports = validate_file(config, discover())
    assert [(r.section, r.ok, r.message) for r in reports if not r.ok] == []
    assert {r.section for r in reports} == {"header", *SFX_TASKS} - {"FindPeaksPyAlgos", "RunSHELXC"}
