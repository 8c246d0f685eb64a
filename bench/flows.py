"""Flows: 20 no-op steps through ``lute-kernel flow run --backend local`` vs 20 ``lute-kernel run`` calls.

Both sides report to one running Prefect server (started here, on 127.0.0.1, unless
PREFECT_API_URL names one) and are timed as whole commands, interleaved (flow, loop, flow, loop,
…) after one untimed warm-up each: the flow of a DAG of 20 sequential ``Tester`` nodes (Test with
``sleep_secs: 0``), and a shell loop of the same 20 ``lute-kernel run Test``. Target: the flow
takes at most as long (one process pays the imports once; the node server keeps the fork fast
start). Reported beside it: Prefect's fixed start-up (``import prefect``; creating and finishing a
flow run with no task), the same chain with ``LUTE_FLOW_NODE_SERVER=0`` (the kernel API in the
flow's threads: each worker exec'd), and a 20-wide fan-out DAG. Medians; load averages before and
after, since other work on the machine skews them.

    python bench/flows.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.0
STEPS = 20
PREFECT_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false"}
HEADER: Dict[str, Any] = {"title": "flows benchmark", "experiment": "xpptut15", "run": 14, "task_timeout": 60}
TEST = {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 10, "dict_var": {"a": "b"}}}}


def lute_kernel_cmd() -> List[str]:
    """The console script of this environment (what users call)."""
    script = Path(sys.executable).parent / "lute-kernel"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lute_kernel.cli"]


def chain_dag(steps: int) -> str:
    """A DAG of ``steps`` Tester nodes, each the only child of the one before."""
    text = "!LUTE_DAG\ntask_name: Tester\n"
    for depth in range(1, steps):
        text += f"{'  ' * (depth - 1)}next:\n{'  ' * (depth - 1)}- task_name: Tester\n"
    return text


def fan_dag(width: int) -> str:
    """A DAG of one Tester whose ``width`` children are Testers."""
    return "!LUTE_DAG\ntask_name: Tester\nnext:\n" + "".join("- task_name: Tester\n" for _ in range(width))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def prefect_server(folder: Path) -> Iterator[str]:
    """Yield the API URL of a running Prefect server: $PREFECT_API_URL's, else one started here."""
    given = os.environ.get("PREFECT_API_URL")
    if given:
        yield given
        return
    import requests

    port = _free_port()
    env = {**os.environ, **PREFECT_ENV, "PREFECT_HOME": str(folder / "prefect")}
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - open while the server runs
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Prefect server did not start")
            time.sleep(0.5)  # a starting server offers nothing to wait on
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def _timed(argv: Sequence[str], env: Dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(list(argv), env=env, capture_output=True, text=True, cwd=REPO)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return took


def _stats(samples: List[float]) -> Dict[str, Any]:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "samples_s": samples}


FIXED_COST = """
import time
t0 = time.perf_counter()
import prefect
from prefect import flow
t1 = time.perf_counter()

@flow(persist_result=False)
def empty() -> None:
    pass

empty()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def prefect_fixed_cost(env: Dict[str, str], runs: int) -> Dict[str, Any]:
    """Prefect's price before and after any step: ``import prefect``; one empty flow run, created and finished."""
    imports, runs_s = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", FIXED_COST], env=env, capture_output=True, text=True, check=True)
        first, second = out.stdout.split()
        imports.append(float(first))
        runs_s.append(float(second))
    return {"import": _stats(imports), "empty_flow_run": _stats(runs_s)}


