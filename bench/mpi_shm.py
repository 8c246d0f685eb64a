"""Intra-node MPI bandwidth between two containerised ranks: MPICH kept off shared memory vs a shared /dev/shm.

The same 2-rank ping-pong (mpi4py, 8 MB messages, 40 round trips) under `mpirun -n 2 apptainer exec`
with the flags the kernel uses for MPI ranks (`--contain --cleanenv --no-home`, the kernel's
`rank.env` for each rank's PMI variables), in the psana2 image, two ways, interleaved:
  (a) before: every container has its own /dev/shm, so MPICH runs with MPIR_CVAR_NOLOCAL=1;
  (b) after: one private folder of the run bound at /dev/shm in both ranks (what the kernel does now).

    python bench/mpi_shm.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

PINGPONG = """
import time, numpy as np
from mpi4py import MPI
c = MPI.COMM_WORLD; r = c.Get_rank()
buf = np.ones(8 << 20, dtype=np.uint8); n = 40
c.Barrier(); t = time.perf_counter()
for _ in range(n):
    if r == 0: c.Send(buf, 1); c.Recv(buf, 1)
    else: c.Recv(buf, 0); c.Send(buf, 0)
dt = time.perf_counter() - t
if r == 0: print(2 * n * buf.nbytes / dt / 1e6)
"""


def _argv(image: str, work: Path, shared: bool) -> List[str]:
    from lute_kernel.runtimes.apptainer import RANK_ENV_FILE

    argv = ["mpirun", "-n", "2", "apptainer", "exec", "--no-eval", "--contain", "--cleanenv", "--no-home"]
    argv += ["--env-file", str(RANK_ENV_FILE), "--bind", str(work)]
    argv += ["--bind", f"{work / 'shm'}:/dev/shm"] if shared else ["--env", "MPIR_CVAR_NOLOCAL=1"]
    return [*argv, image, "python3", str(work / "pingpong.py")]


def run(runs: int) -> Dict[str, Any]:
    """Return both sides' MB/s (medians) and the ratio."""
    from lute_kernel.images import find_image
    from lute_kernel.sites import load_site

    image = str(find_image("psana2", load_site()).runnable)
    sides: Dict[str, List[float]] = {"nolocal": [], "shared_shm": []}
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="lute-shm-bench-") as tmp:
        work = Path(tmp)
        (work / "pingpong.py").write_text(PINGPONG)
        (work / "shm").mkdir(mode=0o700)
        for _ in range(runs):
            for name, shared in (("nolocal", False), ("shared_shm", True)):
                done = subprocess.run(_argv(image, work, shared), capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    raise RuntimeError(f"{name}: {done.stderr[-500:]}")
                sides[name].append(float(done.stdout.split()[-1]))
    medians = {k: statistics.median(v) for k, v in sides.items()}
    return {
        "runs": runs,
        "nolocal_mb_s": round(medians["nolocal"]),
        "shared_shm_mb_s": round(medians["shared_shm"]),
        "ratio": round(medians["shared_shm"] / medians["nolocal"], 2),
        "samples": sides,
        "load": [load_before, round(os.getloadavg()[0], 2)],
    }


def report(result: Dict[str, Any]) -> None:
    """Print one line."""
    print(
        f"MPI intra-node bandwidth (2 ranks, 8 MB ping-pong, {result['runs']} interleaved runs, medians): "
        f"{result['nolocal_mb_s']} MB/s with MPIR_CVAR_NOLOCAL=1 (before) vs {result['shared_shm_mb_s']} MB/s "
        f"with the run's shared /dev/shm (now): {result['ratio']}x"
    )


def main(argv: Sequence[str] = ()) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(list(argv))
    result = run(args.runs)
    report(result)
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The before/after line as a row of the table (not a target of issue 11)."""
    return [
        {
            "id": "-",
            "measure": "MPI intra-node bandwidth, 2 ranks in containers, 8 MB ping-pong",
            "kernel": f"{result['shared_shm_mb_s']:,} MB/s (shared /dev/shm, now)",
            "baseline": f"{result['nolocal_mb_s']:,} MB/s (MPIR_CVAR_NOLOCAL=1, before)",
            "ratio": result["ratio"],
            "target": "-",
            "verdict": "-",
            "load": None,
        }
    ]
