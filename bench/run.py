"""Run every benchmark (what `just bench` runs), print a table, write bench/results/latest.json.

Benchmarks measure; they never assert (the tests do that). Targets from issue 2:
kernel overhead <= 1.5x a bare run, >= 50 000 small msg/s, >= 500 MB/s for 8 MB arrays.

    python bench/run.py [--runs 15] [--messages 100000] [--arrays 100] [--kernel-arrays 50]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import container  # noqa: E402
import ipc  # noqa: E402
import mpi  # noqa: E402
import overhead  # noqa: E402


def _load_flows_bench() -> Any:
    """bench/flows.py under another name: ``flows`` is the project's package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_flows", HERE / "flows.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flows_bench = _load_flows_bench()

RESULTS = HERE / "results" / "latest.json"


def machine() -> Dict[str, Any]:
    """Where and when the numbers were taken."""
    from lute_kernel import __version__

    commit = subprocess.run(
        ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "lute_kernel": __version__,
        "commit": commit or "unknown",
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],  # other work on the machine skews timings
    }


def table(results: Dict[str, Any]) -> List[Tuple[str, str, str, str]]:
    """Rows of (benchmark, result, target, verdict)."""
    o, i = results["overhead"], results["ipc"]
    small, big, kernel = i["small_messages"], i["big_arrays"], i["through_kernel"]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISS"

    rows = [
        (
            "overhead: run Test / bare python",
            f"{o['ratio']:.2f}x ({o['kernel']['median_s'] * 1e3:.0f} / {o['bare']['median_s'] * 1e3:.0f} ms)",
            f"<= {o['target_ratio']}x",
            verdict(o["ratio"] <= o["target_ratio"]),
        ),
        (
            "ipc: small log messages",
            f"{small['msg_per_s']:,.0f} msg/s",
            f">= {ipc.TARGET_MSG_S:,} msg/s",
            verdict(small["msg_per_s"] >= ipc.TARGET_MSG_S),
        ),
        (
            "ipc: 8 MB float64 arrays",
            f"{big['mb_per_s']:,.0f} MB/s",
            f">= {ipc.TARGET_MB_S} MB/s",
            verdict(big["mb_per_s"] >= ipc.TARGET_MB_S),
        ),
        (
            "kernel: run TestSocket 50 x 8 MB",
            f"{kernel['mb_per_s_task']:,.0f} MB/s (run) / {kernel['mb_per_s_wall']:,.0f} MB/s (command)",
            "-",
            "-",
        ),
    ]
    if "container" in results:
        c = results["container"]
        rows.append(
            (
                "apptainer: run Test / bare exec smoke.sif",
                f"{c['ratio']:.2f}x ({c['kernel']['median_s'] * 1e3:.0f} / {c['bare']['median_s'] * 1e3:.0f} ms)",
                f"<= {c['target_ratio']}x",
                verdict(c["ratio"] <= c["target_ratio"]),
            )
        )
        rows.append(
            (
                "images: no-op rebuild",
                f"{c['noop_rebuild']['median_s'] * 1e3:.0f} ms",
                "< 1 s",
                verdict(c["noop_rebuild"]["median_s"] < 1),
            )
        )
    if "flows" in results:
        f = results["flows"]
        fixed = f["prefect_fixed"]
        rows += [
            (
                f"flows: {f['steps']} sequential no-op steps, flow run / {f['steps']} x run",
                f"{f['ratio']:.2f}x ({f['flow_chain']['median_s']:.1f} / {f['run_loop']['median_s']:.1f} s)",
                f"<= {f['target_ratio']}x",
                verdict(f["ratio"] <= f["target_ratio"]),
            ),
            (
                "flows: Prefect's fixed start-up",
                f"import {fixed['import']['median_s'] * 1e3:.0f} ms + empty flow run"
                f" {fixed['empty_flow_run']['median_s'] * 1e3:.0f} ms",
                "-",
                "-",
            ),
            (
                f"flows: {f['steps']}-wide fan-out (max-parallel CPUs / {f['steps']})",
                f"{f['fan_out_default_parallel']['median_s']:.1f} / {f['fan_out_parallel_20']['median_s']:.1f} s",
                "-",
                "-",
            ),
        ]
    if "mpi" in results:
        m = results["mpi"]
        rows.append(
            (
                "mpi: 2-rank Task via srun / bare srun",
                f"{m['ratio']:.2f}x ({m['kernel']['median_s'] * 1e3:.0f} / {m['bare']['median_s'] * 1e3:.0f} ms)",
                f"<= {m['target_ratio']}x",
                verdict(m["ratio"] <= m["target_ratio"]),
            )
        )
    return rows


def print_table(rows: List[Tuple[str, str, str, str]]) -> None:
    """Print rows as an aligned plain-text table."""
    header = ("benchmark", "result", "target", "")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def main(argv: Sequence[str] = ()) -> int:
    """Run everything, print details then the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="overhead: timed runs of each side (>= 10)")
    parser.add_argument("--messages", type=int, default=100_000, help="ipc: small messages")
    parser.add_argument("--arrays", type=int, default=100, help="ipc: 8 MB arrays over the socket")
    parser.add_argument("--kernel-arrays", type=int, default=50, help="ipc: 8 MB arrays TestSocket sends")
    parser.add_argument("--no-mpi", action="store_true", help="skip the Slurm/MPI benchmark")
    parser.add_argument("--no-containers", action="store_true", help="skip the Apptainer benchmark")
    parser.add_argument("--no-flows", action="store_true", help="skip the Prefect flows benchmark")
    parser.add_argument("--flow-runs", type=int, default=5, help="flows: timed runs of each side (>= 3)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(list(argv) or None)

    results: Dict[str, Any] = {"machine": machine()}
    if results["machine"]["load_average_1_5_15"][0] > 0.5:
        print(f"note: load average {results['machine']['load_average_1_5_15']}: other work skews the timings\n")
    results["overhead"] = overhead.run(max(args.runs, 10))
    overhead.report(results["overhead"])
    print()
    results["ipc"] = ipc.run(args.messages, args.arrays, args.kernel_arrays)
    ipc.report(results["ipc"])
    print()
    if not args.no_containers:
        results["container"] = container.run(max(args.runs, 10))
        container.report(results["container"])
        print()
    if not args.no_containers and not args.no_mpi:
        results["mpi"] = mpi.run(max(args.runs, 10))
        mpi.report(results["mpi"])
        print()
    if not args.no_flows:
        try:
            import prefect  # noqa: F401  - the flows extra
        except ImportError:
            print("flows: skipped (Prefect is not installed: pip install -e .[flows])\n")
        else:
            results["flows"] = flows_bench.run(max(args.flow_runs, 3))
            flows_bench.report(results["flows"])
            print()
    rows = table(results)
    results["table"] = [dict(zip(("benchmark", "result", "target", "verdict"), row)) for row in rows]
    m = results["machine"]
    m["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"lute-kernel {m['lute_kernel']} ({m['commit']}), Python {m['python']}, {m['cpus']} CPUs, {m['date']},"
        f" load {m['load_average_1_5_15'][0]} -> {m['load_average_after'][0]}"
    )
    print_table(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"\nwritten: {args.output.relative_to(Path.cwd()) if args.output.is_relative_to(Path.cwd()) else args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
