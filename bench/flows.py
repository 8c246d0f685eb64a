"""Flows, local runtime (an extra row): 20 no-op steps through ``flow run --backend local`` vs 20 ``lute-kernel run``.

Both sides report to one running Prefect server (``prefect_server``: started here on 127.0.0.1
unless PREFECT_API_URL names one; ``flow_containers`` (P4) shares it) and are whole commands,
interleaved after a warm-up each: the flow of a DAG of 20 sequential ``Tester`` nodes (Test with
``sleep_secs: 0``), and a loop of the same 20 ``lute-kernel run Test``. Beside it: Prefect's fixed
price (``import prefect``; an empty flow run created and finished), which every flow pays once.
``--all`` adds the same chain with ``LUTE_FLOW_NODE_SERVER=0`` (each worker exec'd from the
flow's threads) and a 20-wide fan-out.

    python bench/flows.py [--runs 5] [--all]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    TEST_PARAMS,
    bench_env,
    interleaved,
    load,
    lute_kernel_cmd,
    stats,
    timed,
    write_config,
)

TARGET_RATIO = 1.0
STEPS = 20
PREFECT_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false"}


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
def prefect_server(folder: Path) -> Iterator[Dict[str, str]]:
    """Yield the environment of commands that report to one running Prefect server ($PREFECT_API_URL's, or ours)."""
    env = bench_env({**PREFECT_ENV, "PREFECT_HOME": str(folder / "prefect")})
    env.pop("LUTE_FLOW_NODE_SERVER", None)
    if os.environ.get("PREFECT_API_URL"):
        yield env
        return
    import requests

    port = _free_port()
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
        yield {**env, "PREFECT_API_URL": url}
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


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


def prefect_fixed_cost(env: Mapping[str, str], runs: int) -> Dict[str, Any]:
    """Prefect's price before and after any step: ``import prefect``; one empty flow run, created and finished."""
    imports, runs_s = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", FIXED_COST], env=dict(env), capture_output=True, text=True, check=True
        )
        first, second = out.stdout.split()
        imports.append(float(first))
        runs_s.append(float(second))
    return {"import": stats(imports), "empty_flow_run": stats(runs_s)}


def run_in(
    env: Dict[str, str], folder: Path, runs: int = 5, steps: int = STEPS, extras: bool = False
) -> Dict[str, Any]:
    """Measure the local-runtime chain against a running server (``env`` names it)."""
    work = folder / "local"
    work.mkdir()
    config = write_config(work, {"Test": TEST_PARAMS})
    chain = folder / "chain-local.yaml"
    chain.write_text(chain_dag(steps))
    cli = lute_kernel_cmd()
    flow_cmd = [*cli, "flow", "run", str(chain), "-c", str(config), "--backend", "local", "--runtime", "local"]
    loop = [sys.executable, "-c", _LOOP, str(steps), *cli, "run", "Test", "-c", str(config)]
    result: Dict[str, Any] = interleaved({"flow": flow_cmd, "loop": loop}, runs, env)
    result["ratio"] = result["flow"]["median"] / result["loop"]["median"]
    result.update(steps=steps, runs=runs, target_ratio=TARGET_RATIO)
    result["prefect_fixed"] = prefect_fixed_cost(env, max(3, runs // 2))
    if extras:
        before = load()
        threads = {**env, "LUTE_FLOW_NODE_SERVER": "0"}
        result["flow_in_threads"] = stats([timed(flow_cmd, threads) for _ in range(max(2, runs // 2))])
        fan = folder / "fan.yaml"
        fan.write_text(fan_dag(steps))
        fan_cmd = [*cli, "flow", "run", str(fan), "-c", str(config), "--backend", "local", "--runtime", "local"]
        result["fan_out"] = stats([timed(fan_cmd, env) for _ in range(max(2, runs // 2))])
        result["fan_out_wide"] = stats([timed([*fan_cmd, "--max-parallel", str(steps)], env) for _ in range(2)])
        result["extras_load"] = [before, load()]
    return result


_LOOP = """
import subprocess, sys
for _ in range(int(sys.argv[1])):
    subprocess.run(sys.argv[2:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""
"""Run argv N times in a row (the loop side: no shell string)."""


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The extra row (not a target of issue 11) and Prefect's fixed price."""
    fixed = result["prefect_fixed"]
    return [
        {
            "id": "-",
            "measure": f"{result['steps']}-node flow, local runtime (vs {result['steps']} x `run Test`)",
            "kernel": f"{result['flow']['median']:.2f} s",
            "baseline": f"{result['loop']['median']:.2f} s ({result['steps']} x lute-kernel run)",
            "ratio": result["ratio"],
            "target": f"<= {TARGET_RATIO}x",
            "verdict": "meets" if result["ratio"] <= TARGET_RATIO else "MISSES",
            "load": result["load"],
        },
        {
            "id": "-",
            "measure": "Prefect's fixed price per flow run",
            "kernel": f"import {fixed['import']['median']:.2f} s"
            f" + empty flow run {fixed['empty_flow_run']['median']:.2f} s",
            "baseline": "-",
            "ratio": None,
            "target": "-",
            "verdict": "-",
            "load": None,
        },
    ]


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    n, flow, loop = result["steps"], result["flow"]["median"], result["loop"]["median"]
    print(
        f"flows, local runtime: {n} sequential no-op steps, {result['runs']} interleaved runs each"
        f" (load {result['load'][0]} -> {result['load'][1]})"
    )
    print(f"  flow run --backend local : {flow:6.2f} s ({flow / n * 1e3:.0f} ms per step, start-up included)")
    print(
        f"  {n} x lute-kernel run     : {loop:6.2f} s ({loop / n * 1e3:.0f} ms per run); ratio {result['ratio']:.2f}x"
    )
    fixed = result["prefect_fixed"]
    print(
        f"  Prefect's fixed price: import {fixed['import']['median']:.2f} s, an empty flow run"
        f" {fixed['empty_flow_run']['median']:.2f} s"
    )
    if "flow_in_threads" in result:
        print(
            f"  same chain with LUTE_FLOW_NODE_SERVER=0 (workers exec'd): {result['flow_in_threads']['median']:.2f} s;"
            f" {n}-wide fan-out {result['fan_out']['median']:.2f} s (--max-parallel = CPUs),"
            f" {result['fan_out_wide']['median']:.2f} s (--max-parallel {n})"
        )


def main(argv: Sequence[str] = ()) -> int:
    """Command line: start a server, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each side (interleaved)")
    parser.add_argument("--all", action="store_true", help="also the in-threads chain and the fan-out")
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="lute-bench-flows-") as temp, prefect_server(Path(temp)) as env:
        result = run_in(env, Path(temp), max(args.runs, 2), extras=args.all)
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
