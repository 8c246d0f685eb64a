"""P8: start-up with 40 Task modules on LUTE_TASKS_PATH vs the same with 8; `--help` and `tasks` times.

Generates realistic Task modules (``task_module``: one Task each, a Parameters model of 10
fields with descriptions, bounds, a nested group and a validator, a ``run()`` importing its heavy
package inside) into two temporary folders, 8 and 40 modules, each with its own cache folder
(``XDG_CACHE_HOME``: the source index and the catalogue are cached there). Interleaved, warm
caches (one untimed warm-up each): ``lute-kernel run Test`` with either folder on the path (the
ratio 40/8 is the target), and ``lute-kernel --help`` and ``lute-kernel tasks`` with 40 modules
(absolute times). Then the first ``tasks`` after an edit: one generated module rewritten (new
mtime and size) before each timed ``tasks``.

    python bench/catalogue.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    TEST_PARAMS,
    bench_env,
    interleaved,
    lute_kernel_cmd,
    ms,
    run_checked,
    side_by_side,
    timed,
    write_config,
)

TARGET_RATIO = 1.05
TARGET_MS = 300.0
COUNTS = (8, 40)


def task_module(index: int, revision: int = 0) -> str:
    """The source of generated Task module ``index`` (``revision`` changes a default: an edit)."""
    name = f"GeneratedTask{index:02d}"
    return f'''"""Generated for the catalogue benchmark: {name}, a Task with a realistic Parameters model."""

from __future__ import annotations

from typing import Dict, List, Literal, Optional

from pydantic import field_validator

from lute_kernel.parameters import ParameterGroup, TaskParameters, param
from lute_kernel.task import Task


class {name}(Task):
    """Reduce detector {index}'s images to a radial profile (generated)."""

    image = "base"
    aliases = ("Generated{index:02d}",)

    class Parameters(TaskParameters):
        """Parameters of ``{name}``."""

        class Mask(ParameterGroup):
            """Where the mask comes from."""

            path: Optional[str] = param(None, "A mask file (HDF5 or numpy); none: no mask.")
            threshold: float = param(0.5, "Pixels above this fraction of the maximum are masked.", ge=0, le=1)

        detector: str = param("epix10k2M", "Detector whose images are reduced.")
        run_range: List[int] = param([], "Runs to read (empty: the header's run).")
        n_bins: int = param({100 + revision}, "Radial bins.", ge=1, le=100_000)
        q_min: float = param(0.0, "Smallest q (1/A).", ge=0)
        q_max: float = param(4.0, "Largest q (1/A).", gt=0)
        method: Literal["splitpixel", "bbox", "csr"] = param("csr", "pyFAI integration method.")
        normalize: bool = param(True, "Divide each image by its monitor value.")
        monitor: Optional[str] = param(None, "Monitor detector (normalize: required).")
        mask: Mask = param(Mask(), "Mask settings.")
        extra: Dict[str, str] = param({{}}, "Options passed to the integrator unchanged.")
        out_file: str = param("", "Output HDF5 (default: under work_dir).", is_result=True)

        @field_validator("q_max")
        @classmethod
        def _q_range(cls, value: float) -> float:
            if value > 100:
                raise ValueError(f"q_max {{value}} is beyond any detector")
            return value

    def run(self) -> None:
        """Reduce (not really: the benchmark only imports this module)."""
        import json  # a heavy package would be imported here, inside run()

        self.result.summary = json.dumps({{"bins": self.params.n_bins}})
