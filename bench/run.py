"""Every benchmark of issue 11 in one run (what `just bench` runs): the table of targets, bench/results/latest.json.

P1 `run Test` local vs bare Python (overhead.py); P2 `run Test --runtime apptainer` vs the same
`apptainer exec` (container.py); P3 IPC msg/s and MB/s (ipc.py); P4 a 20-node flow in containers
vs 20 bare containers (flow_containers.py; flows.py's local-runtime row beside it, against the
same Prefect server); P7 2-rank MPI Task via srun vs bare srun (mpi.py); P8 40 vs 8 Task modules,
`--help` and `tasks` (catalogue.py); P9 SmallDataPsana2 events/s vs the same psana code
(psana2_rate.py); and mpi_shm.py's bandwidth line. Each compares its sides interleaved, with
medians and the load average; a benchmark that fails becomes a "not measured" row and the run goes
on. Benchmarks measure; they never assert. `--readme` then rewrites the README's table
(bench/table.py).

    python bench/run.py [--quick] [--only P1,P3] [--readme]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalogue  # noqa: E402
import container  # noqa: E402
import flow_containers  # noqa: E402
import ipc  # noqa: E402
import mpi  # noqa: E402
import mpi_shm  # noqa: E402
import overhead  # noqa: E402
import psana2_rate  # noqa: E402
import table  # noqa: E402
from common import bench_flows, load, precompile  # noqa: E402

RESULTS = HERE / "results" / "latest.json"
SETTINGS: Dict[str, Dict[str, Dict[str, int]]] = {
    "full": {
        "P1": {"runs": 15, "profile_runs": 5},
        "P8": {"runs": 15, "edits": 5},
        "P3": {"messages": 100_000, "arrays": 100, "kernel_arrays": 50, "repeats": 3},
        "P2": {"runs": 15, "profile_runs": 5},
        "P7": {"runs": 10, "profile_runs": 3},
        "P9": {"runs": 5, "events": 40_000},
        "shm": {"runs": 5},
        "P4": {"runs": 5},
        "flows_local": {"runs": 3},
    },
    "quick": {
        "P1": {"runs": 5, "profile_runs": 2},
        "P8": {"runs": 5, "edits": 2},
        "P3": {"messages": 20_000, "arrays": 30, "kernel_arrays": 10, "repeats": 1},
        "P2": {"runs": 5, "profile_runs": 2},
        "P7": {"runs": 3, "profile_runs": 1},
        "P9": {"runs": 1, "events": 10_000},
        "shm": {"runs": 2},
        "P4": {"runs": 1},
        "flows_local": {"runs": 1},
    },
}
NEEDS = {"P2": "apptainer", "P7": "salloc", "P9": "salloc", "shm": "mpirun", "P4": "apptainer"}
MEASURES = {
    "P1": "`run Test`, local runtime",
    "P2": "`run Test --runtime apptainer`",
    "P3": "IPC messages and arrays",
    "P4": "20-node flow, containers",
    "P7": "2-rank MPI Task, srun, containers",
    "P8": "40 Task modules on the path",
    "P9": "SmallDataPsana2 events/s",
    "shm": "MPI intra-node bandwidth",
    "flows_local": "20-node flow, local runtime",
}


def machine(argv: Sequence[str], mode: str) -> Dict[str, Any]:
    """Where and when the numbers were taken."""
    from lute_kernel import __version__

    def output(*cmd: str) -> str:
        try:
            return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "apptainer": output("apptainer", "--version") or "no apptainer",
        "lute_kernel": __version__,
        "commit": output("git", "-C", str(HERE.parent), "describe", "--always", "--dirty") or "unknown",
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "mode": mode,
        "command": " ".join(["python bench/run.py", *argv]),
    }


def _flows(settings: Dict[str, Dict[str, int]], wanted: Sequence[str]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """P4 and the local-runtime flow row, against one Prefect server."""
    results: Dict[str, Any] = {}
    rows: List[Dict[str, Any]] = []
    flows = bench_flows()
    with tempfile.TemporaryDirectory(prefix="lute-bench-flows-") as temp, flows.prefect_server(Path(temp)) as env:
        folder = Path(temp)
        if "P4" in wanted:
            results["P4"] = flow_containers.run_in(env, folder, **settings["P4"])
            flow_containers.report(results["P4"])
            rows += flow_containers.rows(results["P4"])
        if "flows_local" in wanted:
            results["flows_local"] = flows.run_in(env, folder, **settings["flows_local"])
            flows.report(results["flows_local"])
            rows += flows.rows(results["flows_local"])
    return results, rows


def benchmarks(settings: Dict[str, Dict[str, int]]) -> Dict[str, Tuple[Callable[..., Any], Any, Any]]:
    """Each benchmark's (run, rows, report), in the order they run."""
    return {
        "P1": (overhead.run, overhead.rows, overhead.report),
        "P8": (catalogue.run, catalogue.rows, catalogue.report),
        "P3": (ipc.run, ipc.rows, ipc.report),
        "P2": (container.run, container.rows, container.report),
        "P7": (mpi.run, mpi.rows, mpi.report),
        "P9": (psana2_rate.run, psana2_rate.rows, psana2_rate.report),
        "shm": (mpi_shm.run, mpi_shm.rows, mpi_shm.report),
    }


