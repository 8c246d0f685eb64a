"""The sbatch script of a submission (lute_kernel.slurm.script): exact text, quoting sbatch reads back."""

from __future__ import annotations

import shlex

import pytest

from lute_kernel.errors import InputError
from lute_kernel.slurm.resources import JobResources
from lute_kernel.slurm.script import directive_value, render_script, sbatch_options, slurm_filename

COMMAND = ["/venv/bin/python", "-m", "lute_kernel.cli", "run", "Test", "-c", "/cfg/test.yaml", "--site", "local"]


def test_script_text_is_exact() -> None:
    job = JobResources(job_name="Test", ntasks=2, cpus_per_task=1, partition="debug", time="4")
    assert render_script(job, "/work/.lute/slurm/Test-%j.out", COMMAND, version="0.1.0") == (
        "#!/bin/bash\n"
        "#SBATCH --job-name=Test\n"
        "#SBATCH --ntasks=2\n"
        "#SBATCH --cpus-per-task=1\n"
        "#SBATCH --partition=debug\n"
        "#SBATCH --time=4\n"
        "#SBATCH --output=/work/.lute/slurm/Test-%j.out\n"
        "# Written by lute-kernel 0.1.0 (`lute-kernel submit`): runs one Task with `lute-kernel run`.\n"
        "# The kernel keeps one task of the allocation; an MPI Task's ranks run in the others (srun).\n"
        "# exec: the kernel is the job's main process, so Slurm's SIGTERM (scancel, time limit) reaches it\n"
        "# and it records the run within Slurm's KillWait.\n"
        "exec /venv/bin/python -m lute_kernel.cli run Test -c /cfg/test.yaml --site local\n"
    )


def test_every_option_in_order() -> None:
    job = JobResources(
        job_name="SmallDataPsana2",
        ntasks=5,
        cpus_per_task=2,
        nodes=2,
        gpus=1,
        partition="milano",
        account="lcls:xpptut15",
        time="1-02:00:00",
        extra_args=("--qos=preemptable", "--exclusive", "--constraint=a&b"),
    )
    assert sbatch_options(job, "/w/x-%j.out") == [
        "--job-name=SmallDataPsana2",
        "--nodes=2",
        "--ntasks=5",
        "--cpus-per-task=2",
        "--gpus=1",
        "--partition=milano",
        "--account=lcls:xpptut15",
        "--time=1-02:00:00",
        "--output=/w/x-%j.out",
        "--qos=preemptable",
        "--exclusive",
        '--constraint="a&b"',
    ]


def test_the_command_is_quoted_word_by_word() -> None:
    command = ["/my venv/bin/python", "-m", "lute_kernel.cli", "run", "Test", "-c", "/cfg/it's $HOME; rm -rf x.yaml"]
    job = JobResources(job_name="Test", ntasks=2)
    last = render_script(job, "/w/Test-%j.out", command, version="0").splitlines()[-1]
    assert last.startswith("exec ")
    assert shlex.split(last[len("exec ") :]) == command


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("debug", "debug"),
        ("lcls:xpptut15", "lcls:xpptut15"),
        ("/w/out-%j.out", "/w/out-%j.out"),
        ("/my work/out", '"/my work/out"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a\\b", '"a\\\\b"'),
        ("it's", '"it\'s"'),  # sbatch does not know single quotes: double quotes hold them
        ("#1", '"#1"'),  # unquoted, '#' would start a comment
    ],
)
def test_directive_values_are_written_for_sbatchs_parser(value: str, written: str) -> None:
    assert directive_value(value) == written


def test_a_line_break_cannot_reach_a_directive() -> None:
    with pytest.raises(InputError, match="line break"):
        directive_value("debug\n#SBATCH --exclusive")


def test_literal_percent_signs_are_escaped_in_filenames() -> None:
    assert slurm_filename("/data/100%/w") == "/data/100%%/w"
