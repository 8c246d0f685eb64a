"""Every section of upstream's real configs that belongs to the SFX Tasks validates unchanged.

The files (../shared/upstream-configs, reference data, never copied) are read as they are, at site
``s3df`` with its data root pointed at a temporary folder (``$LUTE_DATA_ROOT``): mfx.yaml as shipped
(``work_dir: ""`` is the experiment's scratch folder there, its commented-out run is ``$RUN_NUM``'s,
as upstream's header does); the other two name an S3DF or /tmp work_dir, which becomes a temporary
folder in a copy. The sections themselves are not touched: substitutions (``{{ $EXPERIMENT }}``,
``{{ $LUTE_PATH }}``) come from the environment given to the loader. Sections of Tasks outside
this issue are left to their owners.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import UPSTREAM_CONFIGS

from lute_kernel.config import load_config
from lute_kernel.registry import discover
from lute_kernel.sites import load_site
from lute_kernel.validation import SectionReport, validate_file

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


def upstream(name: str) -> Path:
    source = UPSTREAM_CONFIGS / name
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    return source


def local_copy(name: str, tmp_path: Path, work_dir: Path) -> Path:
    """The file itself when its work_dir is the site's default (mfx.yaml), else a copy with ``work_dir`` set."""
    source = upstream(name)
    text = source.read_text()
    header, sep, rest = text.partition("\n...\n")
    if re.search(r'(?m)^work_dir: ""', header):
        return source
    header, count = re.subn(r"(?m)^work_dir:.*$", f'work_dir: "{work_dir}"', header)
    assert count == 1 and sep
    path = tmp_path / name
    path.write_text(header + sep + rest)
    return path


@pytest.fixture
def env(tmp_path: Path) -> Dict[str, str]:
    lute_path = tmp_path / "lute"
    geometry = lute_path / "tests" / "functional" / "sfx_mfx100848724_r51_crystfel" / "refined_356mm.geom"
    geometry.parent.mkdir(parents=True)
    geometry.write_text("p0/min_fs = 0\np0/max_fs = 1\np0/min_ss = 0\np0/max_ss = 1\n")
    scratch = tmp_path / "ds" / "mfx" / "mfxl1001021" / "scratch"  # S3DF's layout: <root>/<hutch>/<experiment>
    scratch.mkdir(parents=True)
    return {
        "EXPERIMENT": "mfxl1001021",
        "RUN": "12",
        "RUN_NUM": "12_20261122T101500",  # as the eLog sets it: the run, then a stamp
        "LUTE_PATH": str(lute_path),
        "LUTE_DATA_ROOT": str(tmp_path / "ds"),
    }


def validated(path: Path, env: Dict[str, str]) -> Dict[str, SectionReport]:
    config = load_config(path, env=env)
    return {r.section: r for r in validate_file(config, discover(), site=load_site("s3df"), env=env)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sfx_sections_validate_unchanged(name: str, tmp_path: Path, work_dir: Path, env: Dict[str, str]) -> None:
    reports = validated(local_copy(name, tmp_path, work_dir), env)
    assert reports["header"].ok, reports["header"].message
    mine = {section for section in reports if section in SFX_TASKS}
    assert mine == EXPECTED[name]
    failures: List[str] = [f"{s}: {reports[s].message}" for s in sorted(mine) if not reports[s].ok]
    assert failures == []


def test_a_bad_value_in_a_real_looking_section_names_the_section_field_and_line(
    tmp_path: Path, work_dir: Path, env: Dict[str, str]
) -> None:
    text = upstream("mfx.yaml").read_text().replace('event_receiver: "evr0"', 'event_receiver: "evr9"', 1)
    path = tmp_path / "mfx.yaml"
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "evr9" in row)
    report = validated(path, env)["FindPeaksPyAlgos"]
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
