"""P1: `lute-kernel run Test` (local runtime, ``sleep_secs: 0``) vs a bare `python -c` running the same Task code.

Both sides are whole subprocesses, interleaved after a warm-up each (``common.interleaved``). The
baseline imports the Task as the worker does (``import_task``) and calls ``Test.run_standalone``
with the same parameters: what remains is the price of the kernel — its imports, config and
validation, the worker, the socket round trip, the DB row. Then where the kernel's time went:
``lute-kernel run Test --profile`` (the kernel's own breakdown, medians of several runs; what it
cannot see — the interpreter's exit after recording — is the wall time minus its total), and the
slowest imports of the host's ``run``, of ``--help`` and of a worker (``python -X importtime``).

    python bench/overhead.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    COLD,
    HEADER,
    REPO,
    TASKS,
    TEST_PARAMS,
    bench_env,
    interleaved,
    lute_kernel_cmd,
    ms,
    side_by_side,
    standalone_code,
    warm_kernel,
    write_config,
)

TARGET_RATIO = 1.3
TARGET_ADDED_MS = 60.0
_PROFILE_LINE = re.compile(r"^\s{2}(\S.*?)\s+([0-9.]+) ms$")
_PROFILE_TOTAL = re.compile(r"lute-kernel profile: ([0-9.]+) ms in all")


def commands(config: Path, work_dir: Path) -> Dict[str, List[str]]:
    """The kernel's command and its baseline."""
    params = {"lute_config": {**HEADER, "work_dir": str(work_dir)}, **TEST_PARAMS}
    return {
        "kernel": [*lute_kernel_cmd(), "run", "Test", "-c", str(config)],
        "bare": [sys.executable, "-c", standalone_code("test", "Test"), json.dumps(params)],
    }


WARM_TASKS = 5
"""Tasks of the warm-kernel row: one ``run Test Test …`` against one interpreter running Test as often."""


def warm_commands(config: Path, work_dir: Path) -> Dict[str, List[str]]:
    """``run`` of WARM_TASKS Tests in one command, and one Python running the Task as many times."""
    params = {"lute_config": {**HEADER, "work_dir": str(work_dir)}, **TEST_PARAMS}
    loop = (
        standalone_code("test", "Test")
        .replace("result = cls.run_standalone", f"for _ in range({WARM_TASKS}):\n    result = cls.run_standalone")
        .replace("assert result", "    assert result")
    )
    return {
        "kernel": [*lute_kernel_cmd(), "run", *["Test"] * WARM_TASKS, "-c", str(config)],
        "bare": [sys.executable, "-c", loop, json.dumps(params)],
    }


def parse_profile(stderr: str) -> Tuple[float, Dict[str, float]]:
    """Return (total ms, {phase: ms}) from the ``--profile`` lines of a run's stderr."""
    total, phases = 0.0, {}
    seen = False
    for line in stderr.splitlines():
        found = _PROFILE_TOTAL.search(line)
        if found:
            total, seen = float(found.group(1)), True
            continue
        match = _PROFILE_LINE.match(line) if seen else None
        if match:
            phases[match.group(1)] = float(match.group(2))
    return total, phases


def profile_breakdown(argv: Sequence[str], env: Dict[str, str], repeats: int) -> Dict[str, Any]:
    """Medians of each ``--profile`` phase over ``repeats`` runs, and what the profile cannot see."""
    samples: Dict[str, List[float]] = {}
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([*argv, "--profile"], capture_output=True, text=True, env=env, cwd=REPO, check=True)
        wall_ms = (time.perf_counter() - start) * 1000
        total, phases = parse_profile(done.stderr)
        phases["after recording (interpreter exit)"] = max(0.0, wall_ms - total)
        phases["wall"] = wall_ms
        for key, value in phases.items():
            samples.setdefault(key, []).append(value)
    return {key: round(statistics.median(values), 1) for key, values in samples.items()}


