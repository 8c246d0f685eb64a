"""R6 container isolation: what a containerised Task can see and do of the host, tried for real.

Each case runs the real CLI (``--runtime apptainer``, the smoke image) or the runtime's own argv,
and counts once in the figures (``record("R6 container isolation", tried, ok)``). Promised: a host
variable off the allowlist is absent inside; the host's $HOME is not there; the bound kernel is
read-only; no value is shell-evaluated (``--no-eval``: ``$(cmd)`` arrives literally and runs
nothing), through ``--env`` and through ``APPTAINERENV_*`` (the MPI rank shim's way in); the run's
token is never in any process's argv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # figures (tests/conftest.py may do this too)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))  # e2e helpers
from conftest import REPO, run_cli
from e2e import LiveRun, isolated_env, only_row, processes_marked, run_dirs, wait_gone
from figures import record

pytestmark = [pytest.mark.integration, pytest.mark.apptainer, pytest.mark.reliability]

ITEM = "R6 container isolation"

EVIL_VALUES = [
    "$(touch {dir}/pwned-subst)",
    "`touch {dir}/pwned-backtick`",
    "${{X:-$(touch {dir}/pwned-default)}}",
    "x; touch {dir}/pwned-semicolon",
    "$(( $(touch {dir}/pwned-arith) 1 + 1 ))",
    "'$(touch {dir}/pwned-quoted)'",
]

OFF_THE_LIST = {
    "HIDDEN_HOST_VAR": "from-the-host",
    "AWS_SECRET_ACCESS_KEY": "hunter2",
    "LD_PRELOAD": "/nonexistent/evil.so",
    "VIRTUAL_ENV": "/host/venv",
    "LUTEX": "a prefix is not a pattern",
}


class Cases:
    """Counts cases; asserts at the end, after the figures are recorded, so a failure still counts."""

    def __init__(self) -> None:
        self.failed: List[str] = []
        self.tried = 0

    def check(self, ok: bool, what: str) -> None:
        self.tried += 1
        if not ok:
            self.failed.append(what)

    def finish(self) -> None:
        record(ITEM, self.tried, self.tried - len(self.failed))
        assert self.failed == [], self.failed


@pytest.fixture(scope="module")
def smoke() -> str:
    """Build (or link) the smoke image; return what apptainer runs."""
    built = subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", "images", "build", "smoke"], cwd=REPO, text=True, capture_output=True
    )
    assert built.returncode == 0, built.stdout + built.stderr
    from lute_kernel.images import find_image
    from lute_kernel.sites import load_site

    return str(find_image("smoke", load_site()).runnable)


@pytest.fixture
def env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    return isolated_env(cli_env, tmp_path / "tmp", LUTE_TEST_MARKER=uuid.uuid4().hex)


def probe(make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str], **section: Any) -> Dict[str, Any]:
    cfg = make_config({"ProbeEnvironment": section})
    done = run_cli("run", "ProbeEnvironment", "-c", str(cfg), "--runtime", "apptainer", env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    payload = json.loads(only_row(work_dir, "ProbeEnvironment")["result.payload"])
    assert payload["in_container"] is True
    return payload


def test_host_variables_off_the_allowlist_are_absent_inside(
    smoke: str, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    inside = probe(make_config, work_dir, {**env, **OFF_THE_LIST, "PYTHONPATH": "/host/site"})["env"]
    cases = Cases()
    for name in OFF_THE_LIST:
        cases.check(name not in inside, f"{name} reached the container")
    cases.check(inside.get("PYTHONPATH") != "/host/site", "the host's PYTHONPATH reached the container")
    cases.check(inside.get("PATH", "") != env["PATH"], "the host's PATH reached the container")
    cases.check(inside.get("LUTE_TEST_MARKER") == env["LUTE_TEST_MARKER"], "an allowlisted LUTE_* variable is missing")
    cases.finish()


def test_the_host_home_is_not_there(
    smoke: str, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    secret = Path.home() / f".lute-r6-{uuid.uuid4().hex}"
    secret.write_text("host only\n")
    try:
        payload = probe(make_config, work_dir, env, host_file=str(secret))
    finally:
        secret.unlink()
    cases = Cases()
    cases.check(payload["host_file_visible"] is False, "a file in the host's $HOME is visible inside")
    cases.finish()


def test_the_bound_kernel_is_read_only(
    smoke: str, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    payload = probe(make_config, work_dir, env)
    cases = Cases()
    cases.check(payload["kernel_writable"] is False, "the Task could write into the bound lute_kernel")
    cases.check((work_dir / "probe.txt").is_file(), "work_dir is not writable inside (the control case)")
    cases.finish()


def test_no_value_is_shell_evaluated_through_env(
    smoke: str, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    values = {f"LUTE_EVIL_{i}": v.format(dir=work_dir) for i, v in enumerate(EVIL_VALUES)}
    inside = probe(make_config, work_dir, {**env, **values})["env"]
    cases = Cases()
    for name, value in values.items():
        cases.check(inside.get(name) == value, f"{name} arrived as {inside.get(name)!r}, not {value!r}")
    pwned = sorted(p.name for p in work_dir.glob("pwned-*"))
    cases.check(pwned == [], f"commands ran inside the container: {pwned}")
    cases.finish()


PROBE = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('R6_')}))"


def test_no_value_is_shell_evaluated_through_apptainerenv(smoke: str, tmp_path: Path) -> None:
    """The MPI rank shim hands each rank's launcher variables in as APPTAINERENV_*: they must arrive literally."""
    from lute_kernel.plan import ProcessSpec
    from lute_kernel.runtimes.apptainer import ApptainerRuntime
    from lute_kernel.sites import load_site
    from lute_kernel.task import Resources

    marks = tmp_path / "marks"
    marks.mkdir()
    spec = ProcessSpec(argv=("{python}", "-c", PROBE), cwd=str(marks), image="smoke", writable_paths=(str(marks),))
    runtime = ApptainerRuntime(load_site())
    values = {f"R6_{i}": v.format(dir=marks) for i, v in enumerate(EVIL_VALUES)}
    cases = Cases()

    def run_probe(ranks: int, argv_probe: str, extra: Dict[str, str]) -> Dict[str, str]:
        ranked = replace(spec, argv=("{python}", "-c", argv_probe), resources=Resources(ranks=ranks))
        argv = runtime.wrap(replace(ranked, env=runtime.task_environment(ranked, {})))
        done = subprocess.run(
            argv,
            env={**runtime.environment(ranked, dict(os.environ)), **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        cases.check(done.returncode == 0, f"the probe failed (ranks={ranks}): {done.stderr[-500:]}")
        return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {}

    # APPTAINERENV_* given to apptainer directly.
    inside = run_probe(1, PROBE, {f"APPTAINERENV_{k}": v for k, v in values.items()})
    cases.check(inside == values, f"APPTAINERENV_ values changed on the way in: {inside}")
    # The rank shim's way in, as srun gives one rank its variables: SLURM_* -> APPTAINERENV_SLURM_* -> inside.
    slurm = {f"SLURM_{k}": v for k, v in values.items()}
    inside = run_probe(2, PROBE.replace("'R6_'", "'SLURM_R6_'"), {**slurm, "PMI_RANK": "0"})
    cases.check(inside == slurm, f"the rank shim's values changed on the way in: {inside}")
    pwned = sorted(p.name for p in marks.glob("pwned-*"))
    cases.check(pwned == [], f"commands ran inside the container: {pwned}")
    cases.finish()


def test_the_run_token_is_never_in_argv(
    smoke: str, make_config: Callable[..., Path], work_dir: Path, env: Dict[str, str]
) -> None:
    cfg = make_config({"FaultSleep": {"seconds": 60, "spawn_child": True}})
    marker = f"LUTE_TEST_MARKER={env['LUTE_TEST_MARKER']}\0"
    cases = Cases()
    with LiveRun("run", "FaultSleep", "-c", str(cfg), "--runtime", "apptainer", env=env) as run:
        run.wait_for("sleeping", timeout=90)
        pids = [*processes_marked(marker), run.proc.pid]
        tokens = set()
        for pid in pids:
            try:
                for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    if entry.startswith((b"APPTAINERENV_LUTE_IPC_TOKEN=", b"LUTE_IPC_TOKEN=")):
                        tokens.add(entry.split(b"=", 1)[1])
            except OSError:
                continue
        cases.check(len(tokens) == 1, f"expected the one run token in the processes' environment, found {len(tokens)}")
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            cases.check(not any(token in cmdline for token in tokens), f"the token is in the argv of pid {pid}")
        run.proc.terminate()
        run.finish()
    assert run_dirs(Path(env["TMPDIR"])) == []
    assert [pid for pid in processes_marked(marker) if not wait_gone(pid)] == []
    cases.finish()
