"""What every benchmark shares: the CLI to call, a clean environment, configs, timing, medians, the load.

Owns running a command to the end and timing it (``time.perf_counter`` around ``subprocess.run``),
running several commands interleaved (a, b, a, b, …, after one untimed warm-up each, so noise from
the other work on this shared machine hits every side alike), medians, and the comparison of a
kernel side with its baseline. Measures; never asserts a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "tasks"

HEADER: Dict[str, Any] = {
    "title": "benchmark",
    "experiment": "xpptut15",
    "run": 14,
    "date": "2026/11/22",
    "lute_version": 0.1,
    "task_timeout": 600,
}
TEST_PARAMS: Dict[str, Any] = {
    "float_var": 0.01,
    "str_var": "test",
    "compound_var": {"int_var": 10, "dict_var": {"a": "b"}},
    "throw_error": False,
    "sleep_secs": 0,
}
_DROP = (
    "LUTE_TASKS_PATH",
    "LUTE_SITE",
    "LUTE_SITES_DIR",
    "LUTE_PROFILE",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONDONTWRITEBYTECODE",
    "LUTE_WARM",
)
"""Variables that change what the kernel loads, or how: PYTHONDONTWRITEBYTECODE (set in some CI and agent
shells) would make every interpreter compile the kernel again, which no installed kernel does."""


class BenchmarkFailed(RuntimeError):
    """A command a benchmark runs failed (the run goes on; the row says it was not measured)."""


def lute_kernel_cmd() -> List[str]:
    """The console script of this environment (the one users call)."""
    script = Path(sys.executable).parent / "lute-kernel"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lute_kernel.cli"]


def bench_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The caller's environment without variables that change what the kernel loads, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env.update(extra or {})
    return env


COLD = {"LUTE_WARM": "0"}
"""The kernel side's environment addition: never a warm kernel, even when one serves (the ``served`` side has one)."""


@contextlib.contextmanager
def warm_kernel(env: Mapping[str, str], *, flows: bool = False) -> Iterator[Dict[str, str]]:
    """A warm kernel of the benchmark's own (``lute-kernel serve --detach``); yields the env its commands use.

    Its directory is a private ``XDG_RUNTIME_DIR`` of its own, so a server the user runs is never
    measured, and it is stopped at the end. ``flows``: the warm kernel of ``flow run`` (``--flows``).
    """
    import tempfile

    kind = ["--flows"] if flows else []
    with tempfile.TemporaryDirectory(prefix="lute-bench-warm-") as xdg:
        os.chmod(xdg, 0o700)
        served = {**env, "XDG_RUNTIME_DIR": xdg}
        served.pop("LUTE_WARM", None)
        run_checked([*lute_kernel_cmd(), "serve", *kind, "--detach", "--idle-timeout", "1800"], served)
        try:
            yield served
        finally:
            stop = [*lute_kernel_cmd(), "serve", *kind, "--stop"]
            subprocess.run(stop, env=served, capture_output=True, check=False)


def precompile() -> Dict[str, Any]:
    """Write the .pyc files of the kernel and the Tasks, as ``pip install`` does; return what was done.

    Containers bind the kernel read-only, so a worker there can only use .pyc files written on the
    host; an installed kernel has them all. Returns the seconds it took and whether the caller's
    shell had PYTHONDONTWRITEBYTECODE set.
    """
    start = time.perf_counter()
    argv = [sys.executable, "-m", "compileall", "-q", str(REPO / "lute_kernel"), str(TASKS)]
    run_checked(argv, bench_env())
    return {
        "compileall_s": round(time.perf_counter() - start, 2),
        "caller_had_PYTHONDONTWRITEBYTECODE": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
    }


def load() -> float:
    """The 1-minute load average (other work on this machine skews every timing)."""
    return round(os.getloadavg()[0], 2)


def write_config(work_dir: Path, sections: Dict[str, Any], name: str = "config.yaml") -> Path:
    """Write an upstream-format config (header doc + Task doc) into ``work_dir``; JSON is YAML."""
    header = {**HEADER, "work_dir": str(work_dir)}
    path = work_dir / name
    path.write_text("%YAML 1.3\n---\n" + json.dumps(header) + "\n...\n---\n" + json.dumps(sections) + "\n...\n")
    return path


