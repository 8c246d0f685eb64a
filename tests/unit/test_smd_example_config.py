"""config/examples/smd.yaml: every section validates (the README points users at it)."""

from __future__ import annotations

from pathlib import Path

from lute_kernel.config import load_config
from lute_kernel.registry import discover
from lute_kernel.validation import validate_header, validate_parameters

REPO = Path(__file__).resolve().parents[2]
REGISTRY = discover([REPO / "tasks"], entry_points=False)


def test_every_section_of_the_example_validates(work_dir: Path) -> None:
    config = load_config(REPO / "config" / "examples" / "smd.yaml", env={"RUN": "30", "LUTE_WORK_DIR": str(work_dir)})
    header = validate_header(config)
    smd_file = work_dir / "hdf5" / "smalldata" / "xppl1001021_Run0030.h5"
    smd_file.parent.mkdir(parents=True)
    smd_file.write_bytes(b"")
    names = config.section_names()
    assert names == [
        "SubmitSMD",
        "AnalyzeSmallDataXSS",
        "AnalyzeSmallDataXAS",
        "AnalyzeSmallDataXES",
        "OptimizeAgBhGeometryExhaustive",
        "BayFAI",
    ]
    found = {name: validate_parameters(REGISTRY.get(name), config, header) for name in names}
    assert found["SubmitSMD"].xtc_dir == f"{work_dir}/xtc" and found["SubmitSMD"].out_file == str(smd_file)
    assert found["OptimizeAgBhGeometryExhaustive"].powder == str(smd_file) == found["BayFAI"].h5
