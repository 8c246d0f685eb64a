"""Reading DAG files (flows.dag_yaml): upstream's files load unchanged; bad ones are one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.dag import Branch, Node, TriggerRule
from flows.dag_yaml import DagError, load_dag, parse_dag
from lute_kernel.errors import InputError
from workflows.flow_helpers import UPSTREAM

needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason="../shared/upstream-configs is not here")


@needs_upstream
def test_the_basic_tests_dag_loads_as_upstream_wrote_it() -> None:
    dag = load_dag(UPSTREAM / "functional_basic_tests_dag.yaml")
    assert [(n.task_name, n.rule, n.slurm_params) for n in dag.nodes()] == [
        ("Tester", TriggerRule.ALL_SUCCESS, "--partition=milano --account=lcls:data --ntasks=1"),
        ("BinaryTester", TriggerRule.ALL_SUCCESS, "--partition=milano --account=lcls:data --ntasks=5"),
        ("BinaryErrTester", TriggerRule.ALL_SUCCESS, "--partition=milano --account=lcls:data --ntasks=5"),
        ("SocketTester", TriggerRule.ALL_SUCCESS, "--partition=milano --account=lcls:data --ntasks=1"),
        ("WriteTester", TriggerRule.ALL_SUCCESS, "--partition=milano --account=lcls:data --ntasks=1"),
        ("ReadTester", TriggerRule.ALL_SUCCESS, "--partition=milano --account=lcls:data --ntasks=1"),
    ]
    (root,) = dag.roots
    assert isinstance(root, Node) and [c.task_name for c in root.next if isinstance(c, Node)] == [
        "BinaryTester",
        "BinaryErrTester",
        "SocketTester",
    ]


@needs_upstream
def test_the_param_generation_and_sfx_dags_load() -> None:
    sweep = load_dag(UPSTREAM / "functional_param_generation_dag.yaml").nodes()[1]
    assert (sweep.task_name, sweep.param_matrix, sweep.is_sweep) == (
        "SocketTester",
        (("num_arrays", (5, 10, 15, 20)),),
        True,
    )
    sfx = load_dag(UPSTREAM / "functional_sfx_crystfel_dag.yaml")
    assert [n.task_name for n in sfx.nodes()] == [
        "PeakFinderSFX",
        "CrystFELIndexer",
        "StreamFileConcatenator",
        "PartialatorMerger",
        "HKLComparer",
        "HKLManipulator",
    ]
    assert sfx.nodes()[0].slurm_params.endswith("--ntasks-per-node=73 --exclusive")


def test_every_tag_and_key() -> None:
    dag = parse_dag(
        """!LUTE_DAG
- !ALWAYS
  task_name: Tester
  retries: 2
  run_dependent: true
  next:
  - !ALL_FAILED
    task_name: BinaryErrTester
  - !run_type
    DARK:
      task_name: SocketTester
    NOT_DARK:
      - !ANY_FAILED {task_name: WriteTester}
  - !branch_daq2
    daq2: {task_name: ReadTester}
    daq1: {task_name: BinaryTester, slurm_params: null}
- !param_sweep
  task_name: SocketTester
  param_matrix: {num_arrays: [1, 2], array_size: [3]}
  slurm_params: "--ntasks={num_arrays}"
