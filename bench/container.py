"""Container overhead: `lute-kernel run Test --runtime apptainer` vs a bare `apptainer exec smoke.sif python3 -c pass`.

Interleaved runs (a, b, c, d, a, b, …) after one untimed warm-up each, as whole subprocesses:
  (a) the kernel running the Test Task (sleep_secs 0) in the smoke image,
  (b) the issue's baseline: `apptainer exec <smoke.sif> python3 -c pass` (same isolation flags),
  (c) the same from what the kernel actually runs (the unpacked copy on `images.run_from: sandbox` sites),
  (d) what any containerised worker pays at least: `apptainer exec … python3 -c "import lute_kernel.worker"`
      with the kernel bound in, from the same image the kernel runs.
Plus the no-op rebuild time of `lute-kernel images build` (what `just build-images` runs) with
every image up to date.

    python bench/container.py [--runs 12]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from overhead import REPO, TEST_PARAMS, bench_env, lute_kernel_cmd, stats, timed, write_config  # noqa: E402

TARGET_RATIO = 1.3
FLAGS = ["--containall", "--cleanenv", "--no-home"]


def _image(name: str) -> Dict[str, Any]:
    from lute_kernel.images import find_image
    from lute_kernel.sites import load_site

    site = load_site()
    image = find_image(name, site)
    return {
        "sif": str(image.sif),
        "runnable": str(image.runnable),  # the unpacked copy on sites with images.run_from: sandbox
        "sha256": image.sha256,
        "binary": site.apptainer.binary,
    }


def compare(runs: int, work_dir: Path) -> Dict[str, Any]:
    """Time the three commands interleaved; return their stats and the ratios."""
    image = _image("smoke")
    env = bench_env()
    config = write_config(work_dir, {"Test": TEST_PARAMS})
    kernel_pkg = str(REPO / "lute_kernel")
    commands = {
        "kernel": [*lute_kernel_cmd(), "run", "Test", "-c", str(config), "--runtime", "apptainer"],
        "bare": [image["binary"], "exec", *FLAGS, image["sif"], "python3", "-c", "pass"],
        "bare_runnable": [image["binary"], "exec", *FLAGS, image["runnable"], "python3", "-c", "pass"],
        "worker_imports": [
            image["binary"], "exec", *FLAGS, "--bind", f"{kernel_pkg}:{kernel_pkg}:ro",
            "--env", f"PYTHONPATH={REPO}", image["runnable"], "python3", "-c", "import lute_kernel.worker",
        ],
    }  # fmt: skip
    samples: Dict[str, List[float]] = {name: [] for name in commands}
    for argv in commands.values():
        timed(argv, env)  # warm-up: page cache, image mount paths
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(timed(argv, env))
    result: Dict[str, Any] = {name: stats(values) for name, values in samples.items()}
    result["runs"] = runs
    result["image"] = image
    result["commands"] = {name: " ".join(argv) for name, argv in commands.items()}
    result["ratio"] = result["kernel"]["median_s"] / result["bare"]["median_s"]
    result["ratio_vs_bare_runnable"] = result["kernel"]["median_s"] / result["bare_runnable"]["median_s"]
    result["ratio_vs_worker_imports"] = result["kernel"]["median_s"] / result["worker_imports"]["median_s"]
    result["target_ratio"] = TARGET_RATIO
    return result


def noop_rebuild(repeats: int = 5) -> Dict[str, float]:
    """Time `lute-kernel images build` when nothing changed (every image skipped)."""
    argv = [*lute_kernel_cmd(), "images", "build"]
    env = bench_env()
    subprocess.run(argv, env=env, cwd=REPO, capture_output=True, check=True)  # make sure all are built
    return stats([timed(argv, env) for _ in range(repeats)])


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    print(f"container: {result['runs']} interleaved runs each, image {result['image']['sif']}")
    for name in ("kernel", "bare", "bare_runnable", "worker_imports"):
        s = result[name]
        median, low, high = (s[k] * 1e3 for k in ("median_s", "min_s", "max_s"))
        print(f"  {name:<15} median {median:7.1f} ms   min {low:7.1f}   max {high:7.1f}")
        print(f"  {'':<15} $ {result['commands'][name]}")
    verdict = "meets" if result["ratio"] <= TARGET_RATIO else "MISSES"
    print(f"  ratio kernel/bare = {result['ratio']:.2f}x ({verdict} the {TARGET_RATIO}x target)")
    print(f"  ratio kernel/bare from the unpacked image = {result['ratio_vs_bare_runnable']:.2f}x")
    print(f"  ratio kernel/worker-imports-only = {result['ratio_vs_worker_imports']:.2f}x")
    rebuild = result.get("noop_rebuild")
    if rebuild:
        print(f"  no-op `lute-kernel images build`: median {rebuild['median_s'] * 1e3:.0f} ms")


def run(runs: int = 12) -> Dict[str, Any]:
    """Run the comparison and the no-op rebuild."""
    with tempfile.TemporaryDirectory(prefix="lute-bench-") as tmp:
        result = compare(runs, Path(tmp))
    result["noop_rebuild"] = noop_rebuild()
    return result


def main(argv: Sequence[str] = ()) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args(list(argv) or None)
    result = run(max(args.runs, 10))
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