def _importtime_rows(stderr: str) -> List[Tuple[int, str, float, float]]:
    """Parse ``-X importtime`` lines into (depth, module, self ms, cumulative ms), in print order."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((depth, name.strip(), int(self_us) / 1000, int(cumulative_us) / 1000))
    return rows


def _root(module: str) -> str:
    root = module.split(".")[0]
    return module if root == "lute_kernel" else root  # our own modules one by one, others by package


def slowest_imports(argv: Sequence[str], env: Dict[str, str], top: int = 8) -> Dict[str, Any]:
    """What ``python -X importtime ARGV`` spends on imports: self time per package, heaviest entry points."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, env=env, cwd=REPO
    )
    rows = _importtime_rows(done.stderr)
    by_package: Dict[str, float] = {}
    for _depth, name, self_ms, _cumulative in rows:
        by_package[_root(name)] = by_package.get(_root(name), 0.0) + self_ms
    entries: List[Dict[str, Any]] = []
    for index, (depth, name, _self, cumulative) in enumerate(rows):
        importer = next((r[1] for r in rows[index + 1 :] if r[0] == depth - 1), "(the program)")
        if name.split(".")[0] != importer.split(".")[0] and not name.startswith("lute_kernel"):
            entries.append({"module": name, "imported_by": importer, "cumulative_ms": round(cumulative, 1)})
    entries.sort(key=lambda e: e["cumulative_ms"], reverse=True)
    ranked = sorted(by_package.items(), key=lambda item: item[1], reverse=True)
    return {
        "total_ms": round(sum(by_package.values()), 1),
        "by_package": [{"package": k, "self_ms": round(v, 1)} for k, v in ranked[:top]],
        "entry_points": entries[:top],
    }


