"""Host-side validation: the header, Task sections, whole files (lute_kernel.validation, lute_kernel.parameters)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from pydantic import ValidationError

from lute_kernel.config import LoadedConfig, load_config
from lute_kernel.db import RunRecord, record_run
from lute_kernel.errors import EXIT_BAD_INPUT, ConfigError, ParameterError, WorkDirError
from lute_kernel.parameters import (
    WORKER_CONTEXT,
    AnalysisHeader,
    TaskParameters,
    ThirdPartyParameters,
    field_extra,
    param,
)
from lute_kernel.registry import Registry, discover
from lute_kernel.validation import SectionReport, validate_file, validate_header, validate_parameters

REPO = Path(__file__).resolve().parents[2]
TEST_TASKS = REPO / "tests" / "tasks"

HEADER = """\
%YAML 1.3
---
title: t
experiment: xpptut15
run: 14
work_dir: {work_dir}
...
"""
WORK_DIR_LINE = 6


@pytest.fixture(scope="module")
def registry() -> Registry:
    return discover([TEST_TASKS, REPO / "tasks"], entry_points=False)


@pytest.fixture
def write(tmp_path: Path, work_dir: Path) -> Callable[..., LoadedConfig]:
    """write(sections_text, work_dir=...) -> the loaded config."""
    counter = iter(range(1000))

    def factory(sections: str = "", work_dir_value: Optional[str] = None, header: str = HEADER) -> LoadedConfig:
        text = header.format(work_dir=work_dir if work_dir_value is None else work_dir_value)
        if sections:
            text += "---\n" + sections + "...\n"
        path = tmp_path / f"config{next(counter)}.yaml"
        path.write_text(text)
        return load_config(path, env={})

    return factory


def test_a_good_header(write: Callable[..., LoadedConfig], work_dir: Path) -> None:
    header = validate_header(write())
    assert header.work_dir == str(work_dir)
    assert header.db_header() == {
        "title": "t",
        "experiment": "xpptut15",
        "run": 14,
        "date": "1970/01/01",
        "lute_version": 0.1,
        "task_timeout": 600,
    }


def test_work_dir_missing(write: Callable[..., LoadedConfig], tmp_path: Path) -> None:
    # The loader refuses a header without work_dir before validation (a ConfigError with the line).
    with pytest.raises(ConfigError) as info:
        write(header="%YAML 1.3\n---\ntitle: t\n...\n")
    assert (info.value.message, info.value.line) == ("work_dir is required in the header", 3)
    # Validation itself reads an absent work_dir as upstream does, as "" (the site's default, if any).
    config = LoadedConfig(tmp_path / "c.yaml", {"title": "t"}, {}, {}, {})
    with pytest.raises(WorkDirError) as err:
        validate_header(config)
    assert str(err.value) == f"{tmp_path / 'c.yaml'}: work_dir is empty; set it in the config header"
    assert err.value.exit_code == EXIT_BAD_INPUT


def test_work_dir_that_does_not_exist(write: Callable[..., LoadedConfig], tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    config = write(work_dir_value=str(missing))
    with pytest.raises(WorkDirError) as info:
        validate_header(config)
    assert str(info.value) == f"{config.path}:{WORK_DIR_LINE}: work_dir '{missing}' does not exist"


def test_work_dir_that_is_a_file(write: Callable[..., LoadedConfig], tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    config = write(work_dir_value=str(a_file))
    with pytest.raises(WorkDirError) as info:
        validate_header(config)
    assert str(info.value) == f"{config.path}:{WORK_DIR_LINE}: work_dir '{a_file}' is not a directory"


def test_work_dir_empty(write: Callable[..., LoadedConfig]) -> None:
    config = write(work_dir_value='""')
    with pytest.raises(WorkDirError) as info:
        validate_header(config)
    assert str(info.value) == f"{config.path}:{WORK_DIR_LINE}: work_dir is empty; set it in the config header"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: os.access(W_OK) is always True")
def test_work_dir_not_writable(write: Callable[..., LoadedConfig], tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        config = write(work_dir_value=str(locked))
        with pytest.raises(WorkDirError) as info:
            validate_header(config)
        assert str(info.value) == f"{config.path}:{WORK_DIR_LINE}: work_dir '{locked}' is not writable"
    finally:
        locked.chmod(0o700)


def test_other_header_problems_are_config_errors(write: Callable[..., LoadedConfig], work_dir: Path) -> None:
    config = write(header=HEADER.replace("run: 14\n", "run: 14\ntask_timeout: 0\n"))
    with pytest.raises(ConfigError) as info:
        validate_header(config)
    assert not isinstance(info.value, WorkDirError)
    assert str(info.value) == f"{config.path}:6: invalid header: task_timeout: Input should be greater than 0 (got 0)"


def test_the_worker_context_skips_the_work_dir_check(tmp_path: Path) -> None:
    missing = str(tmp_path / "not-on-this-host")
    with pytest.raises(ValidationError, match="does not exist"):
        AnalysisHeader.model_validate({"work_dir": missing})
    assert AnalysisHeader.model_validate({"work_dir": missing}, context=WORKER_CONTEXT).work_dir == missing
    assert AnalysisHeader.model_validate({"work_dir": ""}, context=WORKER_CONTEXT).work_dir == ""


def test_unknown_header_keys_are_kept(write: Callable[..., LoadedConfig]) -> None:
    header = validate_header(write(header=HEADER.replace("run: 14", "run: 14\nhutch: xpp")))
    assert header.model_extra == {"hutch": "xpp"}


BAD_TEST_SECTION = """\
Test:
  float_var: abc
  compound_var:
    int_var: notint
    dict_var: {a: b}
  typo_param: 1
