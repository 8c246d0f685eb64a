"""MPI launch overhead: a 2-rank no-op MPI Task via the kernel vs a bare srun of the same image.

Inside one Slurm allocation of 3 tasks (the kernel keeps one), interleaved, after a warm-up each:
  (a) `lute-kernel run TestMultiNodeCommunication --runtime apptainer` (2 ranks, srun, arr_size 1),
  (b) the issue's baseline: `srun -n 2 --mpi=pmi2 apptainer exec <image> python3 -c 'from mpi4py import MPI'`.
Both use the image the kernel runs (the unpacked copy on `images.run_from: sandbox` sites).

    python bench/mpi.py [--runs 10]          # asks Slurm for the allocation itself (salloc)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from overhead import REPO, bench_env, lute_kernel_cmd, stats, timed, write_config  # noqa: E402

TARGET_RATIO = 1.3
RESULT_MARK = "MPI-BENCH-RESULT "


def inside(runs: int) -> Dict[str, Any]:
    """Time both commands inside the current allocation."""
    from lute_kernel.images import find_image
    from lute_kernel.sites import load_site

    image = str(find_image("psana2", load_site()).runnable)
    env = bench_env()
    env.update({k: v for k, v in os.environ.items() if k.startswith("SLURM_")})
    with tempfile.TemporaryDirectory(prefix="lute-bench-") as tmp:
        config = write_config(Path(tmp), {"TestMultiNodeCommunication": {"send_obj": "array", "arr_size": 1}})
        commands = {
            "kernel": [
                *lute_kernel_cmd(),
                "run",
                "TestMultiNodeCommunication",
                "-c",
                str(config),
                "--runtime",
                "apptainer",
            ],
            "bare": [
                "srun",
                "-n",
                "2",
                "--mpi=pmi2",
                "apptainer",
                "exec",
                image,
                "python3",
                "-c",
                "from mpi4py import MPI",
            ],
        }
        samples: Dict[str, List[float]] = {name: [] for name in commands}
        for argv in commands.values():
            timed(argv, env)
        for _ in range(runs):
            for name, argv in commands.items():
                samples[name].append(timed(argv, env))
    result: Dict[str, Any] = {name: stats(values) for name, values in samples.items()}
    result.update(runs=runs, image=image, commands={k: " ".join(v) for k, v in commands.items()})
    result["ratio"] = result["kernel"]["median_s"] / result["bare"]["median_s"]
    result["target_ratio"] = TARGET_RATIO
    return result


def run(runs: int = 10) -> Dict[str, Any]:
    """Get a 3-task allocation and run the comparison inside it."""
    argv = [
        "timeout",
        "900",
        "salloc",
        "-n",
        "3",
        "--overcommit",
        "--quiet",
        sys.executable,
        __file__,
        "--inside",
        "--runs",
        str(runs),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK) :]))
    raise SystemExit(f"MPI benchmark failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    print(f"mpi: {result['runs']} interleaved runs each inside one allocation, image {result['image']}")
    for name in ("kernel", "bare"):
        median, low, high = (result[name][k] * 1e3 for k in ("median_s", "min_s", "max_s"))
        print(f"  {name:<7} median {median:7.1f} ms   min {low:7.1f}   max {high:7.1f}")
        print(f"  {'':<7} $ {result['commands'][name]}")
    verdict = "meets" if result["ratio"] <= TARGET_RATIO else "MISSES"
    print(f"  ratio kernel/bare = {result['ratio']:.2f}x ({verdict} the {TARGET_RATIO}x target)")


def main(argv: Sequence[str] = ()) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--inside", action="store_true", help="already inside the allocation")
    args = parser.parse_args(list(argv) or None)
    if args.inside:
        print(RESULT_MARK + json.dumps(inside(max(args.runs, 10))))
        return 0
    report(run(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
