"""SubmitSMD and the XSS/XAS/XES analyzers for real, in the psana2 image, on runs made with known physics.

The runs are written by psana's DgramEdit (``tests/data_makers/smd_runs.py``): a delay scan with an
injected difference ring and an emission-line shift after t0, and an energy scan over an absorption
edge. SubmitSMD reduces each run (our producer, smalldata_tools' layout); each analyzer then takes
its ``smd_path`` from SubmitSMD's row for the run (one work_dir per run: the DB's same-run filter is
pending) and its numbers are checked against what was injected. The MPI tests compare 3 producer
ranks and 2 analyzer ranks with one process. Needs the psana2 image (``apptainer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
from conftest import run_cli
from e2e import only_row, rows
from smd_env import (
    EXPERIMENT,
    World,
    config,
    make_world,
    payload_of,
    read_h5,
    run_task,
    smd_section,
)

pytestmark = [pytest.mark.integration, pytest.mark.apptainer]

THRESHOLDS = {"min_Iscat": 10, "min_ipm": 500}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory)


def chain(world: World, root: Path, run: int, sections: Dict[str, Any]) -> Tuple[Path, Path, Dict[str, str]]:
    """A work_dir and config for one run; SubmitSMD already run there."""
    work = root / f"r{run}"
    work.mkdir()
    cfg = config(root / f"r{run}.yaml", work, run, {"SubmitSMD": smd_section(run, world.data, world.truth), **sections})
    env = dict(world.env, TMPDIR=str(root / f"tmp{run}"))
    Path(env["TMPDIR"]).mkdir()
    done = run_task("SmallDataProducer2", cfg, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return work, cfg, env


@pytest.fixture(scope="module")
def time_scan(world: World, tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path, Dict[str, str]]:
    common = {"xss_detname": "epix10k2M", "ipm_var": "ipm_dg2/sum", "thresholds": THRESHOLDS}
    sections = {
        "AnalyzeSmallDataXSS": {**common, "scan_var": ["lxt", "lens_v", "lens_h"]},
        "AnalyzeSmallDataXES": {**common, "xes_detname": "epix_2", "scan_var": ["lxt", "lxt_fast"]},
    }
    return chain(world, tmp_path_factory.mktemp("time-scan"), world.truth["xss"]["run"], sections)


@pytest.fixture(scope="module")
def energy_scan(world: World, tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path, Dict[str, str]]:
    section = {
        "xas_detname": "epix_1",
        "xss_detname": "epix10k2M",
        "ipm_var": "ipm_dg2/sum",
        "scan_var": ["lxt", "lxe_opa", "lxt_fast"],
        "ccm": "epics/ccm_E",
        "ccm_set": "scan/ccm_E_setpoint",
        "thresholds": THRESHOLDS,
    }
    return chain(
        world, tmp_path_factory.mktemp("energy-scan"), world.truth["xas"]["run"], {"AnalyzeSmallDataXAS": section}
    )


def test_submit_smd_writes_the_smalldata_layout(world: World, time_scan: Tuple[Path, Path, Dict[str, str]]) -> None:
    work, _, _ = time_scan
    truth = world.truth["xss"]
    events = len(truth["lxt"]) * truth["events_per_step"]
    row = only_row(work, "SubmitSMD")
    out_file = str(work / "hdf5" / "smalldata" / f"{EXPERIMENT}_Run0020.h5")
    assert row["result.task_status"] == "COMPLETED" and row["result.payload"] == out_file
    assert f"events: {events};" in row["result.summary"] and row["prov.image"] == "psana2"
    assert row["producer"].endswith("/xpp/xppl1001021/results/smalldata_tools/lcls1_producers/smd_producer.py")
    config_file = work / "hdf5" / "smalldata" / "prod_config_xpp_r0020.py"
    assert config_file.is_file() and "getAzIntPyFAIParams" in config_file.read_text()
    found = read_h5(
        world.sif, out_file, ["scan/lxt", "lightStatus/xray", "lightStatus/laser", "ipm_dg2/sum"], world.binds(work)
    )
    shapes = found["shapes"]
    assert shapes["timestamp"] == [events]
    assert shapes["epix10k2M/pyfai_azav"] == [events, 8, 120] and shapes["epix10k2M/pyfai_q"] == [events, 120]
    assert shapes["epix_2/ROI_0_area"] == [events, 60, 30] and shapes["epix_2/ROI_0_sum"] == [events]
    assert shapes["Sums/epix10k2M_calib"] == [1, 200, 200] and shapes["timing/eventcodes"] == [events, 288]
    assert shapes["ebeam/ebeamPhotonEnergy"] == [events] and shapes["UserDataCfg/epix10k2M/pixel_size"] == []
    values = found["values"]
    assert sorted(set(values["scan/lxt"])) == sorted(truth["lxt"])  # every step, every event tagged
    assert values["lightStatus/xray"] == [int(i % 10 != 9) for i in range(events)]  # code 137 missing
    assert values["lightStatus/laser"] == [int(i % 2 == 0) for i in range(events)]  # code 89 drops the laser
    assert found["attrs"]["experiment"] == EXPERIMENT and found["attrs"]["run"] == 20


def test_xss_difference_recovers_the_injected_ring_and_t0(
    world: World, time_scan: Tuple[Path, Path, Dict[str, str]]
) -> None:
    work, cfg, env = time_scan
    done = run_task("SmallDataXSSAnalyzer", cfg, env)
    assert done.returncode == 0, done.stdout + done.stderr
    row = only_row(work, "AnalyzeSmallDataXSS")
    payload = payload_of(row)
    truth = world.truth["xss"]
    assert row["smd_path"] == only_row(work, "SubmitSMD")["result.payload"]  # the DB-derived default
    assert abs(payload["ring_q"] - truth["ring_q"]) < 0.03  # 1/Angstrom; q bins are 0.036 wide
    assert abs(payload["t0"] - truth["t0"]) < 0.1e-12  # delay steps are 0.5 ps
    assert payload["scan_var"] == "lxt" and len(payload["bins"]) == len(truth["lxt"])
    assert "scan_var: lxt;" in row["result.summary"] and "ring_q: 2.4" in row["result.summary"]
    assert len(payload["figures"]) == 2 and all(Path(f).is_file() for f in payload["figures"])
    assert all(Path(f).parent == Path(row["smd_path"]).parent for f in payload["figures"])  # next to the HDF5


def test_xes_projection_peaks_where_the_line_was_injected(
    world: World, time_scan: Tuple[Path, Path, Dict[str, str]]
) -> None:
    work, cfg, env = time_scan
    done = run_task("AnalyzeSmallDataXES", cfg, env)
    assert done.returncode == 0, done.stdout + done.stderr
    payload = payload_of(only_row(work, "AnalyzeSmallDataXES"))
    truth = world.truth["xes"]
    assert abs(payload["line_pixel_laser_off"] - truth["line_row"]) < 0.25
    assert payload["line_pixel_laser_on"] > payload["line_pixel_laser_off"] + 0.2  # the line moves after t0
    summary = only_row(work, "AnalyzeSmallDataXES")["result.summary"]
    assert f"spatial_center: {int(truth['spatial_col'])};" in summary
    assert Path(payload["figures"][0]).is_file()


def test_xas_edge_is_found_where_it_was_injected(world: World, energy_scan: Tuple[Path, Path, Dict[str, str]]) -> None:
    work, cfg, env = energy_scan
    done = run_task("SmallDataXASAnalyzer", cfg, env)
    assert done.returncode == 0, done.stdout + done.stderr
    row = only_row(work, "AnalyzeSmallDataXAS")
    payload = payload_of(row)
    truth = world.truth["xas"]
    assert abs(payload["edge_eV_laser_off"] - truth["edge_eV"]) < 0.3  # energy steps are 1 eV
    assert abs(payload["edge_eV_laser_on"] - payload["edge_eV_laser_off"] - truth["edge_shift"]) < 0.3
    assert "norm: water ring;" in row["result.summary"] and len(payload["energies"]) == len(truth["energies"])


def test_the_default_smd_path_is_the_file_of_the_same_run(
    world: World, energy_scan: Tuple[Path, Path, Dict[str, str]]
) -> None:
    # The energy-scan work_dir holds SubmitSMD of run 21 only: a run-20 analyzer must not take its file.
    work, cfg, env = energy_scan
    other = config(cfg.with_name("other-run.yaml"), work, 20, {"AnalyzeSmallDataXSS": {"ipm_var": "ipm_dg2/sum"}})
    done = run_cli("explain", "AnalyzeSmallDataXSS", "-c", str(other), "--json", env=env)
    assert done.returncode == 2 or f"{EXPERIMENT}_Run0020.h5" in done.stdout, done.stdout


@pytest.mark.mpi
def test_three_producer_ranks_write_the_same_file_as_one(
    world: World, time_scan: Tuple[Path, Path, Dict[str, str]]
) -> None:
    # psana2 in parallel: rank 0 reads the small-data index, rank 1 builds events, rank 2 reduces them.
    work, cfg, env = time_scan
    run = world.truth["xss"]["run"]
    serial_file = rows(work, "SubmitSMD")[0]["result.payload"]
    section = smd_section(run, world.data, world.truth, {"directory": str(work / "mpi")})
    mpi_cfg = config(cfg.with_name("mpi.yaml"), work, run, {"SubmitSMD": section})
    done = run_task("SubmitSMD", mpi_cfg, env, "--launcher", "mpirun", "--ranks", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    newest = rows(work, "SubmitSMD")[-1]
    assert "ranks: 3" in newest["result.summary"] and newest["prov.launcher"] == "mpirun"
    keys = ["timestamp", "epix_2/ROI_0_sum", "ipm_dg2/sum", "scan/lxt", "lightStatus/laser", "epix10k2M/pyfai_azav"]
    serial = read_h5(world.sif, serial_file, keys, world.binds(work))
    parallel = read_h5(world.sif, newest["result.payload"], keys, world.binds(work))
    assert parallel["shapes"] == serial["shapes"]
    assert parallel["values"] == serial["values"]  # the bigdata ranks' rows, gathered in time order


@pytest.mark.mpi
def test_two_analyzer_ranks_give_the_numbers_of_one(world: World, time_scan: Tuple[Path, Path, Dict[str, str]]) -> None:
    work, cfg, env = time_scan
    if not (work / "lute.db").exists() or not any(r["prov.launcher"] == "direct" for r in rows_or_none(work)):
        assert run_task("AnalyzeSmallDataXSS", cfg, env).returncode == 0
    done = run_task("AnalyzeSmallDataXSS", cfg, env, "--launcher", "mpirun", "--ranks", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    found = rows(work, "AnalyzeSmallDataXSS")
    one, two = payload_of(found[0]), payload_of(found[-1])
    assert (found[0]["prov.launcher"], found[-1]["prov.launcher"]) == ("direct", "mpirun")
    assert two["ring_q"] == pytest.approx(one["ring_q"], abs=1e-9) and two["t0"] == pytest.approx(one["t0"], rel=1e-9)
    assert two["bins"] == one["bins"] and "laser_on: " in found[-1]["result.summary"]


def rows_or_none(work: Path) -> list:
    try:
        return rows(work, "AnalyzeSmallDataXSS")
    except Exception:  # no table yet
        return []