def run(runs: int = 15, profile_runs: int = 5, importtime: bool = True) -> Dict[str, Any]:
    """Measure P1; return the numbers (see ``report``)."""
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="lute-bench-p1-") as tmp:
        work_dir = Path(tmp)
        config = write_config(work_dir, {"Test": TEST_PARAMS})
        argv = commands(config, work_dir)
        with warm_kernel(env) as served_env:
            result: Dict[str, Any] = interleaved(
                {**argv, "served": argv["kernel"]}, runs, {**env, **COLD}, envs={"served": served_env}
            )
            result["served_profile"] = profile_breakdown(argv["kernel"], served_env, profile_runs)
        result.update(side_by_side(result["kernel"], result["bare"]))
        result["served_vs_bare"] = side_by_side(result["served"], result["bare"])
        result["commands"] = {"kernel": " ".join(argv["kernel"]), "bare": "python -c <import_task + run_standalone>"}
        result["runs"] = runs
        result["profile"] = profile_breakdown(argv["kernel"], {**env, **COLD}, profile_runs)
        warm = warm_commands(config, work_dir)
        result["warm"] = interleaved(warm, max(3, runs // 3), {**env, **COLD})
        result["warm"].update(side_by_side(result["warm"]["kernel"], result["warm"]["bare"]))
        result["warm"]["tasks"] = WARM_TASKS
        if importtime:
            worker = (
                "import lute_kernel.worker; from lute_kernel.registry import import_task;"
                f" import_task({str(TASKS)!r}, 'test', 'Test')"
            )
            result["imports"] = {
                "run": slowest_imports(["-m", "lute_kernel.cli", "run", "Test", "-c", str(config)], env),
                "help": slowest_imports(["-m", "lute_kernel.cli", "--help"], env),
                "worker": slowest_imports(["-c", worker], env),
            }
    result["target_ratio"], result["target_added_ms"] = TARGET_RATIO, TARGET_ADDED_MS
    return result


def meets(result: Dict[str, Any]) -> bool:
    """P1's verdict: both the ratio and the milliseconds added."""
    return bool(result["ratio"] <= TARGET_RATIO and result["added_ms"] <= TARGET_ADDED_MS)


def print_profiles(result: Dict[str, Any], command: str) -> None:
    """Print the ``--profile`` breakdowns of a result: cold, and with the warm kernel when it was measured."""
    for title, key in (("", "profile"), (" with the warm kernel", "served_profile")):
        if key in result:
            print(f"  {command}{title} (medians, ms):")
            for label, value in result[key].items():
                print(f"    {label:<42} {value:8.1f}")


def served_row(
    pid: str, measure: str, result: Dict[str, Any], baseline: str, target_ms: Optional[float]
) -> Dict[str, Any]:
    """The row of the same command with a warm kernel serving (``lute-kernel serve``), against the same baseline."""
    versus = result["served_vs_bare"]
    ok = versus["ratio"] <= result.get("target_ratio", TARGET_RATIO)
    target = f"<= {result.get('target_ratio', TARGET_RATIO)}x"
    if target_ms is not None:
        ok = ok and versus["added_ms"] <= target_ms
        target += f", <= {target_ms:.0f} ms added"
    return {
        "id": pid,
        "measure": measure + ", warm kernel (`lute-kernel serve` running)",
        "kernel": ms(result["served"]["median"]),
        "baseline": baseline,
        "ratio": versus["ratio"],
        "target": f"{target} ({versus['added_ms']:+.0f} ms)",
        "verdict": "meets" if ok else "MISSES",
        "load": result["load"],
    }


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """P1's row of the table."""
    return [
        {
            "id": "P1",
            "measure": "`run Test`, local runtime (sleeps off)",
            "kernel": ms(result["kernel"]["median"]),
            "baseline": ms(result["bare"]["median"]) + " (python -c, same Task code)",
            "ratio": result["ratio"],
            "target": f"<= {TARGET_RATIO}x, <= {TARGET_ADDED_MS:.0f} ms added (+{result['added_ms']:.0f} ms)",
            "verdict": "meets" if meets(result) else "MISSES",
            "load": result["load"],
        },
        *(
            [served_row("P1", "`run Test`, local runtime", result, ms(result["bare"]["median"]), TARGET_ADDED_MS)]
            if "served" in result
            else []
        ),
        *_warm_rows(result),
    ]


def _warm_rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    warm = result.get("warm")
    if not warm:
        return []
    # What one more Task adds inside one command, against a command of its own.
    per_task = (warm["kernel"]["median"] - result["kernel"]["median"]) / (warm["tasks"] - 1) * 1000
    return [
        {
            "id": "-",
            "measure": f"`run Test` x{warm['tasks']} in one command (one process)",
            "kernel": ms(warm["kernel"]["median"]),
            "baseline": ms(warm["bare"]["median"]) + f" (one python, Test x{warm['tasks']})",
            "ratio": warm["ratio"],
            "target": f"- (each further Task {per_task:.0f} ms; its own `run` {ms(result['kernel']['median'])})",
            "verdict": "-",
            "load": warm["load"],
        }
    ]


def report(result: Dict[str, Any]) -> None:
    """Print the comparison and where the kernel's time went."""
    a, b = result["kernel"], result["bare"]
    print(f"P1 overhead: {result['runs']} interleaved runs each (load {result['load'][0]} -> {result['load'][1]})")
    print(f"  kernel  median {ms(a['median'])}  min {ms(a['min'])}  $ {result['commands']['kernel']}")
    print(f"  bare    median {ms(b['median'])}  min {ms(b['min'])}  $ {result['commands']['bare']}")
    print(
        f"  ratio {result['ratio']:.2f}x, +{result['added_ms']:.0f} ms"
        f" (ratio of minima {result['ratio_of_minima']:.2f}x)"
    )
    warm = result.get("warm")
    if warm:
        print(
            f"  one process: `run Test` x{warm['tasks']} in one command {ms(warm['kernel']['median'])}"
            f" vs one python running Test x{warm['tasks']} {ms(warm['bare']['median'])}: {warm['ratio']:.2f}x"
        )
    if "served" in result:
        served = result["served_vs_bare"]
        print(
            f"  warm kernel (`lute-kernel serve` running): median {ms(result['served']['median'])},"
            f" {served['ratio']:.2f}x bare ({served['added_ms']:+.0f} ms)"
        )
    print_profiles(result, "`lute-kernel run Test --profile`")
    for title, key in (("run Test (host)", "run"), ("--help", "help"), ("an exec'd worker + Test", "worker")):
        imports = result.get("imports", {}).get(key)
        if not imports:
            continue
        print(f"  imports of {title}: {imports['total_ms']:.0f} ms; by package (self ms): ", end="")
        print(", ".join(f"{r['package']} {r['self_ms']:.0f}" for r in imports["by_package"]))
        print(
            "    heaviest: "
            + ", ".join(
                f"{e['module']} {e['cumulative_ms']:.0f} (<- {e['imported_by']})" for e in imports["entry_points"][:5]
            )
        )


def main(argv: Sequence[str] = ()) -> int:
    """Command line: run and print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each side")
    args = parser.parse_args(list(argv))
    result = run(max(args.runs, 3))
    report(result)
    print(json.dumps(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