def run_checked(argv: Sequence[str], env: Mapping[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to the end; raise BenchmarkFailed (with its output's tail) when it fails."""
    done = subprocess.run(list(argv), capture_output=True, text=True, env=dict(env), cwd=REPO, timeout=timeout)
    if done.returncode != 0:
        shown = " ".join(argv)[:300]
        raise BenchmarkFailed(f"exit {done.returncode}: {shown}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return done


def timed(argv: Sequence[str], env: Mapping[str, str], timeout: float = 900) -> float:
    """Run ``argv`` to the end; return its wall time in seconds."""
    start = time.perf_counter()
    run_checked(argv, env, timeout)
    return time.perf_counter() - start


def stats(samples: Sequence[float]) -> Dict[str, Any]:
    """Median, min and max (seconds, or whatever unit the samples have), and the samples."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
        "samples": [round(s, 6) for s in samples],
    }


def interleaved(
    commands: Mapping[str, Sequence[str]],
    runs: int,
    env: Mapping[str, str],
    envs: Optional[Mapping[str, Mapping[str, str]]] = None,
) -> Dict[str, Any]:
    """Time each command ``runs`` times, round-robin, after one untimed warm-up each.

    ``envs`` gives some commands an environment of their own (else ``env``). Returns one
    ``stats`` per command (seconds), and the load averages before and after.
    """
    own = dict(envs or {})
    before = load()
    for name, argv in commands.items():
        timed(argv, own.get(name, env))  # warm-up: page cache, .pyc files, caches, image paths
    samples: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(timed(argv, own.get(name, env)))
    result: Dict[str, Any] = {name: stats(values) for name, values in samples.items()}
    result["load"] = [before, load()]
    return result


def side_by_side(kernel: Dict[str, Any], baseline: Dict[str, Any]) -> Dict[str, Any]:
    """The kernel's median over the baseline's, and the milliseconds added."""
    return {
        "ratio": kernel["median"] / baseline["median"],
        "ratio_of_minima": kernel["min"] / baseline["min"],
        "added_ms": (kernel["median"] - baseline["median"]) * 1000,
    }


def ms(seconds: float) -> str:
    """``0.2413`` -> ``"241 ms"``."""
    return f"{seconds * 1000:.0f} ms"


def image_info(name: str) -> Dict[str, Any]:
    """Where the built image ``name`` is (the copy the kernel runs: unpacked on ``run_from: sandbox`` sites)."""
    from lute_kernel.images import find_image
    from lute_kernel.sites import load_site

    site = load_site()
    image = find_image(name, site)
    return {"sif": str(image.sif), "runnable": str(image.runnable), "sha256": image.sha256}


def standalone_code(module: str, class_name: str, *, print_summary: bool = False) -> str:
    """``python -c`` code that imports a Task as the worker does and runs it without the kernel.

    The parameters come as JSON in ``sys.argv[1]``; with ``print_summary`` rank 0 prints
    ``RESULT <summary JSON>``. The same imports as the worker's (``import_task``), no socket.
    """
    code = (
        "import json, os, sys\n"
        "from lute_kernel.registry import import_task\n"
        f"cls = import_task({str(TASKS)!r}, {module!r}, {class_name!r})\n"
        "result = cls.run_standalone(json.loads(sys.argv[1]))\n"
        "assert result.task_status == 'COMPLETED', result\n"
    )
    if print_summary:
        code += (
            "if os.environ.get('PMI_RANK', os.environ.get('SLURM_PROCID', '0')) == '0':\n"
            "    sys.stdout.write('RESULT ' + json.dumps(result.summary) + '\\n')\n"
        )
    return code


def prepared_request(task: str, config: Path, **options: Any) -> Any:
    """The kernel's own preparation of a run (plan and request), in this process: nothing is launched."""
    from lute_kernel.api import prepare

    return prepare(task, config, **options)


def baseline_from_plan(prepared: Any, run_dir: Path, code: str) -> List[str]:
    """The kernel's launch argv with the worker replaced by ``python3 -c code <params JSON>``.

    Same launcher, flags, binds, env pairs and image as the kernel's launch; the run directory the
    plan names is swapped for ``run_dir`` (which exists: a bind source must), and the parameters
    are the ones the kernel validated.
    """
    argv = [a.replace(prepared.plan.run_dir, str(run_dir)) for a in prepared.plan.argv]
    worker = ["-m", "lute_kernel.worker"]
    at = next(i for i in range(len(argv) - 1) if argv[i : i + 2] == worker)
    params = json.dumps(prepared.request["params"])
    return [*argv[:at], "-c", code, params, *argv[at + 2 :]]


def bench_flows() -> Any:
    """bench/flows.py under another name: ``flows`` is the project's package, which it must not shadow."""
    import importlib.util

    if "bench_flows" in sys.modules:
        return sys.modules["bench_flows"]
    spec = importlib.util.spec_from_file_location("bench_flows", Path(__file__).resolve().parent / "flows.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_flows"] = module
    spec.loader.exec_module(module)
    return module


RESULT_MARK = "BENCH-RESULT "


def in_allocation(script: Path, tasks: int, args: Sequence[str], timeout: float = 1200) -> Dict[str, Any]:
    """Run ``python script --inside ARGS`` inside one ``salloc -n TASKS --overcommit``; return its JSON result.

    The script prints ``RESULT_MARK + json`` on a line of its own; ``--overcommit`` because this
    machine has fewer CPUs than the kernel plus its ranks.
    """
    argv = ["salloc", "-n", str(tasks), "--overcommit", "--quiet", sys.executable, str(script), "--inside", *args]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=timeout, env=bench_env())
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK) :]))
    raise BenchmarkFailed(
        f"{script.name} in an allocation failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )


def make_run_dir(folder: Path, prepared: Any) -> Path:
    """A stand-in for the run directory the kernel would make (0700), with the private folders its plan binds."""
    run_dir = folder / "run"
    run_dir.mkdir(mode=0o700)
    for name in prepared.plan.private_dirs:
        (run_dir / name).mkdir(mode=0o700)
    return run_dir