'''


def make_modules(folder: Path, count: int) -> Path:
    """Write ``count`` generated Task modules into ``folder`` (made); return it."""
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"generated_{index:02d}.py").write_text(task_module(index))
    return folder


def run(runs: int = 15, edits: int = 5) -> Dict[str, Any]:
    """Measure P8; return the numbers."""
    cli = lute_kernel_cmd()
    with tempfile.TemporaryDirectory(prefix="lute-bench-p8-") as tmp:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        config = write_config(work, {"Test": TEST_PARAMS})
        envs = {
            n: bench_env(
                {"LUTE_TASKS_PATH": str(make_modules(root / f"tasks{n}", n)), "XDG_CACHE_HOME": str(root / f"cache{n}")}
            )
            for n in COUNTS
        }
        listed = run_checked([*cli, "tasks"], envs[40]).stdout  # fills the cache; and shows they are all there
        found = sum(f"Generated{i:02d}" in listed for i in range(40))  # the aliases: rich cuts long names
        env40 = envs[40]
        run_test = [*cli, "run", "Test", "-c", str(config)]
        commands = {"run_8": run_test, "run_40": run_test, "help_40": [*cli, "--help"], "tasks_40": [*cli, "tasks"]}
        result: Dict[str, Any] = interleaved(commands, runs, env40, envs={"run_8": envs[8]})
        after_edit: List[float] = []
        module = Path(envs[40]["LUTE_TASKS_PATH"]) / "generated_07.py"
        for revision in range(1, edits + 1):
            module.write_text(task_module(7, revision))
            after_edit.append(timed([*cli, "tasks"], env40))
    result.update(side_by_side(result["run_40"], result["run_8"]))
    result["tasks_after_edit"] = {"median": statistics.median(after_edit), "samples": after_edit}
    result.update(runs=runs, listed_generated=found, target_ratio=TARGET_RATIO, target_ms=TARGET_MS)
    return result


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """P8's rows: the start-up ratio, and the absolute times of --help and tasks."""
    h, t, e = result["help_40"]["median"], result["tasks_40"]["median"], result["tasks_after_edit"]["median"]
    return [
        {
            "id": "P8",
            "measure": "`run Test` start-up, 40 Task modules on the path",
            "kernel": ms(result["run_40"]["median"]),
            "baseline": ms(result["run_8"]["median"]) + " (8 modules)",
            "ratio": result["ratio"],
            "target": f"<= {TARGET_RATIO}x ({result['added_ms']:+.0f} ms)",
            "verdict": "meets" if result["ratio"] <= TARGET_RATIO else "MISSES",
            "load": result["load"],
        },
        {
            "id": "P8",
            "measure": "`lute-kernel --help`, 40 modules, warm cache",
            "kernel": ms(h),
            "baseline": "-",
            "ratio": None,
            "target": f"< {TARGET_MS:.0f} ms",
            "verdict": "meets" if h * 1000 < TARGET_MS else "MISSES",
            "load": result["load"],
        },
        {
            "id": "P8",
            "measure": "`lute-kernel tasks`, 40 modules, warm cache",
            "kernel": ms(t),
            "baseline": "-",
            "ratio": None,
            "target": f"< {TARGET_MS:.0f} ms",
            "verdict": "meets" if t * 1000 < TARGET_MS else "MISSES",
            "load": result["load"],
        },
        {
            "id": "-",
            "measure": "first `lute-kernel tasks` after editing one module",
            "kernel": ms(e),
            "baseline": "-",
            "ratio": None,
            "target": "-",
            "verdict": "-",
            "load": None,
        },
    ]


def report(result: Dict[str, Any]) -> None:
    """Print the numbers."""
    print(
        f"P8 catalogue: {result['runs']} interleaved runs each (load {result['load'][0]} -> {result['load'][1]});"
        f" `tasks` listed {result['listed_generated']} of the 40 generated Tasks"
    )
    for name in ("run_8", "run_40", "help_40", "tasks_40"):
        s = result[name]
        print(f"  {name:<9} median {ms(s['median'])}  min {ms(s['min'])}")
    print(f"  run Test 40/8 = {result['ratio']:.3f}x ({result['added_ms']:+.0f} ms)")
    print(f"  first `tasks` after an edit: {ms(result['tasks_after_edit']['median'])}")


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
