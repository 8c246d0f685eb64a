"""Whole-flow validation (flows.validation, flows.runtime.prepare_flow): every error before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from flows.runtime import FlowOptions, prepare_flow, run_number, step_environment
from lute_kernel.errors import InputError
from lute_kernel.registry import discover
from workflows.flow_helpers import UPSTREAM

BASIC = """!LUTE_DAG
task_name: Tester
slurm_params: "--partition=milano --ntasks=1"
next:
- task_name: WriteTester
  next:
  - task_name: ReadTester
"""


@pytest.fixture(scope="module")
def registry() -> Any:
    return discover()


def _prepare(dag: Path, config: Path, registry: Any, **options: Any) -> Any:
    env = {k: v for k, v in options.pop("env", {}).items()}
    mode = options.pop("mode", "run")
    return prepare_flow(FlowOptions(str(dag), str(config), **options), env, registry=registry, mode=mode)


def test_a_later_steps_db_default_is_deferred(
    dag_file: Callable[[str], Path], flow_config: Callable[..., Path], work_dir: Path, registry: Any
) -> None:
    prepared = _prepare(dag_file(BASIC), flow_config(), registry)
    read = prepared.plan.steps[2]
    assert (read.step.label, read.task, read.deferred, read.problems) == (
        "ReadTester",
        "TestReadOutput",
        ("in_file (from TestWriteOutput's row)",),
        (),
    )
    assert prepared.plan.steps[0].argv[1:] == ("-m", "lute_kernel.worker")
    assert not (work_dir / "lute.db").exists()


def test_a_db_default_no_step_before_it_provides_is_an_error(
    dag_file: Callable[[str], Path], flow_config: Callable[..., Path], registry: Any
) -> None:
    dag = dag_file("!LUTE_DAG\ntask_name: Tester\nnext:\n- task_name: ReadTester\n")
    config = flow_config()
    with pytest.raises(InputError) as info:
        _prepare(dag, config, registry)
    message = str(info.value)
    assert message.startswith(f"{config}:")
    assert "Tester > ReadTester: TestReadOutput.in_file: no in_file given" in message
    assert "(TestWriteOutput has no valid row in lute.db, and no step before this one runs it)" in message


@pytest.mark.parametrize(
    ("dag", "sections", "expected"),
    [
        (
            "!LUTE_DAG\ntask_name: Tester\nnext:\n- task_name: WriteTster\n",
            {},
            ":4: Tester > WriteTster: task_name: unknown Task 'WriteTster'. Did you mean WriteTester",
        ),
        (
            "!LUTE_DAG\ntask_name: Tester\nnext:\n- task_name: SocketTester\n",
            {"drop": ("TestSocket",)},
            "Tester > SocketTester: the config has no section 'TestSocket' for this step's Task (SocketTester)",
        ),
        (
            "!LUTE_DAG\n- !param_sweep\n  task_name: SocketTester\n  param_matrix: {num_arays: [1]}\n",
            {},
            ":2: SocketTester_0: param_matrix.num_arays: TestSocket has no parameter 'num_arays'",
        ),
        (
            "!LUTE_DAG\n- !param_sweep\n  task_name: SocketTester\n  param_matrix: {num_arrays: [1, many]}\n",
            {},
            "SocketTester_1: TestSocket.num_arrays: Input should be a valid integer",
        ),
        (
            '!LUTE_DAG\ntask_name: Tester\nslurm_params: "--comment=\'unbalanced"\n',
            {},
            ':1: Tester: slurm_params: cannot split "--comment=\'unbalanced" into sbatch options: No closing quotation',
        ),
        (
            '!LUTE_DAG\ntask_name: Tester\nslurm_params: "--output=x.out"\n',
            {},
            "slurm_params: sbatch option --output cannot be given here",
        ),
        (
            "!LUTE_DAG\ntask_name: Tester\n",
            {"Test": {"sleep_secs": 0, "compound_var": {"int_var": 1}, "no_such": 1}},
            "Tester: Test.no_such: unknown parameter",
        ),
    ],
)
def test_bad_input_is_one_message_naming_file_node_and_field(
    dag_file: Callable[[str], Path],
    flow_config: Callable[..., Path],
    work_dir: Path,
    registry: Any,
    dag: str,
    sections: Dict[str, Any],
    expected: str,
) -> None:
    drop = sections.pop("drop", ())
    config = flow_config(sections, drop=drop)
    with pytest.raises(InputError) as info:
        _prepare(dag_file(dag), config, registry)
    assert expected in str(info.value)
    assert info.value.exit_code == 2
    assert not (work_dir / "lute.db").exists()


def test_unknown_tasks_may_be_allowed(
    dag_file: Callable[[str], Path], flow_config: Callable[..., Path], registry: Any
) -> None:
    dag = dag_file("!LUTE_DAG\ntask_name: Tester\nnext:\n- task_name: PeakFinderXDS\n")
    prepared = _prepare(dag, flow_config(), registry, allow_unknown=True)
    assert prepared.plan.unknown() == {1: "unknown Task (--allow-unknown)"}


def test_several_problems_are_listed_together(
    dag_file: Callable[[str], Path], flow_config: Callable[..., Path], registry: Any
) -> None:
    dag = dag_file("!LUTE_DAG\n- task_name: Nope1\n- task_name: Nope2\n")
    with pytest.raises(InputError, match=r"^2 problems in the flow:\n  .*Nope1: task_name.*\n  .*Nope2: task_name"):
        _prepare(dag, flow_config(), registry)


def test_the_flows_experiment_and_run_reach_every_step(
    dag_file: Callable[[str], Path], make_config: Callable[..., Path], registry: Any
) -> None:
    config = make_config(
        {"Test": {"sleep_secs": 0, "compound_var": {"int_var": "{{ $RUN }}"}, "str_var": "{{ $EXPERIMENT }}"}},
        experiment="{{ $EXPERIMENT }}",
        run="{{ $RUN_NUM }}",
    )
    prepared = _prepare(dag_file("!LUTE_DAG\ntask_name: Tester\n"), config, registry, experiment="mfx1", run="7_2026")
    assert (prepared.host_env["EXPERIMENT"], prepared.host_env["RUN"], prepared.host_env["RUN_NUM"]) == (
        "mfx1",
        "7",
        "7",
    )
    with pytest.raises(InputError, match=r"lute_config\.experiment: environment variable 'EXPERIMENT' used in"):
        _prepare(dag_file("!LUTE_DAG\ntask_name: Tester\n"), config, registry)


def test_deploy_mode_checks_what_does_not_depend_on_the_run(
    dag_file: Callable[[str], Path], make_config: Callable[..., Path], work_dir: Path, registry: Any
) -> None:
    eLog_style = {
        "Test": {"sleep_secs": 0, "compound_var": {"int_var": "{{ $RUN }}"}, "str_var": "run {{ run:04d }}"},
    }
    config = make_config(eLog_style, experiment="{{ $EXPERIMENT }}", run="{{ $RUN }}")
    dag = dag_file("!LUTE_DAG\ntask_name: Tester\n")
    assert _prepare(dag, config, registry, mode="deploy").plan.steps[0].problems == ()
    per_experiment = make_config(eLog_style, work_dir=f"{work_dir}/{{{{ $EXPERIMENT }}}}")
    assert _prepare(dag, per_experiment, registry, mode="deploy").plan.notes == (
        "the config header depends on the run: parameters are checked when the flow runs",
    )
    broken = make_config({"Test": {"compound_var": {"int_var": "{{ $RUN }}"}, "typo": 1}}, run="{{ $RUN }}")
    with pytest.raises(InputError, match=r"Tester: Test\.typo: unknown parameter"):
        _prepare(dag, broken, registry, mode="deploy")


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="../shared/upstream-configs is not here")
def test_upstreams_functional_config_lacks_two_sections_of_its_dag(registry: Any, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        _prepare(
            UPSTREAM / "functional_basic_tests_dag.yaml", UPSTREAM / "functional_basic_tests_config.yaml", registry
        )
    assert "2 problems" in str(info.value)
    assert "WriteTester: the config has no section 'TestWriteOutput'" in str(info.value)


def test_step_environment_drops_secrets_and_sets_the_run() -> None:
    base = {"Authorization": "Bearer x", "RUN_NUM": "12_2026-12-01T10:00:00", "PATH": "/bin"}
    assert step_environment(base, "xpp1", None) == {"PATH": "/bin", "RUN_NUM": "12", "RUN": "12", "EXPERIMENT": "xpp1"}
    assert step_environment({}, None, "5") == {"RUN": "5", "RUN_NUM": "5"}
    assert run_number("12_2026") == "12" and run_number("12") == "12"
