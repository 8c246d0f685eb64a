"""P2: `lute-kernel run Test --runtime apptainer` vs `apptainer exec` of the same image running the same Task code.

The baseline is the kernel's own launch argv (``lute_kernel.api.prepare``: the same ``apptainer
exec`` flags, binds, ``--env`` pairs — PYTHONPATH as the kernel sets it — and the same runnable
image), with the worker replaced by ``python3 -c`` that imports the Test Task as the worker does
(``import_task`` from the bound tasks folder) and runs ``Test.run_standalone`` with the parameters
the kernel validated. Interleaved whole subprocesses after a warm-up each. Beside it, for the
breakdown: the same container running ``python3 -c pass`` (what any container costs here), and
``--profile`` of the kernel side. Plus the no-op rebuild time of ``lute-kernel images build``.

    python bench/container.py [--runs 15]
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
    TEST_PARAMS,
    baseline_from_plan,
    bench_env,
    image_info,
    interleaved,
    lute_kernel_cmd,
    ms,
    prepared_request,
    side_by_side,
    standalone_code,
    stats,
    timed,
    warm_kernel,
    write_config,
)
from overhead import print_profiles, profile_breakdown, served_row

TARGET_RATIO = 1.3


def commands(config: Path, run_dir: Path) -> Dict[str, List[str]]:
    """The kernel's command, its baseline, and the empty container (``python3 -c pass``)."""
    prepared = prepared_request("Test", config, runtime="apptainer")
    bare = baseline_from_plan(prepared, run_dir, standalone_code("test", "Test"))
    at = bare.index("-c")
    empty = [*bare[:at], "-c", "pass"]
    return {
        "kernel": [*lute_kernel_cmd(), "run", "Test", "-c", str(config), "--runtime", "apptainer"],
        "bare": bare,
        "empty": empty,
    }


def noop_rebuild(repeats: int = 3) -> Dict[str, Any]:
    """Time `lute-kernel images build smoke` when nothing changed (skipped)."""
    argv = [*lute_kernel_cmd(), "images", "build", "smoke"]
    env = bench_env()
    timed(argv, env)
    return stats([timed(argv, env) for _ in range(repeats)])


def run(runs: int = 15, profile_runs: int = 5) -> Dict[str, Any]:
    """Measure P2; return the numbers."""
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="lute-bench-p2-") as tmp:
        work_dir = Path(tmp)
        run_dir = work_dir / "run"
        run_dir.mkdir(mode=0o700)
        config = write_config(work_dir, {"Test": TEST_PARAMS})
        argv = commands(config, run_dir)
        with warm_kernel(env) as served_env:
            result: Dict[str, Any] = interleaved(
                {**argv, "served": argv["kernel"]}, runs, {**env, **COLD}, envs={"served": served_env}
            )
            result["served_profile"] = profile_breakdown(argv["kernel"], served_env, profile_runs)
        result.update(side_by_side(result["kernel"], result["bare"]))
        result["served_vs_bare"] = side_by_side(result["served"], result["bare"])
        result["profile"] = profile_breakdown(argv["kernel"], {**env, **COLD}, profile_runs)
        shown = {name: " ".join(a) for name, a in argv.items()}
        shown["served"] = shown["kernel"] + "  (with `lute-kernel serve` running)"
        shown["bare"] = shown["bare"].split(" -c ")[0] + " -c <import_task + Test.run_standalone> <params>"
        result["commands"] = shown
    result.update(runs=runs, image=image_info("smoke"), target_ratio=TARGET_RATIO)
    result["noop_rebuild"] = noop_rebuild()
    return result


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """P2's row, and the no-op rebuild."""
    return [
        {
            "id": "P2",
            "measure": "`run Test --runtime apptainer` (smoke image)",
            "kernel": ms(result["kernel"]["median"]),
            "baseline": ms(result["bare"]["median"]) + " (apptainer exec, same flags, same Task code)",
            "ratio": result["ratio"],
            "target": f"<= {TARGET_RATIO}x (+{result['added_ms']:.0f} ms)",
            "verdict": "meets" if result["ratio"] <= TARGET_RATIO else "MISSES",
            "load": result["load"],
        },
        *(
            [
                served_row(
                    "P2",
                    "`run Test --runtime apptainer`",
                    {**result, "target_ratio": TARGET_RATIO},
                    ms(result["bare"]["median"]),
                    None,
                )
            ]
            if "served" in result
            else []
        ),
        {
            "id": "-",
            "measure": "no-op `images build smoke` (up to date)",
            "kernel": ms(result["noop_rebuild"]["median"]),
            "baseline": "-",
            "ratio": None,
            "target": "< 1 s",
            "verdict": "meets" if result["noop_rebuild"]["median"] < 1 else "MISSES",
            "load": None,
        },
    ]


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    print(f"P2 containers: {result['runs']} interleaved runs each (load {result['load'][0]} -> {result['load'][1]})")
    for name in ("kernel", "served", "bare", "empty"):
        if name not in result:
            continue
        s = result[name]
        print(f"  {name:<6} median {ms(s['median'])}  min {ms(s['min'])}  $ {result['commands'][name]}")
    print(
        f"  ratio kernel/bare {result['ratio']:.2f}x (+{result['added_ms']:.0f} ms);"
        f" an empty container (python3 -c pass) {ms(result['empty']['median'])}"
    )
    print_profiles(result, "`lute-kernel run Test --runtime apptainer --profile`")
    print(f"  no-op `lute-kernel images build smoke`: {ms(result['noop_rebuild']['median'])}")


def main(argv: Sequence[str] = ()) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(list(argv))
    result = run(max(args.runs, 3))
    report(result)
    print(json.dumps(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
