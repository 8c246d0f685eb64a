"""`tasks show`: every parameter with type, default, DB-derived default, description, flag; the needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lute_kernel.cli.app import app
from lute_kernel.registry import Registry, discover
from lute_kernel.task_help import describe_task, parameter_schema

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return discover([REPO / "tasks"], entry_points=False)


def test_every_parameter_of_a_python_task_with_nested_groups_flattened(registry: Registry) -> None:
    help_ = describe_task(registry.get("Test"))
    assert (help_.image, help_.kind, help_.aliases, help_.mpi, help_.gpus) == ("smoke", "python", ("Tester",), False, 0)
    by_name = {p.name: p for p in help_.parameters}
    assert list(by_name) == [
        "float_var",
        "str_var",
        "compound_var.int_var",
        "compound_var.dict_var",
        "throw_error",
        "sleep_secs",
    ]
    assert (by_name["float_var"].type, by_name["float_var"].default) == ("float", "0.01")
    assert by_name["float_var"].description == "A floating point number."
    assert (by_name["compound_var.dict_var"].type, by_name["compound_var.dict_var"].default) == (
        "Dict[str, str]",
        '{"a": "b"}',
    )
    assert all(p.flag == "" and p.from_db == () for p in help_.parameters)


def test_defaults_read_from_the_db_say_where_from(registry: Registry) -> None:
    [in_file] = describe_task(registry.get("ReadTester")).parameters
    assert in_file.from_db == ("TestWriteOutput.result.payload of this run",)
    index = {p.name: p for p in describe_task(registry.get("IndexCrystFEL")).parameters}
    assert index["in_file"].from_db[:2] == (
        "FindPeaksSFX.out_file of this run",
        "FindPeaksPyAlgos.out_file of this run",
    )


def test_a_binarys_parameters_name_their_flags(registry: Registry) -> None:
    index = {p.name: p for p in describe_task(registry.get("IndexCrystFEL")).parameters}
    assert index["executable"].flag == "(the program)"
    assert index["in_file"].flag == "-i" and index["geometry"].flag == "-g"
    assert index["peaks"].flag == "--peaks="
    positional = {p.name: p for p in describe_task(registry.get("TestBinary")).parameters}
    assert positional["p_arg1"].flag == "positional"


def test_mpi_and_ranks_are_stated(registry: Registry) -> None:
    smd = describe_task(registry.get("SmallDataPsana2"))
    assert smd.mpi and smd.image == "psana2"


def test_json_is_the_sections_schema_without_the_header(registry: Registry) -> None:
    schema = parameter_schema(registry.get("Test"))
    assert "lute_config" not in schema["properties"] and "lute_config" not in schema.get("required", [])
    assert schema["properties"]["float_var"]["default"] == 0.01
    assert schema["additionalProperties"] is False


def test_the_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    shown = runner.invoke(app, ["tasks", "show", "ReadTester"])
    assert shown.exit_code == 0, shown.output
    assert "TestWriteOutput.result.payload of this run" in shown.output and "needs: image smoke" in shown.output
    schema = runner.invoke(app, ["tasks", "show", "Test", "--json"])
    assert json.loads(schema.output)["title"] == "Parameters"
    unknown = runner.invoke(app, ["tasks", "show", "Tset"])
    assert unknown.exit_code == 2 and "Test" in unknown.output  # close names suggested
    listing = runner.invoke(app, ["tasks"])
    assert listing.exit_code == 0
    cells = [line.split("│")[2].strip() for line in listing.output.splitlines() if line.count("│") >= 6]
    images = [image for image in cells if image]  # wrapped descriptions leave empty cells
    assert images == sorted(images)  # grouped by image
    assert "Tasks in" in listing.output
