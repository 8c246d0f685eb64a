"""FindPeaksSFX / FindPeaksPyAlgos parameters (upstream's), and the pure parts of peak finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
from pydantic import ValidationError

from lute_kernel_tasks._sfx_geometry import parse_geometry, parse_vector, radius_map
from lute_kernel_tasks._sfx_run import upstream_tag
from lute_kernel_tasks.sfx_peaks import FindPeaksPyAlgos, FindPeaksSFX

GEOMETRY = """; two panels side by side, stacked along ss in the data
clen = 0.1
res = 13333.3
p0/min_fs = 0
p0/max_fs = 3
p0/min_ss = 0
p0/max_ss = 1
p0/fs = +1.0x
p0/ss = +1.0y
p0/corner_x = -4
p0/corner_y = 0
p1/min_fs = 0
p1/max_fs = 3
p1/min_ss = 2
p1/max_ss = 3
p1/fs = -1.0x ; rotated 180 degrees
p1/ss = -1.0y
p1/corner_x = 4
p1/corner_y = 0
bad_beamstop/min_x = -1
"""


def sfx(work_dir: Path, **section: Any) -> FindPeaksSFX.Parameters:
    base: Dict[str, Any] = {
        "lute_config": {"experiment": "mfx100848724", "run": 51, "work_dir": str(work_dir)},
        "outdir": f"{work_dir}/peaks",
        "det_name": "jungfrau",
        "event_receiver": "evr0",
        "pv_camera_length": 0.0,
        "algorithm": "PyAlgos",
    }
    return FindPeaksSFX.Parameters.model_validate({**base, **section})


def test_upstream_defaults_and_the_list_file_name(tmp_path: Path) -> None:
    params = sfx(tmp_path, tag="lyso")
    assert params.out_file == f"{tmp_path}/peaks/mfx100848724_51_lyso.list"  # upstream: <exp>_<run>_<tag>.list
    assert params.result_from_params() == params.out_file
    assert (params.min_peaks, params.max_peaks, params.npix_min, params.npix_max) == (2, 2048, 2, 30)
    assert (params.amax_thr, params.atot_thr, params.son_min, params.peak_rank) == (80.0, 120.0, 7.0, 3)
    assert (params.r0, params.dr, params.nsigm, params.n_events, params.psana_version) == (3.0, 2.0, 7.0, 0, 2)
    assert FindPeaksSFX.Parameters.model_fields["algorithm"].default == "Peakfinder8"
    assert FindPeaksSFX.aliases == ("PeakFinderSFX",) and FindPeaksSFX.mpi and FindPeaksSFX.image == "psana2"


@pytest.mark.parametrize("given, kept", [("0.5", 0.5), (0, 0.0), ("MFX:ROB:CONT:POS:Z", "MFX:ROB:CONT:POS:Z")])
def test_camera_length_is_a_number_when_it_reads_as_one(tmp_path: Path, given: Any, kept: Any) -> None:
    value = sfx(tmp_path, pv_camera_length=given).pv_camera_length  # pydantic 1's left-to-right Union
    assert value == kept and type(value) is type(kept)


def test_peakfinder8_needs_a_geometry_file_and_it_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="Peakfinder8 needs geometry_file"):
        sfx(tmp_path, algorithm="Peakfinder8")
    with pytest.raises(ValidationError, match=r"geometry_file\n.*none.geom' does not exist"):
        sfx(tmp_path, algorithm="Peakfinder8_v2", geometry_file=str(tmp_path / "none.geom"))
    geom = tmp_path / "d.geom"
    geom.write_text(GEOMETRY)
    assert sfx(tmp_path, algorithm="Peakfinder8", geometry_file=str(geom)).geometry_file == str(geom)


def test_lcls1_data_and_a_missing_run_are_refused_before_launch(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="run FindPeaksPyAlgos"):
        sfx(tmp_path, psana_version=1)
    with pytest.raises(ValidationError, match="needs the run number"):
        sfx(tmp_path, lute_config={"experiment": "e", "run": "", "work_dir": str(tmp_path)})
    with pytest.raises(ValidationError, match="event_receiver"):
        sfx(tmp_path, event_receiver="evr2")
    with pytest.raises(ValidationError, match="mask_file"):
        sfx(tmp_path, mask_file=str(tmp_path / "mask.h5"))


def test_pyalgos_parameters_as_upstream_test_yaml_writes_them(tmp_path: Path) -> None:
    section = {
        "lute_config": {"experiment": "mfxl1001021", "run": 12, "work_dir": str(tmp_path)},
        "outdir": "",
        "det_name": "Rayonix",
        "event_receiver": "evr0",
        "tag": "red",
        "compression": {"compressor": "sz3", "abs_error": 10.0, "bin_size": 2, "roi_window_size": 9},
    }
    params = FindPeaksPyAlgos.Parameters.model_validate(section)
    assert params.pv_camera_length == "" and params.out_file == "mfxl1001021_12_red.list"
    assert params.compression is not None and params.compression.compressor == "sz3"
    assert FindPeaksPyAlgos.image == "psana1" and FindPeaksPyAlgos.aliases == ("PeakFinderPyAlgos",)
    number = FindPeaksPyAlgos.Parameters.model_validate({**section, "pv_camera_length": 0.117})
    assert number.pv_camera_length == 0.117


@pytest.mark.parametrize("tag, name", [("", ""), ("lyso", "_lyso"), ("_lyso", "_lyso")])
def test_tags_in_file_names(tag: str, name: str) -> None:
    assert upstream_tag(tag) == name


@pytest.mark.parametrize(
    "text, vector",
    [
        ("+1.0x", (1.0, 0.0)),
        ("-y", (0.0, -1.0)),
        ("+0.0012x -0.999999y", (0.0012, -0.999999)),
        ("1e-3x +1y", (0.001, 1.0)),
    ],
)
def test_geometry_vectors(text: str, vector: Any) -> None:
    assert parse_vector(text) == pytest.approx(vector)


def test_radius_map_follows_each_panels_corner_and_directions() -> None:
    panels = parse_geometry(GEOMETRY)
    assert [p.name for p in panels] == ["p0", "p1"]  # bad_* regions are not panels
    radius = radius_map(panels)
    assert radius.shape == (4, 4) and radius.dtype == np.float32
    assert radius[0].tolist() == [4.0, 3.0, 2.0, 1.0]  # x = -4 + fs
    assert radius[2].tolist() == [4.0, 3.0, 2.0, 1.0]  # x = 4 - fs, the panel turned round
    assert radius[1, 0] == pytest.approx(np.hypot(4, 1)) and radius[3, 0] == pytest.approx(np.hypot(4, 1))


def test_geometry_without_panels_or_with_holes_is_an_error() -> None:
    with pytest.raises(ValueError, match="no panel"):
        parse_geometry("clen = 0.1\n")
    with pytest.raises(ValueError, match=r"p0.*corner_x"):
        parse_geometry(
            "p0/min_fs = 0\np0/max_fs = 1\np0/min_ss = 0\np0/max_ss = 1\np0/fs = x\np0/ss = y\np0/corner_y = 0\n"
        )
