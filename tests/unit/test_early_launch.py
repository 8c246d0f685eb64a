"""The early start: a repeated `run` starts its launch before validation, keeps it only if it is the plan.

And leaves nothing behind otherwise.

The local runtime's worker is forked, so these runs set ``LUTE_NO_FORK=1``: the worker is exec'd,
as a container is, and the early start applies to it (containers: tests/integration/test_apptainer_early_start.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from conftest import REPO
from e2e import processes_marked
from hypothesis import given, settings
from hypothesis import strategies as st

from lute_kernel import launch_memo
from lute_kernel.early_launch import StartedLaunch
from lute_kernel.execution import ExecutionSettings
from lute_kernel.plan import LaunchPlan

EARLY = "early start: validated while it starts"
"""The profile's line of a run that adopted its early start."""
VOLATILE = ("id", "timestamp", "prov.start", "prov.end", "prov.pid", "prov.pid_start", "prov.argv")
SECTION = {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}}


@pytest.fixture
def early_env(cli_env: Dict[str, str], tmp_path: Path) -> Dict[str, str]:
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {**cli_env, "LUTE_NO_FORK": "1", "XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": str(runs)}
    env.pop("LUTE_NO_EARLY_START", None)
    return env


def _run(config: Path, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "lute_kernel.cli", "run", "Test", "-c", str(config), "--profile"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def _rows(db_file: Path, also: Tuple[str, ...] = ()) -> List[Tuple[Any, ...]]:
    with sqlite3.connect(db_file) as db:
        cursor = db.execute('SELECT * FROM "Test" ORDER BY id')
        names = [d[0] for d in cursor.description]
        keep = [i for i, name in enumerate(names) if name not in VOLATILE + also]
        return [tuple(row[i] for i in keep) for row in cursor.fetchall()]


def _memo_files(env: Dict[str, str]) -> List[Path]:
    return sorted((Path(env["XDG_CACHE_HOME"]) / "lute-kernel" / "launches").glob("*.json"))


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.splitlines()[-1].split(" in ")[0] if done.stdout else ""


def test_a_repeated_run_adopts_its_early_start_and_records_what_a_cold_run_records(
    make_config: Callable[..., Path], early_env: Dict[str, str], work_dir: Path
) -> None:
    config = make_config(SECTION)
    first = _run(config, early_env)
    assert first.returncode == 0, first.stderr
    assert EARLY not in first.stderr  # nothing kept yet
    assert len(_memo_files(early_env)) == 1
    second = _run(config, early_env)
    assert second.returncode == 0, second.stderr
    assert EARLY in second.stderr
    without = _run(config, {**early_env, "LUTE_NO_EARLY_START": "1"})
    assert without.returncode == 0 and EARLY not in without.stderr
    assert _last_line(first) == _last_line(second) == _last_line(without)
    rows = _rows(work_dir / "lute.db")
    assert len(rows) == 3 and rows[0] == rows[1]
    same = _rows(work_dir / "lute.db", also=("exec_cfg_id",))  # the third's env has one more LUTE_* variable
    assert same[0] == same[1] == same[2]
    assert os.listdir(early_env["TMPDIR"]) == []  # every run directory removed


def test_an_edited_config_starts_as_always_and_is_kept_again(
    make_config: Callable[..., Path], early_env: Dict[str, str], work_dir: Path
) -> None:
    config = make_config(SECTION)
    assert _run(config, early_env).returncode == 0
    text = config.read_text().replace("int_var: 1", "int_var: 2")
    config.write_text(text)
    edited = _run(config, early_env)
    assert edited.returncode == 0, edited.stderr
    assert EARLY not in edited.stderr  # the config's stamp changed: nothing started early
    again = _run(config, early_env)
    assert EARLY in again.stderr
    assert [row for row in _rows(work_dir / "lute.db")][1] == _rows(work_dir / "lute.db")[2]


def _tamper(memo: Path, change: Callable[[Dict[str, Any]], None]) -> None:
    kept = json.loads(memo.read_text())
    change(kept["launch"])
    memo.write_text(json.dumps(kept))


TAMPERS: Dict[str, Callable[[Dict[str, Any], str], None]] = {
    "argv": lambda launch, mark: launch["argv"].insert(1, "-B"),
    "env": lambda launch, mark: launch["env"].update(LUTE_EARLY_TEST="changed"),
    "cwd": lambda launch, mark: launch.update(cwd="/"),
    "max_bytes": lambda launch, mark: launch.update(max_bytes=launch["max_bytes"] - 1),
    "prefix": lambda launch, mark: launch.update(prefix="OTHER_"),
    "private_dirs": lambda launch, mark: launch.update(private_dirs=["extra"]),
    "ipc_endpoint": lambda launch, mark: launch.update(ipc_endpoint=launch["ipc_endpoint"] + "x"),
    "launcher": lambda launch, mark: launch.update(launcher="srun"),  # and stopped as a step would be
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
def test_a_kept_launch_that_is_not_the_plan_is_killed_and_the_run_starts_as_always(
    field: str, make_config: Callable[..., Path], early_env: Dict[str, str], work_dir: Path
) -> None:
    config = make_config(SECTION)
    assert _run(config, early_env).returncode == 0
    (memo,) = _memo_files(early_env)
    mark = f"early-test-{uuid.uuid4().hex}"

    def change(launch: Dict[str, Any]) -> None:
        TAMPERS[field](launch, mark)
        launch["env"]["LUTE_EARLY_MARK"] = mark  # finds the early process, if one survived

    _tamper(memo, change)
    done = _run(config, early_env)
    assert done.returncode == 0, done.stderr
    assert EARLY not in done.stderr  # started, found different, discarded
    assert processes_marked(mark) == []
    assert os.listdir(early_env["TMPDIR"]) == []
    first, second = _rows(work_dir / "lute.db")
    assert first == second
    assert mark not in memo.read_text()  # the run kept its own launch instead
    assert EARLY in _run(config, early_env).stderr


def test_bad_input_with_a_started_launch_exits_2_and_leaves_nothing(
    make_config: Callable[..., Path], early_env: Dict[str, str], work_dir: Path
) -> None:
    config = make_config(SECTION)
    assert _run(config, early_env).returncode == 0
    (memo,) = _memo_files(early_env)
    config.write_text(config.read_text().replace("int_var: 1", "int_var: not a number"))
    mark = f"early-test-{uuid.uuid4().hex}"
    kept = json.loads(memo.read_text())
    kept["config_stamp"] = launch_memo.file_stamp(str(config))  # as if the edit kept the stamp: it starts
    kept["launch"]["env"]["LUTE_EARLY_MARK"] = mark
    memo.write_text(json.dumps(kept))
    done = _run(config, early_env)
    without = _run(config, {**early_env, "LUTE_NO_EARLY_START": "1"})
    assert done.returncode == without.returncode == 2
    assert done.stderr.splitlines()[-1] == without.stderr.splitlines()[-1]
    assert processes_marked(mark) == []
    assert os.listdir(early_env["TMPDIR"]) == []
    assert len(_rows(work_dir / "lute.db")) == 1


def test_an_early_start_is_never_tried_for_skip_done(
    make_config: Callable[..., Path], early_env: Dict[str, str]
) -> None:
    config = make_config(SECTION)
    argv = [sys.executable, "-m", "lute_kernel.cli", "run", "Test", "-c", str(config), "--skip-done", "--profile"]
    for _ in range(2):
        done = subprocess.run(argv, capture_output=True, text=True, env=early_env, cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr
        assert EARLY not in done.stderr
    assert _memo_files(early_env) == []


# --- The comparison itself, over generated launches -------------------------------------------------

_text = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=12)
_names = st.text("ABCDEFGHIJ_", min_size=1, max_size=6)


@st.composite
def _launches(draw: Any) -> Tuple[Dict[str, Any], str]:
    run_dir = "/runs/lute-" + draw(st.text("0123456789abcdef", min_size=12, max_size=12))
    argv = draw(st.lists(_text, min_size=1, max_size=5))
    if draw(st.booleans()):
        argv.append(f"{run_dir}:/lute/ipc")  # a bind of the run directory, as a container's argv has
    record = {
        "launcher": "direct",
        "argv": argv,
        "env": draw(st.dictionaries(_names, _text, max_size=4)),
        "cwd": draw(st.sampled_from(["/work", run_dir, "/"])),
        "run_root": "/runs",
        "ipc_endpoint": draw(st.sampled_from([f"ipc://{run_dir}/s", "ipc:///lute/ipc/s"])),
        "prefix": draw(st.sampled_from(["", "APPTAINERENV_"])),
        "private_dirs": draw(st.sampled_from([[], ["shm"]])),
        "max_bytes": draw(st.integers(1, 2**40)),
    }
    return record, run_dir


def _plan(launch: Dict[str, Any], run_dir: str) -> Tuple[LaunchPlan, ExecutionSettings]:
    plan = LaunchPlan(
        argv=tuple(launch["argv"]),
        env=dict(launch["env"]),
        cwd=launch["cwd"],
        runtime="apptainer",
        launcher="direct",
        run_dir=run_dir,
        ipc_endpoint=launch["ipc_endpoint"],
        task_env_prefix=launch["prefix"],
        private_dirs=tuple(launch["private_dirs"]),
    )
    return plan, ExecutionSettings(timeout_s=60, max_bytes=launch["max_bytes"])


class _Running:
    pid = 0

    def poll(self) -> None:
        return None


def _started(launch: Dict[str, Any], run_dir: str) -> StartedLaunch:
    started = StartedLaunch(launch, run_dir, "0" * 32)
    started.proc = _Running()  # type: ignore[assignment]
    started.server = object()  # type: ignore[assignment]
    return started


@settings(max_examples=60, deadline=None)
@given(_launches())
def test_a_kept_launch_made_concrete_is_the_launch_it_was_kept_from(drawn: Tuple[Dict[str, Any], str]) -> None:
    concrete, run_dir = drawn
    record = launch_memo.launch_record(
        launcher=concrete["launcher"],
        argv=concrete["argv"],
        env=concrete["env"],
        cwd=concrete["cwd"],
        run_dir=run_dir,
        ipc_endpoint=concrete["ipc_endpoint"],
        prefix=concrete["prefix"],
        private_dirs=concrete["private_dirs"],
        max_bytes=concrete["max_bytes"],
    )
    assert run_dir not in json.dumps(record)  # each run has its own: the memo keeps a marker
    again = launch_memo.for_run_dir(json.loads(json.dumps(record)), run_dir)
    assert {k: again[k] for k in concrete if k != "run_root"} == {k: concrete[k] for k in concrete if k != "run_root"}
    other = launch_memo.for_run_dir(record, "/other/lute-run")
    assert run_dir not in json.dumps(other)


FIELDS = ("argv", "env", "cwd", "ipc_endpoint", "prefix", "private_dirs", "max_bytes", "run_dir", "launcher")


@settings(max_examples=80, deadline=None)
@given(_launches(), st.sampled_from(FIELDS), st.data())
def test_a_plan_that_differs_in_any_field_does_not_match(
    drawn: Tuple[Dict[str, Any], str], field: str, data: st.DataObject
) -> None:
    launch, run_dir = drawn
    plan, limits = _plan(launch, run_dir)
    started = _started(launch, run_dir)
    assert started.matches(plan, limits)
    changed: Dict[str, Any] = {
        "argv": (*plan.argv, data.draw(_text)),
        "env": {**plan.env, data.draw(_names): "\u2603" + data.draw(_text)},
        "cwd": plan.cwd + "/x",
        "ipc_endpoint": plan.ipc_endpoint + "x",
        "task_env_prefix": plan.task_env_prefix + "X_",
        "private_dirs": (*plan.private_dirs, "other"),
        "run_dir": run_dir + "0",
        "launcher": data.draw(st.sampled_from(["srun", "mpirun"])),
    }
    from dataclasses import replace

    if field == "max_bytes":
        assert not started.matches(plan, replace(limits, max_bytes=limits.max_bytes + 1))
    elif field == "prefix":
        assert not started.matches(replace(plan, task_env_prefix=changed["task_env_prefix"]), limits)
    else:
        assert not started.matches(replace(plan, **{field: changed[field]}), limits)
    assert not started.matches(plan, replace(limits, transport="tcp"))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text, lambda inner: st.lists(inner) | st.dictionaries(_text, inner)
)


@settings(max_examples=60, deadline=None)
@given(_json)
def test_a_damaged_or_foreign_memo_is_a_miss_never_an_error(value: Any) -> None:
    key = uuid.uuid4().hex
    before = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        try:
            path = Path(launch_memo._path(key))
            path.parent.mkdir(parents=True)
            for kept in (value, {"format": launch_memo.FORMAT, "config": __file__, "launch": value}):
                path.write_text(json.dumps(kept))
                assert launch_memo.recall(key) is None  # no stamp of its config: never a launch
                path.write_text(json.dumps(kept)[:-1])
                assert launch_memo.recall(key) is None
        finally:
            if before is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = before


def test_the_command_key_names_the_line_folder_and_environment_but_not_a_shells_bookkeeping() -> None:
    env = {"PATH": "/bin", "OLDPWD": "/a", "_": "/usr/bin/lute-kernel"}
    key = launch_memo.command_key(["run", "Test", "-c", "x.yaml"], "/w", env)
    assert key == launch_memo.command_key(["run", "Test", "-c", "x.yaml"], "/w", {**env, "OLDPWD": "/b", "_": "y"})
    assert key != launch_memo.command_key(["run", "Test", "-c", "y.yaml"], "/w", env)
    assert key != launch_memo.command_key(["run", "Test", "-c", "x.yaml"], "/v", env)
    assert key != launch_memo.command_key(["run", "Test", "-c", "x.yaml"], "/w", {**env, "PATH": "/usr/bin"})


def test_a_slurm_step_starts_early_only_inside_an_allocation() -> None:
    from lute_kernel.early_launch import early_launcher

    assert early_launcher("direct", {})
    assert early_launcher("srun", {"SLURM_JOB_ID": "42"})
    assert not early_launcher("srun", {})  # it would submit a job of its own
    assert not early_launcher("srun", {"SLURM_JOB_ID": ""})
    assert not early_launcher("mpirun", {"SLURM_JOB_ID": "42"})


def test_a_run_from_a_deleted_folder_runs_as_without_an_early_start(
    make_config: Callable[..., Path], early_env: Dict[str, str], tmp_path: Path
) -> None:
    config = make_config(SECTION)
    gone = tmp_path / "gone"
    gone.mkdir()
    code = (
        f"import os, runpy, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r});"
        "sys.argv = ['lute-kernel', *sys.argv[1:]]; runpy.run_module('lute_kernel.cli', run_name='__main__')"
    )
    argv = [sys.executable, "-c", code, "run", "Test", "-c", str(config)]
    done = subprocess.run(argv, capture_output=True, text=True, env=early_env, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Test: COMPLETED" in done.stdout


_FAULTS = ("command_key", "recall", "spawn", "bind", "remember", "forget")


@settings(max_examples=len(_FAULTS) * 3, deadline=None)
@given(st.sampled_from(_FAULTS), st.sampled_from([OSError, ValueError, RuntimeError]))
def test_a_fault_anywhere_in_an_early_start_is_no_early_start_never_an_error(fault: str, error: type) -> None:
    from unittest import mock

    from lute_kernel import early_launch

    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise error(f"injected into {fault}")

    record = launch_memo.launch_record(
        launcher="direct", argv=["/bin/sleep", "30"], env={}, cwd="/", run_dir="/x/lute-0", ipc_endpoint="ipc:///x/s",
        prefix="", private_dirs=[], max_bytes=1024,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as root:
        record["run_root"] = root
        targets = {
            "command_key": (launch_memo, "command_key"),
            "recall": (launch_memo, "recall"),
            "spawn": (early_launch.StartedLaunch, "spawn"),
            "bind": (early_launch.StartedLaunch, "bind"),
            "remember": (launch_memo, "remember"),
            "forget": (launch_memo, "forget"),
        }
        owner, name = targets[fault]
        with mock.patch.object(launch_memo, "recall", return_value=record), mock.patch.object(owner, name, boom):
            early = early_launch.EarlyStart.begin(["run", "X", "-c", "x.yaml"], {})
            plan, limits = _plan(launch_memo.for_run_dir(record, os.path.join(root, "lute-1")), "/elsewhere")
            early.keep("x.yaml", plan, {"task": "X"}, limits)
            early.keep("x.yaml", plan, None, limits)  # not repeatable: forget
            started = early.started
            early.close()
        assert os.listdir(root) == []  # a started launch's folder is gone, whatever failed
        if started is not None and started.proc is not None:
            assert started.proc.poll() is not None  # and its process


@pytest.mark.parametrize("target", ["file", "folder"])
def test_a_memo_others_may_write_is_never_used(target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    config = tmp_path / "x.yaml"
    config.write_text("x")
    record = launch_memo.launch_record(
        launcher="direct", argv=["/bin/true"], env={}, cwd="/", run_dir="/r/lute-0", ipc_endpoint="ipc:///r/s",
        prefix="", private_dirs=[], max_bytes=1,
    )  # fmt: skip
    launch_memo.remember("k", str(config), record)
    assert launch_memo.recall("k") is not None
    path = Path(launch_memo._path("k"))
    (path if target == "file" else path.parent).chmod(0o777 if target == "folder" else 0o666)
    assert launch_memo.recall("k") is None
