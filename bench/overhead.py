"""Kernel overhead: `lute-kernel run Test` vs a bare `python -c` running the same Task code.

Both sides are timed as whole subprocesses (time.perf_counter around subprocess.run), interleaved
(a, b, a, b, …) so that machine noise hits both alike, after one untimed warm-up each. The Test
Task runs with ``sleep_secs: 0``, so what remains is the price of the kernel: its imports, config
substitution and validation, the worker process, the socket round trip and the DB row.

Then it breaks the kernel's time down: interpreter start, host imports, prepare (discovery +
config + validation + plan), spawn -> first message from the Task, Task run -> exit, DB record,
and the slowest imports on the host and in the worker (``python -X importtime``).

    python bench/overhead.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "tasks"
TARGET_RATIO = 1.5

HEADER: Dict[str, Any] = {
    "title": "overhead benchmark",
    "experiment": "xpptut15",
    "run": 14,
    "date": "2026/11/22",
    "lute_version": 0.1,
    "task_timeout": 60,
}
TEST_PARAMS: Dict[str, Any] = {
    "float_var": 0.01,
    "str_var": "test",
    "compound_var": {"int_var": 10, "dict_var": {"a": "b"}},
    "throw_error": False,
    "sleep_secs": 0,
}


def lute_kernel_cmd() -> List[str]:
    """The console script of this environment (the one users call)."""
    script = Path(sys.executable).parent / "lute-kernel"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lute_kernel.cli"]


def bench_env() -> Dict[str, str]:
    """The caller's environment without variables that change what the kernel loads."""
    env = dict(os.environ)
    for name in ("LUTE_TASKS_PATH", "LUTE_SITE", "LUTE_SITES_DIR", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    return env


def write_config(work_dir: Path, sections: Dict[str, Any]) -> Path:
    """Write an upstream-format config (header doc + Task doc) into ``work_dir``."""
    header = {**HEADER, "work_dir": str(work_dir)}
    path = work_dir / "config.yaml"
    path.write_text(
        "%YAML 1.3\n---\n" + json.dumps(header) + "\n...\n---\n" + json.dumps(sections) + "\n...\n"
    )  # JSON is YAML
    return path


def timed(argv: Sequence[str], env: Dict[str, str]) -> float:
    """Run ``argv`` to the end; return its wall time in seconds; fail loudly if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {argv}\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def stats(samples: List[float]) -> Dict[str, float]:
    """Median, min and max in seconds."""
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples)}


def bare_argv(work_dir: Path) -> List[str]:
    """`python -c` that imports and runs the same Task code with the same parameters, no kernel."""
    params = {"lute_config": {**HEADER, "work_dir": str(work_dir)}, **TEST_PARAMS}
    code = (
        "from lute_kernel.registry import import_task; "
        f"cls = import_task({str(TASKS)!r}, 'test', 'Test'); "
        f"result = cls.run_standalone({params!r}); "
        "assert result.task_status == 'COMPLETED', result"
    )
    return [sys.executable, "-c", code]


def compare(runs: int, work_dir: Path) -> Dict[str, Any]:
    """Interleaved runs of (a) the kernel and (b) the bare Task; medians and their ratio."""
    env = bench_env()
    config = write_config(work_dir, {"Test": TEST_PARAMS})
    kernel = [*lute_kernel_cmd(), "run", "Test", "-c", str(config)]
    bare = bare_argv(work_dir)
    timed(kernel, env), timed(bare, env)  # warm-up: page cache, .pyc files
    kernel_s: List[float] = []
    bare_s: List[float] = []
    for _ in range(runs):
        kernel_s.append(timed(kernel, env))
        bare_s.append(timed(bare, env))
    a, b = stats(kernel_s), stats(bare_s)
    return {
        "runs": runs,
        "kernel_cmd": " ".join(kernel),
        "bare_cmd": "python -c 'from lute_kernel.registry import import_task; … cls.run_standalone({…})'",
        "kernel": a,
        "bare": b,
        "ratio": a["median_s"] / b["median_s"],
        "ratio_of_mins": a["min_s"] / b["min_s"],
        "added_ms": (a["median_s"] - b["median_s"]) * 1000,
        "target_ratio": TARGET_RATIO,
    }


# --- Where the kernel's time goes --------------------------------------------------------------

PHASES_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from lute_kernel.api import prepare, run_prepared
import lute_kernel.cli.app
t1 = time.perf_counter()
prepared = prepare("Test", sys.argv[1])
t2 = time.perf_counter()
marks = {}
def on_event(event):
    marks.setdefault(event.kind, time.perf_counter())
outcome = run_prepared(prepared, on_event=on_event)
t3 = time.perf_counter()
assert outcome.ok, outcome
first = min(v for k, v in marks.items() if k != "status")
print(json.dumps({
    "host_imports_ms": (t1 - t0) * 1e3,
    "prepare_ms": (t2 - t1) * 1e3,
    "spawn_to_first_task_message_ms": (first - t2) * 1e3,  # run dir, socket, worker start, hello, params
    "task_run_to_exit_ms": (marks["status"] - first) * 1e3,
    "record_db_ms": (t3 - marks["status"]) * 1e3,
}))
"""


TEARDOWN_SCRIPT = r"""
import os, sys, time
sys.argv = ["lute-kernel", "run", "Test", "-c", sys.argv[1]]
from lute_kernel.cli import main
try:
    main()
finally:
    os.write(2, f"MAIN_DONE {time.time()!r}\n".encode())
"""


def teardown_ms(config: Path, env: Dict[str, str]) -> float:
    """Wall time from the end of the CLI's main() to the process being gone (interpreter teardown)."""
    proc = subprocess.run([sys.executable, "-c", TEARDOWN_SCRIPT, str(config)], capture_output=True, text=True, env=env)
    gone = time.time()
    done = float(next(line for line in proc.stderr.splitlines() if line.startswith("MAIN_DONE")).split()[1])
    return (gone - done) * 1e3


def phases(work_dir: Path, repeats: int = 5) -> Dict[str, float]:
    """Median time of each phase of one `run`, measured inside one host process per repeat."""
    env = bench_env()
    config = write_config(work_dir, {"Test": TEST_PARAMS})
    samples: Dict[str, List[float]] = {}
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", PHASES_SCRIPT, str(config)], capture_output=True, text=True, env=env, check=True
        )
        for key, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
            samples.setdefault(key, []).append(value)
    startup = [timed([sys.executable, "-c", "pass"], env) * 1e3 for _ in range(repeats)]
    worker = [timed([sys.executable, "-c", "import lute_kernel.worker"], env) * 1e3 for _ in range(repeats)]
    result = {"interpreter_start_ms": statistics.median(startup)}
    result.update({k: statistics.median(v) for k, v in samples.items()})
    # What a worker costs when it is exec'd rather than forked (the apptainer path).
    result["interpreter_teardown_after_main_ms"] = statistics.median(teardown_ms(config, env) for _ in range(repeats))
    # What a worker costs when it is exec'd rather than forked (the apptainer path).
    result["exec_worker_start_and_imports_ms"] = statistics.median(worker)
    return result


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


