"""P7: 2-rank ``TestMultiNodeCommunication``, srun, containers vs ``srun -n 2 --mpi=pmi2 apptainer exec`` of it.

Inside one ``salloc -n 3 --overcommit`` allocation (the kernel keeps one task), interleaved after
a warm-up each:
  kernel: ``lute-kernel run TestMultiNodeCommunication --runtime apptainer`` (2 ranks, arr_size 1);
  bare:   the kernel's own launch argv (``lute_kernel.api.prepare``: ``srun --mpi=pmi2 -n 2 …
          apptainer exec`` with the same flags, ``--env-file rank.env`` for each rank's PMI
          variables, the shared /dev/shm folder and binds, the same image), the worker replaced by
          ``python3 -c`` running ``TestMultiNodeCommunication.run_standalone`` on both ranks.
Plus ``--profile`` of the kernel side.

    python bench/mpi.py [--runs 10]          # asks Slurm for the allocation itself (salloc)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    COLD,
    RESULT_MARK,
    baseline_from_plan,
    bench_env,
    in_allocation,
    interleaved,
    lute_kernel_cmd,
    make_run_dir,
    ms,
    prepared_request,
    side_by_side,
    standalone_code,
    warm_kernel,
    write_config,
)
from overhead import print_profiles, profile_breakdown, served_row

TARGET_RATIO = 1.3
TASK = "TestMultiNodeCommunication"


def inside(runs: int, profile_runs: int) -> Dict[str, Any]:
    """Time both commands inside the current allocation."""
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="lute-bench-p7-") as tmp:
        folder = Path(tmp)
        config = write_config(folder, {TASK: {"send_obj": "array", "arr_size": 1}})
        prepared = prepared_request(TASK, config, runtime="apptainer")
        bare = baseline_from_plan(prepared, make_run_dir(folder, prepared), standalone_code("mpi_test", TASK))
        kernel = [*lute_kernel_cmd(), "run", TASK, "-c", str(config), "--runtime", "apptainer"]
        with warm_kernel(env) as served_env:  # started inside the allocation: it serves this job's commands
            sides = {"kernel": kernel, "served": kernel, "bare": bare}
            result: Dict[str, Any] = interleaved(sides, runs, {**env, **COLD}, envs={"served": served_env})
            result["served_profile"] = profile_breakdown(kernel, served_env, profile_runs)
        result["profile"] = profile_breakdown(kernel, {**env, **COLD}, profile_runs)
    result.update(side_by_side(result["kernel"], result["bare"]))
    result["served_vs_bare"] = side_by_side(result["served"], result["bare"])
    head = bare[: bare.index("-c")]
    slurm = {i for i, a in enumerate(head) if a.startswith("SLURM_")}
    shown = " ".join(a for i, a in enumerate(head) if i not in slurm and i + 1 not in slurm)
    result["commands"] = {"kernel": " ".join(kernel), "bare": shown + " -c <run_standalone> <params>"}
    result["commands"]["served"] = result["commands"]["kernel"] + "  (with `lute-kernel serve` running)"
    result.update(runs=runs, ranks=prepared.plan.ranks, launcher=prepared.plan.launcher)
    return result


def run(runs: int = 10, profile_runs: int = 3) -> Dict[str, Any]:
    """Get a 3-task allocation and measure inside it."""
    result = in_allocation(Path(__file__), 3, ["--runs", str(runs), "--profile-runs", str(profile_runs)])
    result["target_ratio"] = TARGET_RATIO
    return result


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """P7's row."""
    return [
        {
            "id": "P7",
            "measure": f"{result['ranks']}-rank TestMultiNodeCommunication, srun, containers",
            "kernel": ms(result["kernel"]["median"]),
            "baseline": ms(result["bare"]["median"]) + " (srun -n 2 --mpi=pmi2 apptainer exec, same Task code)",
            "ratio": result["ratio"],
            "target": f"<= {TARGET_RATIO}x (+{result['added_ms']:.0f} ms)",
            "verdict": "meets" if result["ratio"] <= TARGET_RATIO else "MISSES",
            "load": result["load"],
        },
        *(
            [
                served_row(
                    "P7",
                    f"{result['ranks']}-rank {TASK}, srun",
                    {**result, "target_ratio": TARGET_RATIO},
                    ms(result["bare"]["median"]),
                    None,
                )
            ]
            if "served" in result
            else []
        ),
    ]


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    print(
        f"P7 MPI: {result['runs']} interleaved runs each inside one salloc -n 3 --overcommit"
        f" (load {result['load'][0]} -> {result['load'][1]})"
    )
    for name in ("kernel", "served", "bare"):
        if name not in result:
            continue
        s = result[name]
        print(f"  {name:<6} median {ms(s['median'])}  min {ms(s['min'])}  $ {result['commands'][name]}")
    print(f"  ratio {result['ratio']:.2f}x (+{result['added_ms']:.0f} ms)")
    print_profiles(result, "`--profile` of the kernel side")


def main(argv: Sequence[str] = ()) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--profile-runs", type=int, default=3)
    parser.add_argument("--inside", action="store_true", help="already inside the allocation")
    args = parser.parse_args(list(argv))
    if args.inside:
        print(RESULT_MARK + json.dumps(inside(max(args.runs, 2), args.profile_runs)))
        return 0
    result = run(args.runs, args.profile_runs)
    report(result)
    print(json.dumps(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
