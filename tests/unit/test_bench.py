"""The benchmarks' pure parts: the table, the README block, baselines built from the kernel's plan, generated Tasks.

Nothing here times anything (benchmarks measure; tests never assert a time).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import catalogue  # noqa: E402
import common  # noqa: E402
import flow_containers  # noqa: E402
import overhead  # noqa: E402
import table  # noqa: E402

# bench/ holds a flows.py: off the path again, or a later `import flows` would find it, not the project's package.
sys.path[:] = [p for p in sys.path if Path(p).resolve() != BENCH]


def _row(**changes: Any) -> Dict[str, Any]:
    row = {
        "id": "P1",
        "measure": "`run Test`",
        "kernel": "300 ms",
        "baseline": "200 ms",
        "ratio": 1.5,
        "target": "<= 1.3x",
        "verdict": "MISSES",
        "load": [1.0, 1.2],
    }
    row.update(changes)
    return row


def test_plain_table_aligns_columns_and_shows_missing_values_as_dashes() -> None:
    text = table.plain([_row(), _row(id="-", ratio=None, verdict="-", baseline=None)])
    assert text.splitlines() == [
        "id  measure     kernel  baseline  ratio  target   verdict",
        "--  ----------  ------  --------  -----  -------  -------",
        "P1  `run Test`  300 ms  200 ms    1.50x  <= 1.3x  MISSES",
        "-   `run Test`  300 ms  -         -      <= 1.3x  -",
    ]


def test_markdown_table_bolds_misses_and_escapes_pipes() -> None:
    text = table.markdown([_row(), _row(verdict="meets", measure="a | b")])
    assert text.splitlines() == [
        "| id | measure | kernel | baseline | ratio | target | verdict |",
        "|---|---|---|---|---|---|---|",
        "| P1 | `run Test` | 300 ms | 200 ms | 1.50x | <= 1.3x | **MISSES** |",
        "| P1 | a \\| b | 300 ms | 200 ms | 1.50x | <= 1.3x | meets |",
    ]


def test_readme_block_replaces_only_what_is_between_the_markers() -> None:
    text = f"before\n{table.BEGIN}\nold table\n{table.END}\nafter\n"
    assert table.replace_block(text, "NEW") == "before\nNEW\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        table.replace_block("no markers here", "NEW")


def test_readme_block_names_the_machine_date_commit_and_load() -> None:
    machine = {
        "date": "2026-12-01T12:00:00+00:00",
        "commit": "abc1234",
        "cpus": 2,
        "platform": "Linux",
        "host": "vm",
        "python": "3.11.7",
        "apptainer": "apptainer version 1.4.5",
        "load_average_1_5_15": [1.5, 1.0, 0.5],
        "load_average_after": [2.5, 1.0, 0.5],
        "mode": "full",
        "took_s": 600,
        "command": "python bench/run.py",
    }
    block = table.readme_block({"machine": machine, "table": [_row()]})
    lines = block.splitlines()
    assert lines[0] == table.BEGIN and lines[-1] == table.END
    assert lines[1] == (
        "Measured 2026-12-01T12:00:00+00:00 at commit `abc1234` on 2 CPUs (Linux; vm), Python 3.11.7,"
        " apptainer version 1.4.5; load average 1.5 at the start, 2.5 at the end; full run of 10.0 min"
        " (`python bench/run.py`)."
    )
    assert "| P1 |" in lines[-2]


def test_not_measured_rows_keep_the_reason() -> None:
    [row] = table.not_measured(["P7"], "MPI", "salloc is not installed here")
    assert row["verdict"] == "not measured" and row["reason"] == "salloc is not installed here"


def test_the_baseline_is_the_kernels_argv_with_the_worker_replaced() -> None:
    plan = SimpleNamespace(
        run_dir="/tmp/lute-abc",
        argv=("srun", "-n", "2", "apptainer", "exec", "--bind", "/tmp/lute-abc:/lute/ipc",
              "--bind", "/tmp/lute-abc/shm:/dev/shm", "img.sandbox", "python3", "-m", "lute_kernel.worker"),
    )  # fmt: skip
    prepared = SimpleNamespace(plan=plan, request={"params": {"a": 1}})
    argv = common.baseline_from_plan(prepared, Path("/tmp/mine"), "CODE")
    assert argv == [
        "srun", "-n", "2", "apptainer", "exec", "--bind", "/tmp/mine:/lute/ipc",
        "--bind", "/tmp/mine/shm:/dev/shm", "img.sandbox", "python3", "-c", "CODE", '{"a": 1}',
    ]  # fmt: skip


def test_standalone_code_imports_the_task_as_the_worker_does() -> None:
    code = common.standalone_code("test", "Test", print_summary=True)
    assert f"import_task({str(common.TASKS)!r}, 'test', 'Test')" in code
    assert "run_standalone(json.loads(sys.argv[1]))" in code
    compile(code, "<bench>", "exec")


def test_profile_lines_are_parsed_into_phases() -> None:
    stderr = (
        "some log line\n"
        "lute-kernel profile: 250 ms in all\n"
        "  host start-up (interpreter, imports)        120.5 ms\n"
        "  Task                                          9.0 ms\n"
    )
    assert overhead.parse_profile(stderr) == (250.0, {"host start-up (interpreter, imports)": 120.5, "Task": 9.0})


@pytest.mark.parametrize(("ratio", "added", "expected"), [(1.2, 50.0, True), (1.2, 61.0, False), (1.31, 10.0, False)])
def test_p1_needs_both_the_ratio_and_the_milliseconds(ratio: float, added: float, expected: bool) -> None:
    assert overhead.meets({"ratio": ratio, "added_ms": added}) is expected


@pytest.mark.parametrize(("ratio", "node_ms", "expected"), [(1.1, 30.0, True), (1.1, 41.0, False), (1.3, 0.0, False)])
def test_p4_needs_both_the_ratio_and_the_per_node_price(ratio: float, node_ms: float, expected: bool) -> None:
    assert flow_containers.meets({"ratio": ratio, "per_node_ms": node_ms}) is expected


def test_generated_task_modules_are_tasks_with_ten_parameters(tmp_path: Path) -> None:
    from lute_kernel.registry import import_task

    folder = catalogue.make_modules(tmp_path / "generated", 2)
    assert sorted(p.name for p in folder.iterdir()) == ["generated_00.py", "generated_01.py"]
    cls = import_task(str(folder), "generated_01", "GeneratedTask01")
    own = set(cls.Parameters.model_fields) - {"lute_config"}
    assert len(own) >= 10
    assert cls.aliases == ("Generated01",)
    assert cls.Parameters.model_fields["n_bins"].default == 100
    edited = catalogue.task_module(1, revision=3)
    assert "param(103," in edited and edited != catalogue.task_module(1)


def test_p4_has_a_warm_row_when_the_warm_kernel_of_flows_was_measured() -> None:
    times = {"median": 5.0}
    result = {
        "steps": 20,
        "flow": times,
        "bare_loop": {"median": 4.5},
        "ratio": 1.6,
        "per_node_ms": 60.0,
        "load": [1.0, 1.0],
    }
    (cold,) = flow_containers.rows(result)
    assert cold["verdict"] == "MISSES" and "warm" not in cold["measure"]
    served = {**result, "served": times, "served_ratio": 1.1, "served_per_node_ms": 30.0}
    cold, warm = flow_containers.rows(served)
    assert "warm kernel (`serve --flows`)" in warm["measure"] and warm["verdict"] == "meets"
    assert warm["ratio"] == 1.1 and "+30 ms/node" in warm["target"]
    assert flow_containers.meets(served, "served_") and not flow_containers.meets(served)


def test_p4_reads_the_steps_breakdown_flow_run_profile_prints() -> None:
    from lute_kernel.profile import steps_report

    printed = steps_report([{"Task": 2.0, "recording": 5.0}, {"Task": 4.0, "recording": 7.0}])
    stderr = "some Prefect line\n" + printed + "\nflow: Completed"
    assert flow_containers.parse_steps_profile(stderr) == {"Task": 3.0, "recording": 6.0}
    assert flow_containers.parse_steps_profile("no profile here") == {}