def slowest_imports(argv: Sequence[str], top: int = 10) -> Dict[str, Any]:
    """What ``python -X importtime ARGV`` spends on imports.

    Returns ``by_package``: self time summed per top-level package (our modules one by one), and
    ``entry_points``: for each package, its outermost import, who triggered it, and its cumulative
    time (``-X importtime`` prints children before their parent, so a row's importer is the next
    row one level up).
    """
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, env=bench_env(), cwd=REPO
    )
    rows = _importtime_rows(proc.stderr)
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


def breakdown(work_dir: Path) -> Dict[str, Any]:
    """Phases of one run, and the slowest imports of the host (`run`) and of the worker."""
    config = write_config(work_dir, {"Test": TEST_PARAMS})
    worker_code = (
        "import lute_kernel.worker; from lute_kernel.registry import import_task; "
        f"import_task({str(TASKS)!r}, 'test', 'Test')"
    )
    return {
        "phases": phases(work_dir),
        "host_imports_run": slowest_imports(["-m", "lute_kernel.cli", "run", "Test", "-c", str(config)]),
        "host_imports_help": slowest_imports(["-m", "lute_kernel.cli", "--help"]),
        "worker_imports": slowest_imports(["-c", worker_code]),
    }


def report(result: Dict[str, Any]) -> None:
    """Print the comparison and the breakdown for people."""
    a, b = result["kernel"], result["bare"]
    print(f"overhead: {result['runs']} interleaved runs each")
    print(f"  (a) {result['kernel_cmd']}")
    print(f"  (b) {result['bare_cmd']}")
    for label, s in (("(a) kernel", a), ("(b) bare  ", b)):
        ms = {k: v * 1e3 for k, v in s.items()}
        print(f"  {label}  median {ms['median_s']:7.1f} ms   min {ms['min_s']:7.1f}   max {ms['max_s']:7.1f}")
    verdict = "meets" if result["ratio"] <= TARGET_RATIO else "MISSES"
    print(f"  ratio a/b = {result['ratio']:.2f}x ({verdict} the {TARGET_RATIO}x target)", end="")
    print(f"; the kernel adds {result['added_ms']:.0f} ms (ratio of the minima: {result['ratio_of_mins']:.2f}x)")
    details = result.get("breakdown")
    if not details:
        return
    print("  where the kernel's time goes (medians, ms):")
    for key, value in details["phases"].items():
        print(f"    {key:<40} {value:8.1f}")
    for title, key in (
        ("`lute-kernel run Test`, host process", "host_imports_run"),
        ("`lute-kernel --help`", "host_imports_help"),
        ("an exec'd worker (worker + Test Task)", "worker_imports"),
    ):
        imports = details[key]
        print(f"  imports of {title}: {imports['total_ms']:.0f} ms in all")
        print(
            "    by package (self ms):  "
            + ", ".join(f"{r['package']} {r['self_ms']:.0f}" for r in imports["by_package"])
        )
        print("    heaviest entries (cumulative ms, imported by):")
        for entry in imports["entry_points"][:6]:
            print(f"      {entry['module']:<28} {entry['cumulative_ms']:6.1f}  <- {entry['imported_by']}")


def run(runs: int = 15, with_breakdown: bool = True) -> Dict[str, Any]:
    """Run the benchmark; return the results (see `report`)."""
    with tempfile.TemporaryDirectory(prefix="lute-bench-") as tmp:
        work_dir = Path(tmp)
        result = compare(runs, work_dir)
        if with_breakdown:
            result["breakdown"] = breakdown(work_dir)
    return result


def main(argv: Sequence[str] = ()) -> int:
    """Command line: run, print, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each side (>= 10)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the phase and import breakdown")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(list(argv) or None)
    result = run(max(args.runs, 10), not args.no_breakdown)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
