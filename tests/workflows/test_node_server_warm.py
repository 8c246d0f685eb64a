"""The node server imports, once, what every step's kernel would otherwise import after its fork."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flows.backends.node_server import WARM_MODULES

REPO = Path(__file__).resolve().parents[2]


def test_every_warm_module_exists_and_a_run_needs_nothing_else_from_db_or_images(tmp_path: Path) -> None:
    # In a fresh interpreter: warm as the server does, run one Task as a step's child does, and
    # list the kernel modules that were still imported after the warm-up.
    code = """
import sys
from lute_kernel import api, executor, worker
from flows.backends.node_server import _import_what_runs_need, WARM_MODULES
_import_what_runs_need()
missing = [m for m in WARM_MODULES if m not in sys.modules]
before = set(sys.modules)
cfg = sys.argv[1]
outcome = api.run_prepared(api.prepare("Test", cfg))
late = sorted(m for m in set(sys.modules) - before if m.startswith(("lute_kernel.db", "lute_kernel.images", "peewee")))
print("MISSING", missing, "LATE", late, outcome.status.value)
"""
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "%YAML 1.3\n---\ntitle: t\nexperiment: xpptut15\nrun: 1\ndate: 2026/01/01\nlute_version: 0.1\n"
        f"task_timeout: 600\nwork_dir: {tmp_path}\n...\n---\n"
        "Test:\n  sleep_secs: 0\n  compound_var: {int_var: 1}\n...\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "MISSING [] LATE [] COMPLETED"
    assert len(WARM_MODULES) == len(set(WARM_MODULES))