def _missing_tool(name: str) -> str:
    from shutil import which

    tool = NEEDS.get(name)
    return f"{tool} is not installed here" if tool and not which(tool) else ""


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmarks, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: fewer repeats, smaller counts (~5 min)")
    parser.add_argument("--only", default="", help="comma-separated ids: P1,P2,P3,P4,P7,P8,P9,shm,flows_local")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--readme", action="store_true", help="then rewrite the README's table from the JSON")
    args = parser.parse_args(list(argv))
    mode = "quick" if args.quick else "full"
    settings = SETTINGS[mode]
    wanted = [w.strip() for w in args.only.split(",") if w.strip()] or list(settings)
    start = time.monotonic()
    results: Dict[str, Any] = {"machine": machine(argv, mode)}
    results["machine"]["bytecode"] = precompile()
    print(f"lute-kernel benchmarks ({mode}): load average {results['machine']['load_average_1_5_15']}\n", flush=True)
    rows: List[Dict[str, Any]] = []
    for name, (run, to_rows, report) in benchmarks(settings).items():
        if name not in wanted:
            continue
        missing = _missing_tool(name)
        if missing:
            rows += table.not_measured([name], MEASURES[name], missing)
            continue
        try:
            results[name] = run(**settings[name])
            report(results[name])
            rows += to_rows(results[name])
        except Exception as exc:  # a failed benchmark is a row that says so; the others still run
            traceback.print_exc()
            rows += table.not_measured([name], MEASURES[name], f"{type(exc).__name__}: {str(exc)[:300]}")
        print(flush=True)
    flow_ids = [w for w in ("P4", "flows_local") if w in wanted]
    if flow_ids:
        try:
            found, flow_rows = _flows(settings, flow_ids)
            results.update(found)
            rows += flow_rows
        except Exception as exc:
            traceback.print_exc()
            rows += table.not_measured(flow_ids, "flows", f"{type(exc).__name__}: {str(exc)[:300]}")
        print()
    order = ["P1", "P2", "P3", "P4", "P7", "P8", "P9", "-"]
    rows.sort(key=lambda r: order.index(r["id"]) if r["id"] in order else len(order))
    results["table"] = rows
    m = results["machine"]
    m["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    m["took_s"] = round(time.monotonic() - start, 1)
    print(
        f"lute-kernel {m['lute_kernel']} ({m['commit']}), Python {m['python']}, {m['cpus']} CPUs, {m['date']};"
        f" load {m['load_average_1_5_15'][0]} -> {load()}; {m['took_s'] / 60:.1f} min"
    )
    print(table.plain(rows))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {args.output}")
    if args.readme:
        table.update_readme(args.output, HERE.parent / "README.md")
        print("README.md: benchmark table regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
