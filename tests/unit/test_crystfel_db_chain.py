"""DB-backed defaults across the SFX chain: each Task's empty inputs come from earlier rows of the run.

Rows are seeded the way the executor records them (``record_run``); each Task's section is then as
small as upstream's functional SFX config makes it. Which Task's row and column every default reads
is upstream's (``lute/io/models/sfx_index.py``, ``sfx_merge.py``, ``sfx_solve.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from lute_kernel.db import RunRecord, record_run
from lute_kernel_tasks.ccp4 import DimpleSolve, RunSHELXC
from lute_kernel_tasks.crystfel_index import ConcatenateStreamFiles, IndexCrystFEL
from lute_kernel_tasks.crystfel_merge import CompareHKL, ManipulateHKL, MergePartialator

EXP = "mfx100848724"


def header(work_dir: Path, run: int = 51) -> Dict[str, Any]:
    return {"experiment": EXP, "run": run, "work_dir": str(work_dir), "title": "t", "date": "2026/09/24"}


def seed(work_dir: Path, task: str, parameters: Dict[str, Any], run: int = 51, **changes: Any) -> int:
    fields: Dict[str, Any] = {
        "task_name": task,
        "header": header(work_dir, run),
        "parameters": parameters,
        "task_status": "COMPLETED",
        "summary": "",
        "payload": None,
    }
    fields.update(changes)
    return record_run(work_dir, RunRecord(**fields))


def validate(task: Any, work_dir: Path, section: Dict[str, Any], run: int = 51) -> Any:
    return task.Parameters.model_validate({"lute_config": header(work_dir, run), **section})


def test_the_chain_from_peak_finding_to_phasing(tmp_path: Path) -> None:
    peaks = f"{tmp_path}/peaks/{EXP}_51_lyso.list"
    seed(tmp_path, "FindPeaksSFX", {"out_file": peaks, "tag": "lyso", "outdir": f"{tmp_path}/peaks"})

    index = validate(IndexCrystFEL, tmp_path, {"geometry": "g.geom", "cell_file": "/c/lyso.cell", "nthreads": 4})
    assert index.in_file == peaks
    assert index.out_file == f"{tmp_path}/{EXP}_r0051_lyso.stream"  # <work_dir>/<exp>_r<run:04d>_<tag>.stream
    assert index.result_from_params() == index.out_file
    seed(tmp_path, "IndexCrystFEL", index.task_values())

    concat = validate(ConcatenateStreamFiles, tmp_path, {})
    assert (concat.in_file, concat.tag) == (str(tmp_path), "lyso")
    assert concat.out_file == f"{tmp_path.parent}/lyso.stream"  # next to the folder, as upstream
    seed(tmp_path, "ConcatenateStreamFiles", concat.task_values())

    merge = validate(MergePartialator, tmp_path, {"symmetry": "4/mmm", "nthreads": 4})
    assert (merge.in_file, merge.out_file) == (concat.out_file, f"{tmp_path.parent}/lyso.hkl")
    seed(tmp_path, "MergePartialator", merge.task_values())

    # The functional SFX config gives CompareHKL and ManipulateHKL no input at all.
    compare = validate(CompareHKL, tmp_path, {"cell_file": "/c/lyso_tetragonal.cell"})
    assert compare.in_files == f"{merge.out_file}1 {merge.out_file}2"
    assert compare.symmetry == "4/mmm" and compare.cell_file == "/c/lyso_tetragonal.cell"
    assert compare.shell_file == f"{tmp_path.parent}/lyso_Rsplit_n10.dat"
    assert CompareHKL.build_argv(compare)[1:3] == [f"{merge.out_file}1", f"{merge.out_file}2"]
    assert validate(CompareHKL, tmp_path, {}).cell_file == "/c/lyso.cell"  # IndexCrystFEL's cell_file

    manipulate = validate(ManipulateHKL, tmp_path, {})
    assert (manipulate.in_file, manipulate.out_file) == (merge.out_file, f"{tmp_path.parent}/lyso.mtz")
    assert manipulate.cell_file == "/c/lyso.cell"
    seed(tmp_path, "ManipulateHKL", manipulate.task_values())

    dimple = validate(DimpleSolve, tmp_path, {"pdb": "/m/lyso.pdb"})
    assert (dimple.in_file, dimple.out_dir) == (manipulate.out_file, str(tmp_path.parent))
    assert DimpleSolve.build_argv(dimple)[1:4] == [manipulate.out_file, "/m/lyso.pdb", str(tmp_path.parent)]
    assert dimple.result_from_params() == f"{tmp_path.parent}/final.mtz;{tmp_path.parent}/final.pdb"
    assert validate(RunSHELXC, tmp_path, {}).in_file == f"<{manipulate.out_file}"


def test_explicit_values_win_over_recorded_ones(tmp_path: Path) -> None:
    seed(tmp_path, "FindPeaksSFX", {"out_file": "/recorded.list", "tag": "lyso"})
    index = validate(IndexCrystFEL, tmp_path, {"in_file": "/mine.lst", "out_file": "/mine.stream", "nthreads": 1})
    assert (index.in_file, index.out_file) == ("/mine.lst", "/mine.stream")


def test_older_peak_finders_are_read_when_findpeakssfx_has_no_row(tmp_path: Path) -> None:
    seed(tmp_path, "FindPeaksPsocake", {"outDir": "/cxi", "tag": "red"})
    assert validate(IndexCrystFEL, tmp_path, {"nthreads": 1}).in_file == f"/cxi/{EXP}_0051_red.lst"
    seed(tmp_path, "FindPeaksPyAlgos", {"out_file": "/cxi/pyalgos.list", "tag": "blue"})
    index = validate(IndexCrystFEL, tmp_path, {"nthreads": 1})
    assert index.in_file == "/cxi/pyalgos.list" and index.out_file.endswith(f"{EXP}_r0051_blue.stream")


def test_nothing_recorded_leaves_upstreams_empty_inputs(tmp_path: Path) -> None:
    index = validate(IndexCrystFEL, tmp_path, {"geometry": "", "nthreads": 1})  # test.yaml's section validates
    assert index.in_file == "" and index.out_file == f"{tmp_path}/{EXP}_r0051.stream"
    assert "-i" not in IndexCrystFEL.build_argv(index)
    compare = validate(CompareHKL, tmp_path, {"symmetry": "mmm"})
    assert (compare.in_files, compare.shell_file, compare.cell_file) == ("", "", "")


def test_failed_and_invalidated_rows_are_not_read(tmp_path: Path) -> None:
    seed(tmp_path, "MergePartialator", {"out_file": "/good.hkl", "symmetry": "mmm"})
    seed(tmp_path, "MergePartialator", {"out_file": "/failed.hkl", "symmetry": "422"}, task_status="FAILED")
    seed(tmp_path, "MergePartialator", {"out_file": "/retracted.hkl", "symmetry": "6/mmm"}, valid=False)
    compare = validate(CompareHKL, tmp_path, {})
    assert compare.in_files == "/good.hkl1 /good.hkl2" and compare.symmetry == "mmm"


def test_the_stream_default_needs_a_run_number(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="run number"):
        IndexCrystFEL.Parameters.model_validate(
            {"lute_config": {"experiment": EXP, "run": "", "work_dir": str(tmp_path)}, "nthreads": 1}
        )


def test_a_row_of_another_run_is_not_picked(tmp_path: Path) -> None:
    # Several runs share one work_dir: run 52's rows, recorded later, must not feed run 51's Tasks.
    seed(tmp_path, "FindPeaksSFX", {"out_file": "/r51.list", "tag": "lyso"}, run=51)
    seed(tmp_path, "FindPeaksSFX", {"out_file": "/r52.list", "tag": "lyso"}, run=52)
    seed(tmp_path, "MergePartialator", {"out_file": "/r51.hkl", "symmetry": "mmm"}, run=51)
    seed(tmp_path, "MergePartialator", {"out_file": "/r52.hkl", "symmetry": "422"}, run=52)
    assert validate(IndexCrystFEL, tmp_path, {"nthreads": 1}, run=51).in_file == "/r51.list"
    assert validate(IndexCrystFEL, tmp_path, {"nthreads": 1}, run=52).in_file == "/r52.list"
    compare = validate(CompareHKL, tmp_path, {}, run=51)
    assert (compare.in_files, compare.symmetry) == ("/r51.hkl1 /r51.hkl2", "mmm")


def test_concatenation_joins_the_streams_the_indexer_wrote_and_the_chain_reads_the_result(tmp_path: Path) -> None:
    from lute_kernel.sfx_tasklets import indexamajig_summary_indexing_rate

    streams = tmp_path / "streams"
    (streams / "r0051").mkdir(parents=True)
    parts = {
        streams / f"{EXP}_r0050_lyso.stream": "CrystFEL stream format 2.3\n----- End chunk -----\n",
        streams / "r0051" / f"{EXP}_r0051_lyso.stream": "Cell parameters 7.9 7.9 3.8 nm\n----- End chunk -----\n",
        streams / f"{EXP}_r0051_other.stream": "not this tag\n",
    }
    for path, text in parts.items():
        path.write_text(text)
    seed(tmp_path, "IndexCrystFEL", {"out_file": str(streams / f"{EXP}_r0051_lyso.stream"), "cell_file": "/c"})
    result = ConcatenateStreamFiles.run_standalone({"lute_config": header(tmp_path)})
    joined = tmp_path / "lyso.stream"
    assert result.payload == str(joined) and result.summary == {"Stream files concatenated": "2"}
    assert joined.read_text() == "".join(parts[p] for p in sorted(parts) if "lyso" in p.name)
    assert indexamajig_summary_indexing_rate(str(joined)) == {
        "Number of lattices indexed": "1",
        "Indexing rate": "0.50",
    }


def test_concatenation_with_nothing_to_join_fails_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no \*lyso\*\.stream under"):
        ConcatenateStreamFiles.run_standalone(
            {"lute_config": header(tmp_path), "in_file": str(tmp_path), "tag": "lyso"}
        )
