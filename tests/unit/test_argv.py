"""Building a binary's argv from its parameters (lute_kernel.argv.build_binary_argv)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Optional

import pytest

from lute_kernel.argv import build_binary_argv
from lute_kernel.parameters import WORKER_CONTEXT, TaskParameters, ThirdPartyParameters, param
from lute_kernel.registry import discover
from lute_kernel.task import ThirdPartyTask

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "tasks" / "bin"


def make(cls: type[TaskParameters], **values: Any) -> Any:
    """Validate parameters without the host-only work_dir check."""
    return cls.model_validate({"lute_config": {"work_dir": "/unused"}, **values}, context=WORKER_CONTEXT)


class DefaultFlags(ThirdPartyParameters):
    executable: str = "/opt/bin/prog"
    n: int = 4
    output: str = "out.txt"


class ExplicitFlags(ThirdPartyParameters):
    executable: str = "/opt/bin/prog"
    geometry: str = param("det.geom", flag_type="-")
    j: int = param(2, flag_type="--")
    in_file: str = param("data.h5", flag_type="", description="positional")


class Renamed(ThirdPartyParameters):
    executable: str = "indexamajig"
    in_file: str = param("files.lst", flag_type="-", rename_param="i")
    out_file: str = param("out.stream", flag_type="--", rename_param="output")


class ShortEq(ThirdPartyParameters):
    short_flags_use_eq = True

    executable: str = "prog"
    n: int = 1
    output: str = "o.txt"


class LongEq(ThirdPartyParameters):
    long_flags_use_eq = True

    executable: str = "prog"
    n: int = 1
    output: str = "o.txt"
    peaks: List[int] = [1, 2]


class Switches(ThirdPartyParameters):
    executable: str = "prog"
    verbose: bool = True
    quiet: bool = False
    v: bool = True
    count: int = 0


class Positional(ThirdPartyParameters):
    executable: str = "prog"
    p_arg1: int = 3
    mode: str = "fast"
    p_arg2: str = "in.h5"


class Skipped(ThirdPartyParameters):
    executable: str = "prog"
    maybe: Optional[str] = None
    empty: str = ""
    kept: str = "x"


class Lists(ThirdPartyParameters):
    executable: str = "prog"
    files: List[str] = ["a.h5", "b.h5"]
    p_arg1: List[int] = [7, 8]
    title: str = "run 14 of xpptut15"


def test_executable_first_then_fields_in_declaration_order() -> None:
    assert build_binary_argv(make(DefaultFlags)) == ["/opt/bin/prog", "-n", "4", "--output", "out.txt"]


def test_one_letter_names_are_short_flags_and_longer_names_long_flags() -> None:
    argv = build_binary_argv(make(DefaultFlags, n=16, output="x.txt"))
    assert argv == ["/opt/bin/prog", "-n", "16", "--output", "x.txt"]


def test_flag_type_overrides_the_default_prefix_and_empty_is_positional() -> None:
    assert build_binary_argv(make(ExplicitFlags)) == [
        "/opt/bin/prog",
        "-geometry",
        "det.geom",
        "--j",
        "2",
        "data.h5",
    ]


def test_rename_param_replaces_the_field_name_in_the_flag() -> None:
    assert build_binary_argv(make(Renamed)) == ["indexamajig", "-i", "files.lst", "--output", "out.stream"]


def test_short_flags_use_eq_only_affects_short_flags() -> None:
    assert build_binary_argv(make(ShortEq)) == ["prog", "-n=1", "--output", "o.txt"]


def test_long_flags_use_eq_only_affects_long_flags_and_joins_lists_with_commas() -> None:
    assert build_binary_argv(make(LongEq)) == ["prog", "-n", "1", "--output=o.txt", "--peaks=1,2"]


def test_booleans_are_switches_true_adds_false_omits_zero_is_kept() -> None:
    assert build_binary_argv(make(Switches)) == ["prog", "--verbose", "-v", "--count", "0"]


def test_boolean_switch_never_gets_an_eq_value() -> None:
    class EqSwitch(ThirdPartyParameters):
        long_flags_use_eq = True
        short_flags_use_eq = True

        executable: str = "prog"
        force: bool = True
        f: bool = True

    assert build_binary_argv(make(EqSwitch)) == ["prog", "--force", "-f"]


def test_p_arg_names_are_positional_in_declaration_order() -> None:
    assert build_binary_argv(make(Positional)) == ["prog", "3", "--mode", "fast", "in.h5"]


def test_none_and_empty_string_are_skipped() -> None:
    assert build_binary_argv(make(Skipped)) == ["prog", "--kept", "x"]
    assert build_binary_argv(make(Skipped, maybe="m")) == ["prog", "--maybe", "m", "--kept", "x"]


def test_lists_give_one_argument_per_element_and_spaces_never_split() -> None:
    assert build_binary_argv(make(Lists)) == [
        "prog",
        "--files",
        "a.h5",
        "b.h5",
        "7",
        "8",
        "--title",
        "run 14 of xpptut15",
    ]


def test_an_empty_list_adds_no_dangling_flag() -> None:
    # A bare "--files" would make the binary take the next flag as its value (or fail to parse).
    assert build_binary_argv(make(Lists, files=[], p_arg1=[])) == ["prog", "--title", "run 14 of xpptut15"]


def test_shell_metacharacters_pass_through_as_data() -> None:
    argv = build_binary_argv(make(DefaultFlags, output="a b; rm -rf / $(x) 'q'"))
    assert argv == ["/opt/bin/prog", "-n", "4", "--output", "a b; rm -rf / $(x) 'q'"]


def test_lute_config_is_never_an_argument() -> None:
    argv = build_binary_argv(make(DefaultFlags))
    assert not any("lute_config" in arg or "unused" in arg for arg in argv)


@pytest.fixture(scope="module")
def repo_registry() -> Any:
    return discover([REPO / "tasks"], entry_points=False)


@pytest.mark.parametrize(
    ("task", "program"),
    [("TestBinary", "test_threads"), ("TestBinaryErr", "test_threads_err")],
)
def test_repo_binary_tasks_pass_the_thread_count_positionally(repo_registry: Any, task: str, program: str) -> None:
    cls = repo_registry.get(task).cls
    assert issubclass(cls, ThirdPartyTask)
    assert cls.build_argv(make(cls.Parameters)) == [str(BIN / program), "1"]
    assert cls.build_argv(make(cls.Parameters, p_arg1=4)) == [str(BIN / program), "4"]
    assert os.access(BIN / program, os.X_OK)


def test_repo_binary_tasks_reject_zero_threads(repo_registry: Any) -> None:
    cls = repo_registry.get("TestBinary").cls
    with pytest.raises(ValueError, match="p_arg1"):
        make(cls.Parameters, p_arg1=0)


def test_build_argv_refuses_first_party_parameters() -> None:
    class NotBinary(TaskParameters):
        x: int = 1

    class Odd(ThirdPartyTask):
        Parameters = NotBinary

    with pytest.raises(TypeError, match=r"Odd\.Parameters must derive from ThirdPartyParameters"):
        Odd.build_argv(make(NotBinary))
