"""Strict parameters: header types and bounds, unknown keys at every level, summarized messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from lute_kernel.config import load_config
from lute_kernel.errors import ConfigError, ParameterError
from lute_kernel.parameters import (
    MAX_TASK_TIMEOUT,
    WORKER_CONTEXT,
    AnalysisHeader,
    ParameterGroup,
    TaskParameters,
)
from lute_kernel.registry import Registry, discover
from lute_kernel.validation import MAX_LISTED, validate_header, validate_parameters

REPO = Path(__file__).resolve().parents[2]


def header(**values: Any) -> AnalysisHeader:
    return AnalysisHeader.model_validate({"work_dir": "/w", **values}, context=WORKER_CONTEXT)


# --- task_timeout and run ------------------------------------------------------------------------


def test_the_timeout_bound_keeps_poll_milliseconds_in_a_c_int() -> None:
    assert MAX_TASK_TIMEOUT * 1000 < 2**31


@given(seconds=st.integers(min_value=1, max_value=MAX_TASK_TIMEOUT))
def test_every_timeout_in_range_is_accepted(seconds: int) -> None:
    assert header(task_timeout=seconds).task_timeout == seconds
    assert header(task_timeout=str(seconds)).task_timeout == seconds  # upstream (pydantic) reads "600"


@given(seconds=st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_TASK_TIMEOUT + 1)))
def test_timeouts_out_of_range_are_refused(seconds: int) -> None:
    with pytest.raises(ValidationError) as info:
        header(task_timeout=seconds)
    assert info.value.errors()[0]["loc"] == ("task_timeout",)


@pytest.mark.parametrize(
    "value", [True, False, "x", "", 1.5, "1.5", [], {}, None, float("inf"), float("nan"), 2**31, 2**40, -1, "1e3"]
)
def test_timeouts_that_are_not_a_count_of_seconds_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError):
        header(task_timeout=value)


@pytest.mark.parametrize("value", [True, False, 2**63, -(2**63) - 1, 2**100, [], {}])
def test_runs_that_are_not_a_run_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        header(run=value)
    assert info.value.errors()[0]["loc"][0] == "run"


@pytest.mark.parametrize("value", [0, 12, 2**63 - 1, "12", "0012", "", "{{ $RUN }}"])
def test_runs_as_upstream_writes_them(value: Any) -> None:
    assert header(run=value).run == value


def test_a_boolean_timeout_in_a_file_names_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"title: t\ntask_timeout: true\nwork_dir: {tmp_path}\n")
    with pytest.raises(ConfigError) as info:
        validate_header(load_config(path, env={}))
    assert (
        str(info.value) == f"{path}:2: invalid header: task_timeout: task_timeout must be a number, not true (got True)"
    )


# --- unknown keys at every level -----------------------------------------------------------------


class Leaf(BaseModel):
    """A plain BaseModel, as upstream Tasks write nested parameters (extra keys ignored by default)."""

    x: int = 1


class Open(BaseModel):
    """A nested model that says it takes any key."""

    model_config = ConfigDict(extra="allow")
    y: int = 2


class Middle(BaseModel):
    leaf: Leaf = Leaf()
    leaves: List[Leaf] = []


class Shared(BaseModel):
    z: int = 0


class Holder(BaseModel):
    shared: Shared = Shared()


class Deep(TaskParameters):
    direct: Leaf = Leaf()
    optional: Optional[Leaf] = None
    listed: List[Leaf] = []
    mapped: Dict[str, Leaf] = {}
    union: Union[int, Leaf] = 0
    pair: Tuple[Leaf, int] = (Leaf(), 0)
    nested: Middle = Middle()
    open_: Open = Open()
    holder: Holder = Holder()
    shared: Shared = Shared()  # also inside Holder: rebuilt inside out either way


BOGUS_AT = {
    "direct": {"direct": {"bogus": 1}},
    "optional": {"optional": {"x": 1, "bogus": 1}},
    "listed": {"listed": [{"x": 1}, {"bogus": 1}]},
    "mapped": {"mapped": {"k": {"bogus": 1}}},
    "union": {"union": {"bogus": 1}},
    "pair": {"pair": [{"bogus": 1}, 0]},
    "nested": {"nested": {"leaf": {"bogus": 1}}},
    "nested-list": {"nested": {"leaves": [{"bogus": 1}]}},
    "open": {"open_": {"bogus": 1}},
    "holder": {"holder": {"shared": {"bogus": 1}}},
}


@pytest.mark.parametrize("where", list(BOGUS_AT))
def test_nested_models_reject_unknown_keys_wherever_they_are(where: str) -> None:
    with pytest.raises(ValidationError) as info:
        Deep.model_validate({"lute_config": {"work_dir": "/w"}, **BOGUS_AT[where]}, context=WORKER_CONTEXT)
    kinds = {error["type"] for error in info.value.errors()}
    assert "extra_forbidden" in kinds, info.value.errors()


def test_nested_models_still_validate_good_values() -> None:
    params = Deep.model_validate(
        {"lute_config": {"work_dir": "/w"}, "listed": [{"x": 3}], "nested": {"leaves": [{"x": 4}]}},
        context=WORKER_CONTEXT,
    )
    assert params.listed[0].x == 3 and params.nested.leaves[0].x == 4


def test_the_header_still_keeps_unknown_keys() -> None:
    assert header(hutch="xpp").model_extra == {"hutch": "xpp"}


def test_parameter_group_forbids_unknown_keys_on_its_own() -> None:
    class Group(ParameterGroup):
        a: int = 1

    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Group.model_validate({"bogus": 1})


def test_a_model_that_contains_itself_is_handled() -> None:
    class Tree(BaseModel):
        children: List[Tree] = []

    Tree.model_rebuild()

    class WithTree(TaskParameters):
        tree: Tree = Tree()

    with pytest.raises(ValidationError):
        WithTree.model_validate(
            {"lute_config": {"work_dir": "/w"}, "tree": {"children": [{"bogus": 1}]}}, context=WORKER_CONTEXT
        )


@pytest.fixture(scope="module")
def registry() -> Registry:
    return discover([REPO / "tests" / "tasks", REPO / "tasks"], entry_points=False)


def test_every_registered_task_rejects_unknown_nested_keys(registry: Registry) -> None:
    # Walk each Task's fields; for every nested model, an unknown key must be an error — except in
    # the groups of template variables (TemplateParameters), which are open on purpose, as upstream's.
    from lute_kernel.parameters import TemplateParameters, _models_in

    checked = 0
    for spec in registry.tasks.values():
        for name, field in spec.cls.Parameters.model_fields.items():
            if name == "lute_config":
                continue
            for model in _models_in(field.annotation):
                if issubclass(model, TemplateParameters):
                    continue
                assert model.model_config.get("extra") == "forbid", (spec.name, name, model)
                checked += 1
    assert checked >= 1  # Test.compound_var at least


def test_compound_var_bogus_is_refused(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"work_dir: {tmp_path}\n---\nTest:\n  compound_var:\n    int_var: 1\n    bogus: 2\n")
    config = load_config(path, env={})
    with pytest.raises(ParameterError) as info:
        validate_parameters(registry.get("Test"), config, validate_header(config))
    assert str(info.value).splitlines()[1:] == ["  compound_var.bogus (line 6): unknown parameter"]


# --- messages that summarize ----------------------------------------------------------------------


@given(count=st.integers(min_value=1, max_value=3000))
@settings(max_examples=12, deadline=None)
def test_many_unknown_keys_give_ten_lines_and_a_count(tmp_path_factory: pytest.TempPathFactory, count: int) -> None:
    folder = tmp_path_factory.mktemp("many")
    keys = "".join(f"  k{i}: {i}\n" for i in range(count))
    path = folder / "c.yaml"
    path.write_text(f"work_dir: {folder}\n---\nTest:\n  compound_var: {{}}\n{keys}")
    config = load_config(path, env={})
    registry = discover([REPO / "tests" / "tasks", REPO / "tasks"], entry_points=False)
    with pytest.raises(ParameterError) as info:
        validate_parameters(registry.get("Test"), config, validate_header(config))
    lines = str(info.value).splitlines()
    listed = min(count, MAX_LISTED)
    assert lines[1 : 1 + listed] == [f"  k{i} (line {5 + i}): unknown parameter" for i in range(listed)]
    if count > MAX_LISTED:
        assert lines[-1] == f"  ... and {count - MAX_LISTED:,} more"
    assert len(lines) == 1 + listed + (count > MAX_LISTED)


@pytest.mark.parametrize(
    "value",
    ["x" * 10_000, list(range(100_000)), {f"k{i}": i for i in range(10_000)}, [[[[[["deep"]]]]]], 10**5000],
    ids=["long-string", "long-list", "big-mapping", "nested", "huge-int"],
)
def test_bad_values_of_any_size_are_shown_short(value: Any) -> None:
    from lute_kernel.validation import _shown

    assert len(_shown(value)) <= 60