""",
        "d.yaml",
    )
    tester, sweep = dag.roots
    assert isinstance(tester, Node) and isinstance(sweep, Node)
    assert (tester.rule, tester.retries, tester.extra, tester.line) == (
        TriggerRule.ALWAYS,
        2,
        (("run_dependent", True),),
        2,
    )
    err, run_type, daq = tester.next
    assert isinstance(err, Node) and err.rule is TriggerRule.ALL_FAILED
    assert isinstance(run_type, Branch) and run_type.kind == "run_type"
    assert [key for key, _ in run_type.options] == ["DARK", "NOT_DARK"]
    assert isinstance(daq, Branch) and daq.kind == "daq" and [k for k, _ in daq.options] == ["daq2", "daq1"]
    assert sweep.param_matrix == (("num_arrays", (1, 2)), ("array_size", (3,)))
    assert dag.has_branch("run_type") and dag.has_branch("daq")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task_name: [", "d.yaml:1: not valid YAML: expected the node content, but found '<stream end>'"),
        ("task_name: Tester\nnext: []\n", "d.yaml:1: not a LUTE DAG: the document must start with the !LUTE_DAG tag"),
        ("!LUTE_DAG\n- !SOMETIMES\n  task_name: Tester\n", "d.yaml:2: unknown tag !SOMETIMES (known: !ALL_SUCCESS,"),
        (
            "!LUTE_DAG\ntask_name: Tester\nnext:\n- slurm_params: ''\n",
            "d.yaml:4: Tester > (node): task_name: every node needs a task_name",
        ),
        (
            "!LUTE_DAG\ntask_name: Tester\nnxet: []\n",
            "d.yaml:3: Tester: nxet: unknown key; a node has task_name, slurm_params",
        ),
        (
            "!LUTE_DAG\ntask_name: Tester\nretries: -1\n",
            "d.yaml:3: Tester: retries: must be a whole number >= 0, not -1",
        ),
        (
            "!LUTE_DAG\ntask_name: Tester\nslurm_params: [1]\n",
            "d.yaml:3: Tester: slurm_params: must be one string of sbatch",
        ),
        ("!LUTE_DAG\ntask_name: Tester\nnext: 3\n", "d.yaml:3: Tester: next: must be a list of nodes"),
        (
            "!LUTE_DAG\ntask_name: Tester\nparam_matrix: {a: [1]}\n",
            "d.yaml:3: Tester: param_matrix: unknown key (only a !param_sweep",
        ),
        (
            "!LUTE_DAG\n- !param_sweep\n  task_name: S\n",
            "d.yaml:2: S: param_matrix: a !param_sweep needs a param_matrix",
        ),
        (
            "!LUTE_DAG\n- !param_sweep\n  task_name: S\n  param_matrix: {n: 5}\n",
            "d.yaml:4: S: param_matrix.n: must be a non-empty list",
        ),
        (
            "!LUTE_DAG\n- !param_sweep\n  task_name: S\n  param_matrix: {n: []}\n",
            "param_matrix.n: must be a non-empty list",
        ),
        (
            "!LUTE_DAG\n- !branch_daq2\n  lcls2: {task_name: A}\n",
            "has two keys, 'daq2' (LCLS-II runs) and one for LCLS-I",
        ),
        ("!LUTE_DAG\n- !run_type\n  'NOT DARK': {task_name: A}\n", "a run type is a word such as DARK"),
        ("!LUTE_DAG\ntask_name: two words\n", "d.yaml:2: task_name: must be a Task name, not 'two words'"),
        ("!LUTE_DAG\ntask_name: A\ntask_name: B\n", "d.yaml:3: task_name: given twice"),
        ("!LUTE_DAG\n[]\n", "d.yaml:1: the DAG has no nodes"),
        ("!LUTE_DAG\n--- \n!LUTE_DAG\ntask_name: A\n", "a DAG file holds one YAML document, not 2"),
        ("!LUTE_DAG &a\n- task_name: A\n  next: *a\n", "a YAML alias makes this node contain itself"),
    ],
)
def test_bad_dags_are_one_message(text: str, message: str) -> None:
    with pytest.raises(DagError) as info:
        parse_dag(text, "d.yaml")
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_a_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(DagError, match="DAG file not found"):
        load_dag(tmp_path / "nope.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DagError, match="not UTF-8 text"):
        load_dag(tmp_path / "bin.yaml")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
_trees = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=_trees, tag=st.sampled_from(["!LUTE_DAG", "!ALWAYS", "", "!param_sweep"]))
def test_arbitrary_yaml_never_crashes(body: object, tag: str) -> None:
    text = f"{tag} {yaml.safe_dump(body, default_flow_style=True).strip()}\n" if tag else yaml.safe_dump(body)
    try:
        dag = parse_dag(text, "fuzz.yaml")
    except InputError as exc:
        assert str(exc).startswith("fuzz.yaml")
    else:
        assert dag.nodes()
