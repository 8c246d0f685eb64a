"""The cctbx chain's summaries, parsed from real-format stills_process and cctbx.xfel.merge output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lute_kernel.registry import discover

REPO = Path(__file__).resolve().parents[2]

# dials.stills_process 3.12 debug logs (one per rank): host,image,time,state,event.
RANK0 = """vm,still_00000,2026-12-01T09:21Z23.404,    ,start
vm,still_00000,2026-12-01T09:21Z23.405,    ,spotfind_start
vm,still_00000,2026-12-01T09:21Z24.502,    ,index_start
vm,still_00000,2026-12-01T09:21Z33.124,    ,refine_start
vm,still_00000,2026-12-01T09:21Z33.125,    ,integrate_start
vm,still_00000,2026-12-01T09:21Z33.482,done,integrate_ok_131
vm,still_00002,2026-12-01T09:21Z01.898,    ,start
vm,still_00002,2026-12-01T09:21Z01.898,    ,spotfind_start
vm,still_00002,2026-12-01T09:21Z02.588,    ,index_start
vm,still_00002,2026-12-01T09:21Z05.205,stop,indexing_failed_205
"""
RANK1 = """vm,still_00001,2026-12-01T09:26Z21.426,    ,start
vm,still_00001,2026-12-01T09:26Z21.426,    ,spotfind_start
vm,still_00001,2026-12-01T09:26Z23.619,    ,index_start
vm,still_00001,2026-12-01T09:26Z36.313,    ,refine_start
vm,still_00001,2026-12-01T09:26Z36.313,    ,integrate_start
vm,still_00001,2026-12-01T09:26Z36.826,done,integrate_ok_199
vm,still_00003,2026-12-01T09:26Z36.830,    ,start
vm,still_00003,2026-12-01T09:26Z36.830,    ,spotfind_start
vm,still_00003,2026-12-01T09:26Z37.100,stop,not_enough_spots_4
"""

# cctbx.xfel.merge 2022.9 main log, cut to the parts the summary reads (and to the first columns) from
# a real merge of 50 stills.
MAIN_LOG = """STEP 1: Read experiments and data
Experiments: (total,min,max): 50, 50, 50
Images:      (total,min,max): 50, 50, 50
Reflections: (total,min,max): 8017, 8017, 8017

STEP 9: Postrefinement
Total experiments rejected due to ValueError('< 3 near-fulls after refinement'): 1
Total experiments accepted: 49

                     Intensity Statistics (odd accepted experiments)
All                      [178/2021]  8.81   0.20   2.29    407      178      58504     2.489
                     Intensity Statistics (all accepted experiments)

Total reflections (I > 0.0): \t\t1912
----------------------------------------------------------------------------------------------------
Bin  Resolution Range  Completeness   %   multi> multi> n_meas asu_m_meas   <I>    <I/sig(I)>
  1 -1.0000 -  8.1432       [76/96] 79.17   2.59   3.28    249       76     120297     2.992
All                      [883/2021] 43.69   1.23   2.80   2476      883      25179     2.085
----------------------------------------------------------------------------------------------------
C.C. iso is 48.1% on 883 indices
C.C. int is 95.8% on 90 indices
R factors Riso = 94.0%, Rint = 33.4%
"""


@pytest.fixture(scope="module")
def logs() -> Any:
    index_module = discover([REPO / "tasks"], entry_points=False).get("IndexCCTBXXFEL").cls.__module__
    package = index_module.rsplit(".", 1)[0]
    import importlib

    return importlib.import_module(f"{package}._cctbx_logs")


def test_indexing_counts_over_ranks(logs: Any) -> None:
    assert logs.indexing_counts([RANK0, RANK1]) == {
        "images": 4,
        "indexed": 2,
        "integrated": 2,
        "indexing_rate": 0.5,
        "integrated_reflections": 330,
    }


def test_a_rerun_counts_only_its_own_session(logs: Any) -> None:
    # stills_process appends to the debug log; each run starts after an empty line.
    assert logs.indexing_counts([RANK1 + "\n" + RANK0])["images"] == 2


def test_a_malformed_event_is_not_counted(logs: Any) -> None:
    assert logs.indexing_counts(["h,a,t,done,integrate_ok_x\nh,a,t,,refine_start\n"])["integrated"] == 0


def test_no_log_lines_is_a_zero_rate(logs: Any) -> None:
    assert logs.indexing_counts([""]) == {
        "images": 0,
        "indexed": 0,
        "integrated": 0,
        "indexing_rate": 0.0,
        "integrated_reflections": 0,
    }


def test_merging_statistics(logs: Any) -> None:
    assert logs.merging_statistics(MAIN_LOG) == {
        "experiments": 50,
        "experiments_merged": 49,
        "unique": 883,
        "possible": 2021,
        "completeness": 0.4369,
        "multiplicity": 2.8,
        "cc_ref": 0.481,
        "cc_ref_reflections": 883,
        "cc_half": 0.958,
        "cc_half_reflections": 90,
    }


def test_merging_statistics_of_a_merge_without_reference_or_postrefinement(logs: Any) -> None:
    text = MAIN_LOG.replace("C.C. iso is 48.1% on 883 indices\n", "").replace("Total experiments accepted: 49\n", "")
    stats = logs.merging_statistics(text)
    assert "cc_ref" not in stats and "experiments_merged" not in stats and stats["cc_half"] == 0.958


def test_phil_value_reads_a_users_phil_file(logs: Any) -> None:
    text = "output {\n  output_dir = /w/idx\n  prefix = run7\n}\n"
    assert (logs.phil_value(text, "output_dir"), logs.phil_value(text, "prefix"), logs.phil_value(text, "x")) == (
        "/w/idx",
        "run7",
        None,
    )


def test_indexing_summary_tasklet_reads_the_output_folder(logs: Any, tmp_path: Path) -> None:
    (tmp_path / "debug").mkdir()
    (tmp_path / "debug" / "debug_0.txt").write_text(RANK0)
    (tmp_path / "debug" / "debug_1.txt").write_text(RANK1)
    assert logs.indexing_summary({"output_output_dir": str(tmp_path)}, "")["indexing_rate"] == 0.5
    own = tmp_path / "own.phil"
    own.write_text(f"output {{\n  output_dir = {tmp_path}\n}}\n")
    assert logs.indexing_summary(None, str(own))["indexed"] == 2  # the user's own phil file


def test_indexing_summary_fails_when_nothing_was_processed(logs: Any, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no debug log"):
        logs.indexing_summary({"output_output_dir": str(tmp_path)}, "")


def test_merging_summary_tasklet_reads_the_main_log(logs: Any, tmp_path: Path) -> None:
    (tmp_path / "iobs_main.log").write_text(MAIN_LOG)
    assert logs.merging_summary({"output_output_dir": str(tmp_path), "output_prefix": ""}, "")["completeness"] == 0.4369
    with pytest.raises(RuntimeError, match="no main log"):
        logs.merging_summary({"output_output_dir": str(tmp_path), "output_prefix": "run7"}, "")
    (tmp_path / "iobs_main.log").write_text("STEP 1: Read experiments and data\n")
    with pytest.raises(RuntimeError, match="the merge stopped early"):
        logs.merging_summary({"output_output_dir": str(tmp_path)}, "")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_arbitrary_text_never_crashes_the_parsers(logs: Any, text: str) -> None:
    counts = logs.indexing_counts([text])
    assert 0 <= counts["indexed"] <= counts["images"]
    logs.merging_statistics(text)