def run(runs: int = 5, steps: int = STEPS) -> Dict[str, Any]:
    """Measure; return the numbers (nothing asserted)."""
    with tempfile.TemporaryDirectory(prefix="lute-bench-flows-") as temp:
        folder = Path(temp)
        work = folder / "work"
        work.mkdir()
        config = folder / "config.yaml"
        config.write_text(
            yaml.safe_dump_all([{**HEADER, "work_dir": str(work)}, TEST], sort_keys=False, explicit_start=True)
        )
        chain = folder / "chain.yaml"
        chain.write_text(chain_dag(steps))
        fan = folder / "fan.yaml"
        fan.write_text(fan_dag(steps))
        with prefect_server(folder) as url:
            env = {**os.environ, **PREFECT_ENV, "PREFECT_API_URL": url, "PREFECT_HOME": str(folder / "prefect")}
            for name in ("LUTE_TASKS_PATH", "LUTE_SITE", "LUTE_SITES_DIR", "LUTE_FLOW_NODE_SERVER"):
                env.pop(name, None)
            cli = lute_kernel_cmd()
            flow_cmd = [*cli, "flow", "run", str(chain), "-c", str(config), "--backend", "local"]
            loop = f"for i in $(seq {steps}); do {' '.join(cli)} run Test -c {config} >/dev/null || exit 1; done"
            loop_cmd = ["bash", "-c", loop]
            threads_env = {**env, "LUTE_FLOW_NODE_SERVER": "0"}
            load_before = [round(x, 2) for x in os.getloadavg()]
            _timed(flow_cmd, env)  # warm-ups: page caches, the server's first queries
            _timed(loop_cmd, env)
            flows, loops = [], []
            for _ in range(runs):
                flows.append(_timed(flow_cmd, env))
                loops.append(_timed(loop_cmd, env))
            in_threads = [_timed(flow_cmd, threads_env) for _ in range(max(2, runs // 2))]
            fan_cmd = [*cli, "flow", "run", str(fan), "-c", str(config), "--backend", "local"]
            fan_default = [_timed(fan_cmd, env) for _ in range(max(2, runs // 2))]
            fan_wide = [_timed([*fan_cmd, "--max-parallel", str(steps)], env) for _ in range(max(2, runs // 2))]
            fixed = prefect_fixed_cost(env, max(3, runs))
            load_after = [round(x, 2) for x in os.getloadavg()]
    flow_median, loop_median = statistics.median(flows), statistics.median(loops)
    return {
        "steps": steps,
        "runs": runs,
        "flow_chain": _stats(flows),
        "run_loop": _stats(loops),
        "ratio": flow_median / loop_median,
        "target_ratio": TARGET_RATIO,
        "flow_chain_in_threads": _stats(in_threads),
        "fan_out_default_parallel": _stats(fan_default),
        "fan_out_parallel_20": _stats(fan_wide),
        "prefect_fixed": fixed,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    n = result["steps"]
    flow, loop = result["flow_chain"]["median_s"], result["run_loop"]["median_s"]
    print(f"flows: {n} sequential no-op steps, {result['runs']} interleaved runs each (medians)")
    print(f"  flow run --backend local : {flow:6.2f} s ({flow / n * 1e3:.0f} ms per step, start-up included)")
    print(f"  {n} x lute-kernel run     : {loop:6.2f} s ({loop / n * 1e3:.0f} ms per run)")
    print(f"  ratio                    : {result['ratio']:.2f}x (target <= {result['target_ratio']}x)")
    threads = result["flow_chain_in_threads"]["median_s"]
    print(f"  same flow, Tasks started from the flow's threads (LUTE_FLOW_NODE_SERVER=0: exec): {threads:.2f} s")
    fixed = result["prefect_fixed"]
    print(
        f"  Prefect's fixed start-up : import {fixed['import']['median_s'] * 1e3:.0f} ms,"
        f" an empty flow run {fixed['empty_flow_run']['median_s'] * 1e3:.0f} ms (created, heartbeat, finished)"
    )
    print(
        f"  {n}-wide fan-out          : {result['fan_out_default_parallel']['median_s']:.2f} s"
        f" (--max-parallel = {result['cpus']} CPUs),"
        f" {result['fan_out_parallel_20']['median_s']:.2f} s (--max-parallel {n})"
    )
    print(f"  load average {result['load_average_before']} -> {result['load_average_after']}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each side (interleaved)")
    args = parser.parse_args(argv)
    report(run(max(args.runs, 3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
