"""Exact argv of every CrystFEL/CCP4 third-party Task: flags, = forms, renamed flags, positionals, switches."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest

from lute_kernel_tasks.ccp4 import STDIN_FROM, DimpleSolve, RunSHELXC
from lute_kernel_tasks.crystfel_index import IndexCrystFEL
from lute_kernel_tasks.crystfel_merge import CompareHKL, ManipulateHKL, MergePartialator


def header(work_dir: Path, **changes: Any) -> Dict[str, Any]:
    return {"experiment": "mfxl1001021", "run": 12, "work_dir": str(work_dir), **changes}


def argv(task: Any, work_dir: Path, section: Dict[str, Any]) -> List[str]:
    params = task.Parameters.model_validate({"lute_config": header(work_dir), **section})
    return task.build_argv(params)


def test_indexamajig_mfx_section(tmp_path: Path) -> None:
    # mfx.yaml's section, with the input and thread count a DB/host would otherwise fill in.
    section = {
        "in_file": "/data/peaks/mfxl1001021_12_lyso.list",
        "geometry": "/geom.geom",
        "indexing": "mosflm",
        "int_radius": "3,4,5",
        "tolerance": "5,5,5,1.5",
        "multi": True,
        "profile": True,
        "no_revalidate": True,
        "cell_file": "/path/to/cell.cell",
        "peaks": "cxi",
        "nthreads": 63,
    }
    assert argv(IndexCrystFEL, tmp_path, section) == [
        "/opt/crystfel/bin/indexamajig",
        "-i", "/data/peaks/mfxl1001021_12_lyso.list",
        "-o", f"{tmp_path}/mfxl1001021_r0012.stream",
        "--peaks=cxi",
        "-g", "/geom.geom",
        "-j", "63",
        "--profile",
        "--wait-for-file=0",
        "--indexing=mosflm",
        "-p", "/path/to/cell.cell",
        "--tolerance=5,5,5,1.5",
        "--multi",
        "--no-revalidate",
        "--integration=rings-nocen",
        "--fix-divergence=0.0",
        "--int-radius=3,4,5",
        "--int-diag=none",
        "--push-res=infinity",
    ]  # fmt: skip


def test_indexamajig_renamed_long_options_and_fixed_upstream_slips(tmp_path: Path) -> None:
    section = {
        "in_file": "in.lst",
        "out_file": "out.stream",
        "geometry": "g.geom",
        "nthreads": 2,
        "zmq_input": "tcp://127.0.0.1:5555",
        "xgandalf_sampling_pitch": 6,
        "xgandalf_fast_execution": True,
        "no_non_hits_in_stream": True,
        "prefix": "/data/",  # upstream renames it --asapo-stream; indexamajig's option is --prefix
        "copy_hheader": "/LCLS/photon_energy_eV",  # upstream: --copy-hheader; indexamajig: --copy-header
        "wait_for_file": -1,
        "fix_divergence": None,
        "integration": "rings-grad",
    }
    got = argv(IndexCrystFEL, tmp_path, section)
    assert got[:8] == [
        "/opt/crystfel/bin/indexamajig",
        "-i",
        "in.lst",
        "-o",
        "out.stream",
        "-g",
        "g.geom",
        "--zmq-input=tcp://127.0.0.1:5555",
    ]
    assert got[8:10] == ["--prefix=/data/", "-j"]  # declaration order, as upstream
    assert "--zmq-input=tcp://127.0.0.1:5555" in got and "--prefix=/data/" in got
    assert "--copy-header=/LCLS/photon_energy_eV" in got and "--wait-for-file=-1" in got
    assert "--xgandalf-sampling-pitch=6" in got and "--xgandalf-fast-execution" in got
    assert "--no-non-hits-in-stream" in got and "--integration=rings-grad" in got
    assert not any(arg.startswith("--fix-divergence") for arg in got)  # None: omitted
    assert not any(arg.startswith("--asapo") or arg == "--basename" for arg in got)  # unset / False


def test_nthreads_defaults_to_the_jobs_cpus_minus_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_NPROCS", "73")
    got = argv(IndexCrystFEL, tmp_path, {"in_file": "a.lst"})
    assert got[got.index("-j") + 1] == "72"
    monkeypatch.setenv("SLURM_NPROCS", "1")
    got = argv(MergePartialator, tmp_path, {"in_file": "a.stream", "symmetry": "mmm"})
    assert got[got.index("-j") + 1] == "1"


def test_partialator(tmp_path: Path) -> None:
    section = {"in_file": "/w/lyso_all.stream", "symmetry": "4/mmm_uac", "niter": 1, "nthreads": 8, "no_pr": True}
    assert argv(MergePartialator, tmp_path, section) == [
        "/opt/crystfel/bin/partialator",
        "-i", "/w/lyso_all.stream",
        "-o", "/w/lyso_all.hkl",
        "--symmetry=4/mmm_uac",
        "-n", "1",
        "--no-pr",
        "--model=unity",
        "-j", "8",
        "--min-measurements=2",
        "--start-after=0",
        "--stop-after=0",
        "--max-rel-B=100.0",
    ]  # fmt: skip


def test_partialator_without_input_writes_upstreams_default_name(tmp_path: Path) -> None:
    got = argv(MergePartialator, tmp_path, {"symmetry": "mmm", "nthreads": 1, "set_symmetry": "mmm"})
    assert got[1:3] == ["-o", "partialator.hkl"] and "-w" in got and got[got.index("-w") + 1] == "mmm"


def test_compare_hkl_splits_its_two_files_into_two_positionals(tmp_path: Path) -> None:
    section = {
        "in_files": "/w/lyso.hkl1 /w/lyso.hkl2",
        "symmetry": "4/mmm",
        "cell_file": "/w/lyso.cell",
        "fom": "CCstar",
        "nshells": 20,
        "shell_file": "/w/lyso_CCstar_n20.dat",
        "sigma_cutoff": "-infinity",
        "highres": 2.1,
        "ignore_negs": True,
    }
    assert argv(CompareHKL, tmp_path, section) == [
        "/opt/crystfel/bin/compare_hkl",
        "/w/lyso.hkl1", "/w/lyso.hkl2",
        "--symmetry=4/mmm",
        "-p", "/w/lyso.cell",
        "--fom=CCstar",
        "--nshells=20",
        "--shell-file=/w/lyso_CCstar_n20.dat",
        "--ignore-negs",
        "--sigma-cutoff=-infinity",
        "--highres=2.1",
    ]  # fmt: skip


def test_compare_hkl_takes_a_list_too(tmp_path: Path) -> None:
    got = argv(CompareHKL, tmp_path, {"in_files": ["a.hkl1", "b.hkl2"], "symmetry": "mmm"})
    assert got[:4] == ["/opt/crystfel/bin/compare_hkl", "a.hkl1", "b.hkl2", "--symmetry=mmm"]


def test_get_hkl(tmp_path: Path) -> None:
    section = {"in_file": "/w/lyso.hkl", "out_file": "/w/lyso.mtz", "cell_file": "/w/lyso.cell", "highres": 1.8}
    assert argv(ManipulateHKL, tmp_path, section) == [
        "/opt/crystfel/bin/get_hkl", "-i", "/w/lyso.hkl", "-o", "/w/lyso.mtz", "-p", "/w/lyso.cell",
        "--output-format=mtz", "--highres=1.8",
    ]  # fmt: skip
    got = argv(ManipulateHKL, tmp_path, {"in_file": "a.hkl", "output_format": "xds", "poisson": True, "expand": "mmm"})
    assert got[-3:] == ["--output-format=xds", "--expand=mmm", "--poisson"]


def test_dimple_positionals_then_space_separated_options(tmp_path: Path) -> None:
    section = {
        "in_file": "/w/lyso.mtz",
        "pdb": "/w/model.pdb",
        "out_dir": "/w/dimple",
        "slow": True,
        "img_format": "png",
        "mr_num": 2,
        "lim_resolution": 1.9,
    }
    assert argv(DimpleSolve, tmp_path, section) == [
        "/opt/ccp4/bin/dimple",
        "/w/lyso.mtz", "/w/model.pdb", "/w/dimple",
        "--mr-when-r", "0.4",
        "--slow",
        "--hklout", "final.mtz",
        "--xyzout", "final.pdb",
        "-f", "png",
        "--reso", "1.9",
        "--mr-num", "2",
    ]  # fmt: skip
    params = DimpleSolve.Parameters.model_validate({"lute_config": header(tmp_path), **section})
    assert params.result_from_params() == "/w/dimple/final.mtz;/w/dimple/final.pdb"


def test_shelxc_reads_its_input_on_stdin_through_stdin_from(tmp_path: Path) -> None:
    params = RunSHELXC.Parameters.model_validate({"lute_config": header(tmp_path), "in_file": "/w/lyso.xds"})
    assert params.in_file == "</w/lyso.xds"  # upstream's recorded form
    assert RunSHELXC.build_argv(params) == [str(STDIN_FROM), "/w/lyso.xds", "/opt/ccp4/bin/shelxc", "xx"]
    again = RunSHELXC.Parameters.model_validate({"lute_config": header(tmp_path), "in_file": "</w/lyso.xds"})
    assert again.in_file == "</w/lyso.xds"


def test_shelxc_without_any_input_is_an_error_naming_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no valid ManipulateHKL output recorded"):
        RunSHELXC.Parameters.model_validate({"lute_config": header(tmp_path)})


def test_stdin_from_feeds_the_file_to_the_program(tmp_path: Path) -> None:
    import subprocess

    data = tmp_path / "in.txt"
    data.write_text("reflections\n")
    done = subprocess.run([str(STDIN_FROM), str(data), "cat"], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "reflections\n")
    missing = subprocess.run(
        [str(STDIN_FROM), str(tmp_path / "nope"), "cat"], capture_output=True, text=True, timeout=30
    )
    assert missing.returncode == 1 and "cannot open" in missing.stderr


def test_unknown_keys_and_bad_types_are_errors(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra"):
        argv(IndexCrystFEL, tmp_path, {"in_file": "a", "indexamajig_typo": 1})
    with pytest.raises(ValidationError, match="symmetry"):
        argv(MergePartialator, tmp_path, {"in_file": "a"})  # upstream: required
    with pytest.raises(ValidationError):
        argv(IndexCrystFEL, tmp_path, {"in_file": "a", "wait_for_file": -2})


EXPLAINED = {
    "IndexCrystFEL": ({"in_file": "/p/x.lst", "geometry": "/g.geom", "nthreads": 3, "peaks": "cxi"}, "CrystFELIndexer"),
    "MergePartialator": ({"in_file": "/w/a.stream", "symmetry": "mmm", "nthreads": 3}, "PartialatorMerger"),
    "CompareHKL": ({"in_files": "/w/a.hkl1 /w/a.hkl2", "symmetry": "mmm"}, "HKLComparer"),
    "ManipulateHKL": ({"in_file": "/w/a.hkl"}, "HKLManipulator"),
    "DimpleSolve": ({"in_file": "/w/a.mtz", "pdb": "/m.pdb", "out_dir": "/w/d"}, "DimpleSolver"),
    "RunSHELXC": ({"in_file": "/w/a.xds"}, "SHELXCRunner"),
}


@pytest.mark.parametrize("task", sorted(EXPLAINED))
def test_explain_shows_the_exact_argv_under_both_names(task: str, make_config: Any) -> None:
    from lute_kernel.api import explain, prepare
    from lute_kernel.registry import discover

    section, alias = EXPLAINED[task]
    config = make_config({task: section}, experiment="mfxl1001021", run=12)
    registry = discover()
    spec = registry.get(task)
    expected = spec.cls.build_argv(prepare(task, config, registry=registry).params)
    for name in (task, alias):
        shown = explain(prepare(name, config, registry=registry, runtime="local"))
        assert (shown["task"], shown["kind"], shown["argv"]) == (task, "binary", expected)
    assert expected[0].startswith("/opt/") or expected[0] == str(STDIN_FROM)  # the image's programs
