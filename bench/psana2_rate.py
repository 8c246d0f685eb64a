"""P9: SmallDataPsana2 events/s under MPI in the psana2 image, through the kernel vs the same psana code without it.

"2 ranks" for psana2: its parallel mode refuses fewer than 3 MPI ranks (rank 0 reads the
small-data index, rank 1 builds events, the rest — the bigdata ranks — process them; ``--ranks
2`` fails with "Too few MPI cores"). So both sides run psana2's layout with 2 event-processing
ranks: 4 MPI ranks (``--psana-ranks``), under srun inside one ``salloc -n 5 --overcommit``.

The run is written first by psana's own ``xtcwriter`` and ``smdwriter`` inside the image (as
tests/integration/test_psana2.py does), with enough events that start-up does not dominate.
  kernel: ``lute-kernel run SmallDataPsana2 --runtime apptainer --ranks 4``;
  bare:   the kernel's own launch argv (srun, apptainer flags, rank.env, shared /dev/shm, binds,
          image), the worker replaced by ``python3 -c`` running ``SmallDataPsana2.run_standalone``
          with the parameters the kernel validated.
Interleaved after a warm-up each (a 200-event config). The verdict is events per second of the
whole command (what users wait for); the Task's own rate (``rate_hz`` of its summary, from the
DataSource opening to the file written) is reported beside it.

    python bench/psana2_rate.py [--runs 3] [--events 40000] [--psana-ranks 4]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULT_MARK,
    baseline_from_plan,
    bench_env,
    image_info,
    in_allocation,
    load,
    lute_kernel_cmd,
    make_run_dir,
    prepared_request,
    run_checked,
    standalone_code,
    write_config,
)

TARGET_RATIO = 0.95
TASK = "SmallDataPsana2"
RUN_NAME = "xpptut15-r0014-s000-c000"
_KERNEL_RATE = re.compile(r"rate_hz: ([0-9.]+)")
_EVENTS = re.compile(r"events: ([0-9]+)")


def write_run(folder: Path, events: int) -> Path:
    """Write run 14 of xpptut15 with psana's xtcwriter and its small-data index with smdwriter, in the image."""
    image = image_info("psana2")["runnable"]
    xtc = folder / "xtc"
    (xtc / "smalldata").mkdir(parents=True)
    data, index = xtc / f"{RUN_NAME}.xtc2", xtc / "smalldata" / f"{RUN_NAME}.smd.xtc2"
    exec_ = ["apptainer", "exec", "--containall", "--bind", str(folder), "--pwd", str(xtc), image]
    env = bench_env()
    run_checked([*exec_, "xtcwriter", "-f", str(data), "-n", str(events)], env)
    run_checked([*exec_, "smdwriter", "-f", str(data), "-o", str(index)], env)
    return xtc


def _sections(xtc: Path, max_events: Any = None) -> Dict[str, Any]:
    section: Dict[str, Any] = {"xtc_dir": str(xtc), "detector": "xppcspad", "roi": [[0, 1], [0, 3], [0, 6]]}
    if max_events:
        section["max_events"] = max_events
    return {TASK: section}


def _one(argv: List[str], env: Dict[str, str], kernel: bool) -> Dict[str, float]:
    start = time.perf_counter()
    done = run_checked(argv, env)
    wall = time.perf_counter() - start
    if kernel:
        text = done.stdout + done.stderr
        rate, events = float(_KERNEL_RATE.findall(text)[-1]), int(_EVENTS.findall(text)[-1])
    else:
        summary = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
        rate, events = float(summary["rate_hz"]), int(summary["events"])
    return {"wall_s": wall, "events": events, "events_per_s": events / wall, "task_rate_hz": rate}


