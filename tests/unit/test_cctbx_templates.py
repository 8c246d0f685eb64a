"""Rendering third-party configuration files from a Task's parameters (lute_kernel/templates.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from lute_kernel.templates import (
    RenderedFile,
    TemplateConfig,
    TemplateError,
    render_template,
    rendered_files,
    template_context,
    templates_dir,
    write_rendered,
)

REPO = Path(__file__).resolve().parents[2]


class Group(BaseModel):
    model_config = ConfigDict(extra="allow")

    alpha: int = 1
    beta: Optional[str] = None
    size: Tuple[int, int] = (6, 6)


class Params(BaseModel):
    model_config = ConfigDict(extra="allow")
    template_fields: ClassVar[Tuple[str, ...]] = ("group",)

    group: Optional[Group] = None
    lute_template_cfg: TemplateConfig = TemplateConfig(template_name="t.phil", output_path="")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "t.phil").write_text(
        "a = {{ alpha }}\nb = {{ beta or 'None' }}\nsize = {{ size }}\n"
        "{%- if extra is defined %}\nextra = {{ extra }}\n{%- endif %}\n"
    )
    return tmp_path


def test_the_context_spreads_the_groups_and_adds_unknown_keys() -> None:
    params = Params.model_validate({"group": {"alpha": 2, "gamma": "g"}, "top": 5})
    assert template_context(params) == {"alpha": 2, "beta": None, "size": (6, 6), "gamma": "g", "top": 5}


def test_no_group_and_no_unknown_keys_gives_no_context_and_no_file() -> None:
    # Upstream renders only when there is at least one template variable: the user's file is kept.
    params = Params.model_validate({"lute_template_cfg": {"template_name": "t.phil", "output_path": "/x/out.phil"}})
    assert template_context(params) == {}
    assert rendered_files(params) == []


def test_a_section_key_wins_over_the_groups_value() -> None:
    assert template_context(Params.model_validate({"group": {"alpha": 2}, "alpha": 3}))["alpha"] == 3


def test_render_exact_text(folder: Path) -> None:
    text = render_template("t.phil", {"alpha": 2, "beta": None, "size": (6, 6)}, folder)
    assert text == "a = 2\nb = None\nsize = (6, 6)\n"
    text = render_template("t.phil", {"alpha": 2, "beta": "x", "size": (1, 2), "extra": True}, folder)
    assert text == "a = 2\nb = x\nsize = (1, 2)\nextra = True\n"


def test_an_absolute_template_name_needs_no_folder(folder: Path) -> None:
    assert render_template(str(folder / "t.phil"), {"alpha": 0, "beta": "", "size": 1}) == "a = 0\nb = None\nsize = 1\n"


def test_an_undefined_variable_is_an_error_naming_it(folder: Path) -> None:
    with pytest.raises(TemplateError, match="'beta' is undefined"):
        render_template("t.phil", {"alpha": 2, "size": 1}, folder)


def test_a_missing_template_and_bad_syntax_are_errors(folder: Path) -> None:
    with pytest.raises(TemplateError, match=f"template 'nope.phil' not found in {folder}"):
        render_template("nope.phil", {}, folder)
    (folder / "bad.phil").write_text("a = {{ alpha\n")
    with pytest.raises(TemplateError, match=r"bad\.phil:1"):
        render_template("bad.phil", {"alpha": 1}, folder)


def test_rendered_files_renders_to_the_output_path(folder: Path) -> None:
    params = Params.model_validate(
        {"group": {}, "lute_template_cfg": {"template_name": "t.phil", "output_path": "/w/out.phil"}}
    )
    assert rendered_files(params, folder) == [RenderedFile("/w/out.phil", "a = 1\nb = None\nsize = (6, 6)\n")]


def test_rendered_files_without_an_output_path_is_an_error(folder: Path) -> None:
    with pytest.raises(TemplateError, match="has no output_path"):
        rendered_files(Params.model_validate({"group": {}}), folder)


def test_a_models_extra_files_come_after_the_template(folder: Path) -> None:
    class WithSpec(Params):
        def extra_files(self) -> List[RenderedFile]:
            return [RenderedFile("/w/spec.loc", "run=1\n")]

    params = WithSpec.model_validate({"top": 1, "lute_template_cfg": {"template_name": "t.phil", "output_path": "/o"}})
    (folder / "t.phil").write_text("top = {{ top }}\n")
    assert rendered_files(params, folder) == [RenderedFile("/o", "top = 1\n"), RenderedFile("/w/spec.loc", "run=1\n")]


def test_models_without_a_template_config_render_nothing() -> None:
    class Plain(BaseModel):
        x: int = 1

    assert rendered_files(Plain()) == []


def test_write_rendered_makes_folders_and_replaces_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.phil"
    write_rendered([RenderedFile(str(target), "one\n")])
    write_rendered([RenderedFile(str(target), "two\n")])
    assert target.read_text() == "two\n"
    assert sorted(os.listdir(target.parent)) == ["out.phil"]  # no temporary file left


def test_templates_dir_is_the_repos_config_templates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LUTE_TEMPLATES_DIR", raising=False)
    assert templates_dir() == REPO / "config" / "templates"
    monkeypatch.setenv("LUTE_TEMPLATES_DIR", str(tmp_path))
    assert templates_dir() == tmp_path


def test_the_template_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        TemplateConfig.model_validate({"template_name": "x", "output": "y"})


@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), st.integers() | st.text(max_size=5)))
def test_every_unknown_key_reaches_the_context(extra: Dict[str, Any]) -> None:
    params = Params.model_validate(extra)
    context = template_context(params)
    assert {k: context[k] for k in extra if k not in Params.model_fields} == {
        k: v for k, v in extra.items() if k not in Params.model_fields
    }
