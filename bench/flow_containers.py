"""P4: a 20-node sequential DAG through ``flow run --backend local --runtime apptainer`` vs 20 bare ``apptainer exec``.

The flow (20 ``Tester`` nodes, each the only child of the one before: Test with ``sleep_secs: 0``
in the smoke image) reports to one running Prefect server (``flows.prefect_server``); each step
is a kernel forked from the flow's node server, running its Task in a container. The baseline is
the same Task code in 20 bare containers one after the other: P2's baseline (the kernel's own
``apptainer exec`` argv, the worker replaced by ``Test.run_standalone``) in a loop. Interleaved,
after a warm-up each. The per-node price is the slope: a 1-node flow is timed too, and
``(flow_20 - flow_1) / 19`` minus one bare container is what each further node adds (Prefect's
fixed start-up, paid once per flow, is in the ratio but not in the slope). The same flows are
timed through the warm kernel of flows too (``serve --flows``: Prefect already imported), in the
same rounds.

    python bench/flow_containers.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    COLD,
    TEST_PARAMS,
    baseline_from_plan,
    bench_flows,
    interleaved,
    lute_kernel_cmd,
    prepared_request,
    standalone_code,
    warm_kernel,
    write_config,
)

TARGET_RATIO = 1.2
TARGET_NODE_MS = 40.0
STEPS = 20

_LOOP = """
import json, subprocess, sys
argv = json.loads(sys.argv[2])
for _ in range(int(sys.argv[1])):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""
"""Run the bare container N times in a row (argv as JSON: no shell string)."""


def run_in(env: Dict[str, str], folder: Path, runs: int = 5, steps: int = STEPS) -> Dict[str, Any]:
    """Measure P4 against the running server ``env`` names."""
    flows = bench_flows()
    work = folder / "containers"
    work.mkdir()
    run_dir = work / "run"
    run_dir.mkdir(mode=0o700)
    config = write_config(work, {"Test": TEST_PARAMS})
    chain, single = folder / "chain-containers.yaml", folder / "one-container.yaml"
    chain.write_text(flows.chain_dag(steps))
    single.write_text(flows.chain_dag(1))
    bare = baseline_from_plan(
        prepared_request("Test", config, runtime="apptainer"), run_dir, standalone_code("test", "Test")
    )
    flow = [*lute_kernel_cmd(), "flow", "run", "-c", str(config), "--backend", "local", "--runtime", "apptainer"]
    commands = {
        "flow": [*flow, str(chain)],
        "bare_loop": [sys.executable, "-c", _LOOP, str(steps), json.dumps(bare)],
        "flow_1": [*flow, str(single)],
        "bare_1": bare,
    }
    with warm_kernel(env, flows=True) as served_env:
        served = {"served": commands["flow"], "served_1": commands["flow_1"]}
        result: Dict[str, Any] = interleaved(
            {**commands, **served}, runs, {**env, **COLD}, envs={name: served_env for name in served}
        )
    bare_n = result["bare_loop"]["median"]
    for prefix, flow_n, flow_1 in (
        ("", result["flow"]["median"], result["flow_1"]["median"]),
        ("served_", result["served"]["median"], result["served_1"]["median"]),
    ):
        result[f"{prefix}ratio"] = flow_n / bare_n
        result[f"{prefix}per_node_ms"] = ((flow_n - flow_1) / (steps - 1) - bare_n / steps) * 1000
        result[f"{prefix}per_node_with_startup_ms"] = (flow_n - bare_n) / steps * 1000
    result.update(steps=steps, runs=runs, target_ratio=TARGET_RATIO, target_node_ms=TARGET_NODE_MS)
    profiled = subprocess.run([*commands["flow"], "--profile"], env={**env, **COLD}, capture_output=True, text=True)
    result["step_profile"] = parse_steps_profile(profiled.stderr)  # once, after the timed runs
    result["commands"] = {
        "flow": " ".join(commands["flow"]),
        "bare": " ".join(bare[: bare.index("-c")]) + " -c <Test.run_standalone>",
    }
    return result


_STEPS_LINE = re.compile(r"^  (\S.*?)\s+([0-9.]+) ms  \([0-9]+ steps\)$")


def parse_steps_profile(stderr: str) -> Dict[str, float]:
    """``{phase: median ms}`` from the lines ``flow run --profile`` prints (empty: it printed none)."""
    return {m.group(1): float(m.group(2)) for m in map(_STEPS_LINE.match, stderr.splitlines()) if m}


def meets(result: Dict[str, Any], prefix: str = "") -> bool:
    """P4's verdict: the ratio and the per-node price (``prefix`` ``served_``: with the warm kernel of flows)."""
    return bool(result[f"{prefix}ratio"] <= TARGET_RATIO and result[f"{prefix}per_node_ms"] <= TARGET_NODE_MS)


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """P4's rows: cold, and with the warm kernel of flows (``serve --flows``) when it was measured."""
    n = result["steps"]
    out = []
    for prefix, key, suffix in (("", "flow", ""), ("served_", "served", " — warm kernel (`serve --flows`)")):
        if key not in result:
            continue
        out.append(
            {
                "id": "P4",
                "measure": f"{n}-node sequential flow, containers (local backend){suffix}",
                "kernel": f"{result[key]['median']:.2f} s",
                "baseline": f"{result['bare_loop']['median']:.2f} s ({n} x bare apptainer exec)",
                "ratio": result[f"{prefix}ratio"],
                "target": f"<= {TARGET_RATIO}x; <= {TARGET_NODE_MS:.0f} ms/node"
                f" (+{result[f'{prefix}per_node_ms']:.0f} ms/node)",
                "verdict": "meets" if meets(result, prefix) else "MISSES",
                "load": result["load"],
            }
        )
    return out


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    n = result["steps"]
    print(
        f"P4 flow in containers: {result['runs']} interleaved runs each"
        f" (load {result['load'][0]} -> {result['load'][1]})"
    )
    print(f"  flow, {n} nodes   : {result['flow']['median']:6.2f} s  $ {result['commands']['flow']}")
    print(f"  {n} bare containers: {result['bare_loop']['median']:6.2f} s  $ {result['commands']['bare']}")
    print(
        f"  flow, 1 node     : {result['flow_1']['median']:6.2f} s;"
        f" one bare container {result['bare_1']['median']:.3f} s"
    )
    print(
        f"  ratio {result['ratio']:.2f}x; each further node adds {result['per_node_ms']:.0f} ms over its bare container"
        f" ({result['per_node_with_startup_ms']:.0f} ms with the flow's start-up spread over the {n})"
    )
    if result.get("step_profile"):
        print(f"  where a step's time went (`flow run --profile` of the {n}-node flow, median of each phase):")
        for phase, ms in result["step_profile"].items():
            print(f"    {phase:<40} {ms:8.1f} ms")
    if "served" in result:
        print(
            f"  warm kernel of flows (`serve --flows`): {n} nodes {result['served']['median']:.2f} s,"
            f" 1 node {result['served_1']['median']:.2f} s; ratio {result['served_ratio']:.2f}x,"
            f" each further node {result['served_per_node_ms']:.0f} ms over its bare container"
        )


def main(argv: Sequence[str] = ()) -> int:
    """Command line: start a server, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="lute-bench-p4-") as temp, bench_flows().prefect_server(Path(temp)) as env:
        result = run_in(env, Path(temp), max(args.runs, 2))
    report(result)
    print(json.dumps(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