def inside(runs: int, events: int, ranks: int) -> Dict[str, Any]:
    """Measure inside the current allocation."""
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="lute-bench-p9-") as tmp:
        folder = Path(tmp)
        xtc = write_run(folder, events)
        commands: Dict[str, Dict[str, List[str]]] = {}
        for label, max_events in (("warm", 200), ("timed", None)):
            config = write_config(folder, _sections(xtc, max_events), name=f"{label}.yaml")
            prepared = prepared_request(TASK, config, runtime="apptainer", ranks=ranks)
            (folder / label).mkdir()
            run_dir = make_run_dir(folder / label, prepared)
            code = standalone_code("psana2", TASK, print_summary=True)
            commands[label] = {
                "kernel": [
                    *lute_kernel_cmd(),
                    "run",
                    TASK,
                    "-c",
                    str(config),
                    "--runtime",
                    "apptainer",
                    "--ranks",
                    str(ranks),
                ],
                "bare": baseline_from_plan(prepared, run_dir, code),
            }
        before = load()
        for name, argv in commands["warm"].items():
            _one(argv, env, name == "kernel")
        samples: Dict[str, List[Dict[str, float]]] = {"kernel": [], "bare": []}
        for _ in range(runs):
            for name, argv in commands["timed"].items():
                samples[name].append(_one(argv, env, name == "kernel"))
    result: Dict[str, Any] = {"load": [before, load()], "runs": runs, "events": events, "ranks": ranks}
    for name, values in samples.items():
        result[name] = {
            key: statistics.median(v[key] for v in values) for key in ("wall_s", "events_per_s", "task_rate_hz")
        }
        result[name]["samples"] = values
    result["ratio"] = result["kernel"]["events_per_s"] / result["bare"]["events_per_s"]
    result["task_rate_ratio"] = result["kernel"]["task_rate_hz"] / result["bare"]["task_rate_hz"]
    bare = commands["timed"]["bare"]
    head = bare[: bare.index("-c")]
    slurm = {i for i, a in enumerate(head) if a.startswith("SLURM_")}
    shown = " ".join(a for i, a in enumerate(head) if i not in slurm and i + 1 not in slurm)
    result["commands"] = {
        "kernel": " ".join(commands["timed"]["kernel"]),
        "bare": shown + " -c <run_standalone> <params>",
    }
    return result


def run(runs: int = 3, events: int = 40_000, ranks: int = 4) -> Dict[str, Any]:
    """Get an allocation of the ranks plus the kernel's task and measure inside it."""
    args = ["--runs", str(runs), "--events", str(events), "--psana-ranks", str(ranks)]
    result = in_allocation(Path(__file__), ranks + 1, args)
    result["target_ratio"] = TARGET_RATIO
    return result


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """P9's row."""
    k, b = result["kernel"], result["bare"]
    return [
        {
            "id": "P9",
            "measure": f"SmallDataPsana2 events/s, {result['ranks']} MPI ranks (2 bigdata),"
            f" {result['events']:,} events",
            "kernel": f"{k['events_per_s']:,.0f} ev/s (Task {k['task_rate_hz']:,.0f})",
            "baseline": f"{b['events_per_s']:,.0f} ev/s (Task {b['task_rate_hz']:,.0f}), same psana code, no kernel",
            "ratio": result["ratio"],
            "target": f">= {TARGET_RATIO}x (Task's own rate {result['task_rate_ratio']:.2f}x)",
            "verdict": "meets" if result["ratio"] >= TARGET_RATIO else "MISSES",
            "load": result["load"],
        }
    ]


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    print(
        f"P9 psana2: {result['events']:,} events, {result['ranks']} MPI ranks, {result['runs']} interleaved runs each"
        f" (load {result['load'][0]} -> {result['load'][1]})"
    )
    for name in ("kernel", "bare"):
        s = result[name]
        print(
            f"  {name:<6} {s['wall_s']:6.2f} s = {s['events_per_s']:7.0f} events/s over the command;"
            f" the Task's own rate {s['task_rate_hz']:7.0f} Hz  $ {result['commands'][name]}"
        )
    print(f"  ratio {result['ratio']:.2f}x over the command, {result['task_rate_ratio']:.2f}x of the Task's own rate")


def main(argv: Sequence[str] = ()) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--psana-ranks", type=int, default=4, help="MPI ranks (psana2 needs >= 3)")
    parser.add_argument("--inside", action="store_true", help="already inside the allocation")
    args = parser.parse_args(list(argv))
    if args.inside:
        print(RESULT_MARK + json.dumps(inside(max(args.runs, 1), args.events, args.psana_ranks)))
        return 0
    result = run(args.runs, args.events, args.psana_ranks)
    report(result)
    print(json.dumps(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