"""


def test_parameter_error_lists_every_bad_field_with_path_and_line(
    write: Callable[..., LoadedConfig], registry: Registry
) -> None:
    config = write(BAD_TEST_SECTION)
    with pytest.raises(ParameterError) as info:
        validate_parameters(registry.get("Test"), config, validate_header(config))
    assert str(info.value) == (
        f"{config.path}: invalid parameters for Task Test:\n"
        "  float_var (line 10): Input should be a valid number, unable to parse string as a number (got 'abc')\n"
        "  compound_var.int_var (line 12): Input should be a valid integer, unable to parse string as an integer"
        " (got 'notint')\n"
        "  typo_param (line 14): unknown parameter"
    )
    assert info.value.exit_code == EXIT_BAD_INPUT


def test_missing_required_parameters(write: Callable[..., LoadedConfig], registry: Registry) -> None:
    config = write("Test:\n  float_var: 1.0\nWithTasklets: {}\n")
    header = validate_header(config)
    with pytest.raises(ParameterError) as info:
        validate_parameters(registry.get("Test"), config, header)
    assert str(info.value).splitlines()[1:] == ["  compound_var (line 9): required parameter is missing"]
    with pytest.raises(ParameterError) as info:
        validate_parameters(registry.get("WithTasklets"), config, header)
    assert str(info.value).splitlines()[1:] == ["  outdir (line 11): required parameter is missing"]


def test_a_long_bad_value_is_shortened(write: Callable[..., LoadedConfig], registry: Registry) -> None:
    config = write(f"TestSocket:\n  array_size: {'x' * 100}\n")
    with pytest.raises(ParameterError) as info:
        validate_parameters(registry.get("TestSocket"), config, validate_header(config))
    line = str(info.value).splitlines()[1]
    assert line.startswith("  array_size (line 10): Input should be a valid integer")
    assert line.endswith(f"(got '{'x' * 56}...)")


def test_a_missing_section_means_defaults(write: Callable[..., LoadedConfig], registry: Registry) -> None:
    config = write("Test:\n  compound_var: {}\n")
    params = validate_parameters(registry.get("TestSocket"), config, validate_header(config))
    assert params.task_values() == {"array_size": 10000, "num_arrays": 10}
    params = validate_parameters(registry.get("Test"), config, validate_header(config))
    assert params.task_values() == {
        "float_var": 0.01,
        "str_var": "test",
        "compound_var": {"int_var": 1, "dict_var": {"a": "b"}},
        "throw_error": False,
        "sleep_secs": 0.1,
    }


def test_a_section_cannot_replace_the_header(
    write: Callable[..., LoadedConfig], registry: Registry, work_dir: Path, tmp_path: Path
) -> None:
    config = write(f"TestSocket:\n  lute_config:\n    work_dir: {tmp_path}\n  num_arrays: 2\n")
    params = validate_parameters(registry.get("TestSocket"), config, validate_header(config))
    assert params.lute_config.work_dir == str(work_dir)
    assert params.task_values() == {"array_size": 10000, "num_arrays": 2}


def test_validate_file_reports_every_section(write: Callable[..., LoadedConfig], registry: Registry) -> None:
    config = write(
        "Test:\n  compound_var: {}\nTset:\n  x: 1\nTestSocket:\n  num_arrays: 3\nTestWriteOutput:\n  num_vals: 0\n"
    )
    reports = validate_file(config, registry)
    assert [(r.section, r.ok, r.task) for r in reports] == [
        ("header", True, None),
        ("Test", True, "Test"),
        ("Tset", False, None),
        ("TestSocket", True, "TestSocket"),
        ("TestWriteOutput", False, None),
    ]
    assert reports[2].message == "unknown Task 'Tset'. Did you mean Test, Tester?"
    assert reports[4].message == (
        f"{config.path}: invalid parameters for Task TestWriteOutput:\n"
        "  num_vals (line 16): Input should be greater than or equal to 1 (got 0)"
    )


def test_validate_file_refuses_a_section_named_by_an_alias(
    write: Callable[..., LoadedConfig], registry: Registry
) -> None:
    # `run Tester` reads the "Test" section: a "Tester" section would be silently ignored.
    config = write("SocketTester:\n  num_arrays: not-a-number\n")
    reports = validate_file(config, registry)
    assert [(r.section, r.ok) for r in reports] == [("header", True), ("SocketTester", False)]
    assert reports[1].message == (
        "section 'SocketTester' is an alias of Task TestSocket; name the section 'TestSocket'"
        " (sections are read under the Task's name only)"
    )


def test_validate_file_stops_at_a_bad_header(write: Callable[..., LoadedConfig], registry: Registry) -> None:
    config = write("Test: {}\n", work_dir_value="/no/such/dir")
    reports = validate_file(config, registry)
    assert reports == [
        SectionReport(
            "header",
            False,
            f"{config.path}:{WORK_DIR_LINE}: work_dir '/no/such/dir' does not exist",
        )
    ]


class WithResult(TaskParameters):
    set_result = True

    name: str = param("first.txt", is_result=True)
    other: str = param("second.txt", is_result=True)


class ResultOff(TaskParameters):
    name: str = param("first.txt", is_result=True)


def worker_params(cls: type[TaskParameters], **values: Any) -> Any:
    return cls.model_validate({"lute_config": {"work_dir": "/w"}, **values}, context=WORKER_CONTEXT)


def test_result_from_params_uses_the_first_is_result_field() -> None:
    assert worker_params(WithResult).result_from_params() == "first.txt"
    assert worker_params(WithResult, name="x").result_from_params() == "x"
    assert worker_params(ResultOff).result_from_params() is None
    assert field_extra(WithResult, "name") == {"is_result": True}
    assert field_extra(WithResult, "lute_config") == {}


def test_result_from_params_of_the_repo_tasks(write: Callable[..., LoadedConfig], registry: Registry) -> None:
    config = write("TestWriteOutput:\n  outfile_name: out.txt\n")
    header = validate_header(config)
    assert validate_parameters(registry.get("TestWriteOutput"), config, header).result_from_params() == "out.txt"
    assert validate_parameters(registry.get("TestSocket"), config, header).result_from_params() is None
    assert validate_parameters(registry.get("TestBinary"), config, header).result_from_params() is None


def test_third_party_parameters_forbid_unknown_keys() -> None:
    class Binary(ThirdPartyParameters):
        executable: str = "prog"

    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        worker_params(Binary, flag=1)
    with pytest.raises(ValidationError, match="should be a finite number"):
        worker_params(type("F", (TaskParameters,), {"__annotations__": {"x": float}, "x": 1.0}), x=float("inf"))


def record_write_output(work_dir: Path, payload: str, status: str = "COMPLETED") -> int:
    return record_run(
        work_dir,
        RunRecord(
            task_name="TestWriteOutput",
            header={"title": "t", "experiment": "xpptut15", "run": 14},
            parameters={"outfile_name": Path(payload).name, "num_vals": 100, "sleep_secs": 0.0},
            task_status=status,
            summary="values_written: 100",
            payload=payload,
        ),
    )


def test_read_output_defaults_to_the_recorded_write_output(
    write: Callable[..., LoadedConfig], registry: Registry, work_dir: Path
) -> None:
    record_write_output(work_dir, str(work_dir / "first.txt"))
    record_write_output(work_dir, str(work_dir / "latest.txt"))
    record_write_output(work_dir, str(work_dir / "failed.txt"), status="FAILED")
    config = write("")
    params = validate_parameters(registry.get("ReadTester"), config, validate_header(config))
    assert params.task_values() == {"in_file": str(work_dir / "latest.txt")}

    explicit = write("TestReadOutput:\n  in_file: /given.txt\n")
    params = validate_parameters(registry.get("TestReadOutput"), explicit, validate_header(explicit))
    assert params.task_values() == {"in_file": "/given.txt"}


def test_read_output_without_a_recorded_write_output_fails_clearly(
    write: Callable[..., LoadedConfig], registry: Registry, work_dir: Path
) -> None:
    config = write("TestReadOutput: {}\n")
    with pytest.raises(ParameterError) as info:
        validate_parameters(registry.get("TestReadOutput"), config, validate_header(config))
    assert str(info.value).splitlines()[1:] == [
        "  in_file (line 9): no in_file given and no valid TestWriteOutput result recorded"
        " in work_dir's lute.db (got '')"
    ]
    assert not (work_dir / "lute.db").exists()  # reading never creates the database


def test_read_output_with_only_failed_write_outputs_fails(
    write: Callable[..., LoadedConfig], registry: Registry, work_dir: Path
) -> None:
    record_write_output(work_dir, str(work_dir / "failed.txt"), status="FAILED")
    config = write("")
    with pytest.raises(ParameterError, match="no valid TestWriteOutput result recorded"):
        validate_parameters(registry.get("TestReadOutput"), config, validate_header(config))


def test_read_output_in_the_worker_does_not_read_the_db(registry: Registry, tmp_path: Path) -> None:
    cls = registry.get("TestReadOutput").cls.Parameters
    params = cls.model_validate({"lute_config": {"work_dir": str(tmp_path / "absent")}}, context=WORKER_CONTEXT)
    assert params.task_values() == {"in_file": ""}
