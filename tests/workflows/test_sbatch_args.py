"""Raw sbatch options (lute_kernel.slurm.sbatch_args): read as upstream's submit script takes them, passed as given."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar, List

import pytest
from typer.testing import CliRunner

from lute_kernel.cli import app
from lute_kernel.errors import InputError
from lute_kernel.sites import SlurmSettings
from lute_kernel.slurm.resources import JobRequest, merge_resources
from lute_kernel.slurm.sbatch_args import SbatchArgs, parse_sbatch_args, split_slurm_params
from lute_kernel.slurm.script import render_script
from lute_kernel.slurm.submission import prepare_submission
from lute_kernel.task import Resources, Task

TEST = {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}}}


class Plain(Task):
    """A plain Task."""


class MpiTwo(Task):
    """An MPI Task whose own default is 2 ranks."""

    mpi = True
    resources: ClassVar[Resources] = Resources(ranks=2)


class MpiAtLeastThree(Task):
    """An MPI Task that needs 3 ranks."""

    mpi = True
    min_ranks = 3


def test_options_are_read_in_every_form() -> None:
    parsed = parse_sbatch_args(
        ["--partition=milano", "-A", "lcls:data", "-n5", "--nodes", "1-2", "--exclusive", "-c", "2", "-t", "10"]
    )
    assert (parsed.partition, parsed.account, parsed.ntasks, parsed.nodes, parsed.cpus_per_task, parsed.time) == (
        "milano",
        "lcls:data",
        5,
        1,
        2,
        "10",
    )
    assert parsed.args[0] == "--partition=milano" and parsed.task_count() == 5
    assert parse_sbatch_args(["--nodes=2", "--ntasks-per-node=73"]).task_count() == 146
    assert parse_sbatch_args(["--exclusive", "--overcommit"]).task_count() is None
    assert parse_sbatch_args(["-p", "a", "--partition=b"]).partition == "b"  # the last one wins, as in sbatch
    assert not SbatchArgs() and parse_sbatch_args([]).args == ()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ntasks"], "sbatch option --ntasks needs a value"),
        (["-n"], "sbatch option -n needs a value"),
        (["--ntasks=0"], "--ntasks must be a positive whole number, not '0'"),
        (["--ntasks=many"], "--ntasks must be a positive whole number"),
        (["--nodes=x"], "--nodes must be N or MIN-MAX"),
        (["milano"], "'milano' is not an sbatch option"),
        (["--output=/tmp/x"], "--output cannot be given here: lute-kernel writes the job's output"),
        (["-o", "x"], "--output cannot be given here"),
        (["--wrap", "echo"], "--wrap cannot be given here"),
        (["-W"], "--wait cannot be given here"),
        (["--partition="], "--partition needs a value"),
    ],
)
def test_bad_options_are_input_errors(args: List[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_sbatch_args(args)


def test_slurm_params_split_like_a_shell() -> None:
    assert split_slurm_params("--comment='two words' -p  milano") == ["--comment=two words", "-p", "milano"]
    with pytest.raises(InputError, match="No closing quotation"):
        split_slurm_params("--comment='open")


def test_an_mpi_tasks_ranks_are_the_allocations_tasks_minus_the_kernels() -> None:
    site = SlurmSettings(partition="debug")
    job = merge_resources(MpiTwo, site, JobRequest(), parse_sbatch_args(["--ntasks=5"]))
    assert (job.ntasks, job.ranks) == (5, 4)  # not the Task's own 2
    job = merge_resources(MpiTwo, site, JobRequest(), parse_sbatch_args(["--nodes=1", "--ntasks-per-node=73"]))
    assert (job.ntasks, job.ranks, job.nodes) == (73, 72, 1)
    assert merge_resources(MpiTwo, site, JobRequest(), parse_sbatch_args(["--exclusive"])).ranks is None
    plain = merge_resources(Plain, site, JobRequest(), parse_sbatch_args(["--ntasks=5", "-p", "milano"]))
    assert (plain.ntasks, plain.ranks, plain.partition) == (5, None, "milano")
    with pytest.raises(InputError, match=r"MpiAtLeastThree needs at least 3 MPI ranks .* give 3 task\(s\)"):
        merge_resources(MpiAtLeastThree, site, JobRequest(), parse_sbatch_args(["--ntasks=3"]))
    assert merge_resources(Plain, site, JobRequest(), parse_sbatch_args(["--nodes=3"])).ntasks == 3


def test_the_script_notes_the_raw_options_and_agrees_with_them() -> None:
    job = merge_resources(MpiTwo, SlurmSettings(), JobRequest(), parse_sbatch_args(["--ntasks=4", "--overcommit"]))
    script = render_script(job, "/w/%j.out", ["python", "run"], version="0", sbatch_args=["--ntasks=4", "--overcommit"])
    assert "#SBATCH --ntasks=4\n" in script
    assert "# Submitted with: sbatch --parsable --ntasks=4 --overcommit <this script>\n" in script


def test_submit_takes_raw_options_after_the_double_dash(
    make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LUTE_SITE", raising=False)
    config = make_config(TEST)
    submission = prepare_submission("Tester", config, sbatch_args=["--ntasks=3", "--partition=debug", "--overcommit"])
    assert submission.sbatch.args == ("--ntasks=3", "--partition=debug", "--overcommit")
    assert (submission.resources.ntasks, submission.resources.partition) == (3, "debug")
    result = CliRunner().invoke(
        app, ["submit", "Tester", "-c", str(config), "--dry-run", "--", "--ntasks=3", "--comment=a b"]
    )
    assert result.exit_code == 0, result.output
    assert "#SBATCH --ntasks=3\n" in result.output
    assert "# Submitted with: sbatch --parsable --ntasks=3 '--comment=a b' <this script>" in result.output
    bad = CliRunner().invoke(app, ["submit", "Tester", "-c", str(config), "--dry-run", "--", "--output=x"])
    assert bad.exit_code == 2 and "--output cannot be given here" in bad.output
