"""Submitting (lute_kernel.slurm.submission, commands, follow; ``lute-kernel submit``) against fake Slurm commands.

The fakes are small scripts on PATH: ``sbatch`` logs its argv, keeps a copy of the script and
prints a job id (or fails as told); ``scontrol`` answers one state per call from a list. The real
cluster is tested in tests/integration/test_slurm_submit.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List

import pytest
from conftest import TEST_TASKS
from typer.testing import CliRunner

from lute_kernel.cli import app
from lute_kernel.errors import InputError
from lute_kernel.slurm.commands import (
    JobState,
    SlurmError,
    parse_sacct_job,
    parse_scontrol_job,
    query_job,
    submit_script,
)
from lute_kernel.slurm.follow import OutputTail, follow_job
from lute_kernel.slurm.resources import JobRequest
from lute_kernel.slurm.submission import prepare_submission, submit

TEST = {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}}

FAKE_SBATCH = """#!/bin/bash
printf '%s\\n' "$*" >> "$FAKE_SLURM/sbatch.argv"
cp "${@: -1}" "$FAKE_SLURM/submitted.sbatch"
if [[ -n "${FAKE_SBATCH_ERROR:-}" ]]; then echo "$FAKE_SBATCH_ERROR" >&2; exit 1; fi
echo "4242;lute"
"""
# One line of $FAKE_SLURM/states per call: "STATE EXIT:SIGNAL"; the last line repeats.
FAKE_SCONTROL = """#!/bin/bash
printf '%s\\n' "$*" >> "$FAKE_SLURM/scontrol.argv"
if [[ "$*" != "show job --oneliner 4242" ]]; then echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1; fi
line=$(head -n1 "$FAKE_SLURM/states")
(( $(wc -l < "$FAKE_SLURM/states") > 1 )) && sed -i 1d "$FAKE_SLURM/states"
read -r state code <<< "$line"
echo "JobId=4242 JobName=Test UserId=root(0) JobState=$state Reason=None Dependency=(null) ExitCode=$code WorkDir=/a b"
"""


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake sbatch and scontrol first on PATH; their logs in the returned folder."""
    folder = tmp_path / "fake-slurm"
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("sbatch", FAKE_SBATCH), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (folder / "states").write_text("PENDING 0:0\nRUNNING 0:0\nCOMPLETING 0:0\nCOMPLETED 0:0\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(folder))
    monkeypatch.setenv("LUTE_TASKS_PATH", str(TEST_TASKS))
    monkeypatch.delenv("LUTE_SITE", raising=False)
    return folder


@pytest.fixture
def fast_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A site profile that polls every 10 ms."""
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "lab.yaml").write_text(
        "kill_grace_seconds: 5\nslurm:\n  partition: debug\n  extra_args: ['--qos=normal']\n  poll_seconds: 0.01\n"
    )
    monkeypatch.setenv("LUTE_SITES_DIR", str(sites))
    return "lab"


def _logged(fake: Path, name: str) -> List[str]:
    log = fake / f"{name}.argv"
    return log.read_text().splitlines() if log.exists() else []


def test_prepare_and_submit(fake_slurm: Path, fast_site: str, make_config: Callable[..., Path], work_dir: Path) -> None:
    cfg = make_config(TEST, task_timeout=60)
    submission = prepare_submission("Tester", cfg, JobRequest(cpus_per_task=2), site=fast_site)
    assert submission.resources.job_name == "Test"  # the alias resolves to the Task
    assert submission.resources.time == "4"  # 60 s + 5 s grace + 2 min, in whole minutes
    assert submission.command[1:] == ["-m", "lute_kernel.cli", "run", "Test", "-c", str(cfg), "--site", "lab"]
    assert _logged(fake_slurm, "sbatch") == []  # preparing submits nothing, writes nothing
    assert not (work_dir / ".lute").exists()

    job = submit(submission)
    assert job.job_id == "4242"
    assert job.output_path == work_dir / ".lute" / "slurm" / "Test-4242.out"
    assert job.script_path.parent == work_dir / ".lute" / "slurm"
    assert _logged(fake_slurm, "sbatch") == [f"--parsable {job.script_path}"]
    submitted = (fake_slurm / "submitted.sbatch").read_text()
    assert submitted == submission.script == job.script_path.read_text()
    assert submitted.splitlines()[1:8] == [
        "#SBATCH --job-name=Test",
        "#SBATCH --ntasks=2",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --partition=debug",
        "#SBATCH --time=4",
        f"#SBATCH --output={work_dir}/.lute/slurm/Test-%j.out",
        "#SBATCH --qos=normal",
    ]


def test_bad_config_submits_nothing(fake_slurm: Path, make_config: Callable[..., Path], work_dir: Path) -> None:
    cfg = make_config({"Test": {"sleep_secs": -1, "compound_var": {"int_var": 1}}})
    with pytest.raises(InputError, match="sleep_secs"):
        prepare_submission("Test", cfg)
    result = CliRunner().invoke(app, ["submit", "Test", "-c", str(cfg)])
    assert result.exit_code == 2, result.output
    assert "sleep_secs" in result.output
    assert _logged(fake_slurm, "sbatch") == []
    assert not (work_dir / ".lute").exists()


def test_bad_resources_submit_nothing(fake_slurm: Path, make_config: Callable[..., Path]) -> None:
    cfg = make_config(TEST)
    result = CliRunner().invoke(app, ["submit", "Test", "-c", str(cfg), "--time", "soon"])
    assert result.exit_code == 2
    assert "error: --time 'soon' is not a Slurm time" in result.output
    assert _logged(fake_slurm, "sbatch") == []


def test_dry_run_prints_the_script_and_submits_nothing(
    fake_slurm: Path, fast_site: str, make_config: Callable[..., Path], work_dir: Path
) -> None:
    cfg = make_config(TEST)
    result = CliRunner().invoke(app, ["submit", "Test", "-c", str(cfg), "--site", fast_site, "--dry-run", "-n", "1"])
    assert result.exit_code == 0, result.output
    assert result.output == prepare_submission("Test", cfg, JobRequest(ntasks=1), site=fast_site).script
    assert "#SBATCH --ntasks=1\n" in result.output
    assert _logged(fake_slurm, "sbatch") == []
    assert not (work_dir / ".lute").exists()


def test_submit_without_wait(fake_slurm: Path, make_config: Callable[..., Path], work_dir: Path) -> None:
    cfg = make_config(TEST)
    result = CliRunner().invoke(app, ["submit", "Test", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert result.output == f"submitted Test as Slurm job 4242; output {work_dir}/.lute/slurm/Test-4242.out\n"
    assert _logged(fake_slurm, "scontrol") == []


@pytest.mark.parametrize(
    ("states", "exit_code", "ending"),
    [
        ("PENDING 0:0\nRUNNING 0:0\nCOMPLETING 0:0\nCOMPLETED 0:0\n", 0, "ended COMPLETED (exit code 0)"),
        ("RUNNING 0:0\nFAILED 1:0\n", 1, "ended FAILED (exit code 1)"),
        ("RUNNING 0:0\nCANCELLED 0:15\n", 1, "ended CANCELLED (exit code 0, signal 15)"),
        ("RUNNING 0:0\nTIMEOUT 0:1\n", 1, "ended TIMEOUT (exit code 0, signal 1)"),
    ],
)
def test_wait_follows_states_and_output(
    fake_slurm: Path,
    fast_site: str,
    make_config: Callable[..., Path],
    work_dir: Path,
    states: str,
    exit_code: int,
    ending: str,
) -> None:
    (fake_slurm / "states").write_text(states)
    out = work_dir / ".lute" / "slurm" / "Test-4242.out"
    out.parent.mkdir(parents=True)
    out.write_text("INFO    Test message 0\nTest: COMPLETED in 0.1 s\n")
    cfg = make_config(TEST)
    result = CliRunner().invoke(app, ["submit", "Test", "-c", str(cfg), "--site", fast_site, "--wait"])
    assert result.exit_code == exit_code, result.output
    seen = [line.split()[3] for line in result.output.splitlines() if line.startswith("slurm: job 4242 ")]
    assert seen == [line.split()[0] for line in states.splitlines()[:-1]] + ["ended"]
    assert "INFO    Test message 0\nTest: COMPLETED in 0.1 s\n" in result.output
    assert result.output.rstrip().endswith(f"slurm: job 4242 {ending}; output {out}")


def test_sbatch_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(
        SlurmError, match=r"Slurm is not installed here \(no 'sbatch' on PATH\): scripts/start-slurm.sh"
    ):
        submit_script(tmp_path / "x.sbatch")


def test_sbatch_missing_from_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_config: Callable[..., Path]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # python runs by absolute path; nothing else is needed
    cfg = make_config(TEST)
    result = CliRunner().invoke(app, ["submit", "Test", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "error: Slurm is not installed here (no 'sbatch' on PATH): scripts/start-slurm.sh" in result.output


def test_sbatch_rejecting_shows_its_stderr(
    fake_slurm: Path, monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Path]
) -> None:
    monkeypatch.setenv("FAKE_SBATCH_ERROR", "sbatch: error: invalid partition specified: nope")
    cfg = make_config(TEST)
    result = CliRunner().invoke(app, ["submit", "Test", "-c", str(cfg), "-p", "nope"])
    assert result.exit_code == 1
    assert "error: sbatch rejected the job: sbatch: error: invalid partition specified: nope" in result.output


def test_scontrol_forgetting_the_job_falls_back_to_sacct(fake_slurm: Path) -> None:
    sacct = fake_slurm / "bin" / "sacct"
    sacct.write_text('#!/bin/bash\necho "CANCELLED by 0|0:15|None"\n')
    sacct.chmod(0o755)
    assert query_job("17") == JobState("CANCELLED", "", 0, 15)
    sacct.write_text("#!/bin/bash\necho 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1\n")
    assert query_job("17") == JobState("UNKNOWN", "Slurm no longer knows the job")
    assert query_job("17").final


def test_parse_scontrol_and_sacct() -> None:
    text = "JobId=7 JobName=a b JobState=PENDING Reason=Resources Dependency=(null) ExitCode=0:0 Command=/x y\n"
    assert parse_scontrol_job(text) == JobState("PENDING", "Resources", 0, 0)
    assert not parse_scontrol_job(text).final
    assert parse_scontrol_job("JobId=7 JobState=FAILED Reason=NonZeroExitCode ExitCode=2:0").final
    with pytest.raises(SlurmError, match="no JobState"):
        parse_scontrol_job("garbage")
    assert parse_sacct_job("") is None
    assert parse_sacct_job("TIMEOUT|0:0|TimeLimit\n") == JobState("TIMEOUT", "TimeLimit", 0, 0)


def test_follow_streams_whole_lines_and_the_rest_at_the_end(tmp_path: Path) -> None:
    out = tmp_path / "job.out"
    states = iter(["PENDING", "RUNNING", "RUNNING", "COMPLETED"])
    writes = iter([b"", b"one\ntw", b"o\nthr", b"ee"])
    seen: List[str] = []

    def query(job_id: str) -> JobState:
        with open(out, "ab") as handle:
            handle.write(next(writes))
        return JobState(next(states), exit_code=0)

    sleeps: List[float] = []
    final = follow_job(
        "9",
        out,
        poll_seconds=0.25,
        on_state=lambda s: seen.append(f"state {s.state}"),
        on_output=lambda text: seen.append(f"out {text!r}"),
        query=query,
        sleep=sleeps.append,
    )
    assert final == JobState("COMPLETED", exit_code=0)
    assert seen == [
        "state PENDING",
        "out 'one\\n'",
        "state RUNNING",
        "out 'two\\n'",
        "out 'three'",
        "state COMPLETED",
    ]
    assert sleeps == [0.25, 0.25, 0.25]


def test_follow_is_bounded(tmp_path: Path) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(SlurmError, match="job 9 is still PENDING after 3 s; it goes on"):
        follow_job(
            "9",
            tmp_path / "none.out",
            poll_seconds=1.0,
            on_state=lambda s: None,
            on_output=lambda t: None,
            max_wait_s=3,
            query=lambda job_id: JobState("PENDING"),
            sleep=sleep,
            clock=lambda: now[0],
        )
    assert now[0] == 3.0


def test_output_tail_without_a_file(tmp_path: Path) -> None:
    tail = OutputTail(tmp_path / "later.out")
    assert tail.read() == ""
    (tmp_path / "later.out").write_bytes(b"a\nb")
    assert (tail.read(), tail.read(final=True), tail.read(final=True)) == ("a\n", "b", "")
