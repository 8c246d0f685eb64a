"""Pydantic's plugin lookup is skipped only when it would find nothing, and then answers exactly that.

``declares_group`` on made-up ``sys.path`` folders (none, one declaring the group, near misses,
things only ``importlib.metadata`` can read), checked against ``importlib.metadata`` itself on
generated layouts; then, in fresh interpreters, the stand-in: models validate without
``importlib.metadata`` being imported, and an installed plugin is still found and used.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import List, Optional

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from lute_kernel.pydantic_plugins import declares_group


def _dist(folder: Path, name: str, entry_points: Optional[str], suffix: str = ".dist-info") -> None:
    meta = folder / f"{name}-1.0{suffix}"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points is not None:
        (meta / "entry_points.txt").write_text(entry_points)


def test_folders_without_the_group_say_no_and_one_with_it_says_yes(tmp_path: Path) -> None:
    _dist(tmp_path, "plain", None)
    _dist(tmp_path, "scripts", "[console_scripts]\nx = y:z\n")
    _dist(tmp_path, "old", "[lute_kernel.tasks]\nx = y\n", suffix=".egg-info")
    assert declares_group("pydantic", (str(tmp_path), str(tmp_path / "missing"))) is False
    _dist(tmp_path, "plug", "[pydantic]\nmy = plug:plugin\n")
    assert declares_group("pydantic", (str(tmp_path),)) is True


@pytest.mark.parametrize("header", ["[ pydantic ]", "[Pydantic]", "  [pydantic]  "])
def test_a_header_that_might_name_the_group_counts_as_declaring_it(tmp_path: Path, header: str) -> None:
    _dist(tmp_path, "plug", f"{header}\nmy = plug:plugin\n")
    assert declares_group("pydantic", (str(tmp_path),)) is True


def test_what_only_importlib_metadata_can_read_means_cannot_tell(tmp_path: Path) -> None:
    archive = tmp_path / "deps.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("x-1.0.dist-info/METADATA", "Name: x\n")
    assert declares_group("pydantic", (str(archive),)) is None
    assert declares_group("pydantic", (str(tmp_path / "thing.egg"),)) is None
    _dist(tmp_path / "bad", "bad", None)
    (tmp_path / "bad" / "bad-1.0.dist-info" / "entry_points.txt").write_bytes(b"\xff\xfe[pydantic]")
    assert declares_group("pydantic", (str(tmp_path / "bad"),)) is None


_section = st.sampled_from(["pydantic", "console_scripts", "lute_kernel.tasks", "pydantic_x", "other"])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(_section, max_size=3), max_size=4))
def test_the_answer_agrees_with_importlib_metadata(
    tmp_path_factory: pytest.TempPathFactory, dists: List[List[str]]
) -> None:
    folder = tmp_path_factory.mktemp("site")
    for index, sections in enumerate(dists):
        text = "".join(f"[{section}]\nentry{index} = mod{index}:obj\n" for section in sections)
        _dist(folder, f"pkg{index}", text or None)
    metadata = [
        ep
        for dist in importlib.metadata.distributions(path=[str(folder)])
        for ep in dist.entry_points
        if ep.group == "pydantic"
    ]
    answer = declares_group("pydantic", (str(folder),))
    if metadata:
        assert answer is True  # never "no" when importlib.metadata would find one
    elif answer:
        assert any("pydantic" in s for sections in dists for s in sections)  # only a near miss says yes


def _python(code: str, extra_path: Optional[Path] = None) -> List[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


USE_A_MODEL = """
import sys
from lute_kernel.pydantic_plugins import skip_lookup_when_none
print(skip_lookup_when_none())
import pydantic
class Model(pydantic.BaseModel):
    x: int
print(Model(x="3").x)
print("importlib.metadata" in sys.modules)
from pydantic.plugin._loader import get_plugins
print(len(list(get_plugins())))
"""


def test_without_plugins_models_validate_and_importlib_metadata_is_not_imported() -> None:
    skipped, value, imported, plugins = _python(USE_A_MODEL)
    assert (skipped, value, imported, plugins) == ("True", "3", "False", "0")


def test_an_installed_plugin_is_still_found_and_used(tmp_path: Path) -> None:
    (tmp_path / "myplug.py").write_text(
        textwrap.dedent(
            """
            class Plugin:
                def new_schema_validator(self, schema, schema_type, schema_type_path, *rest):
                    print("PLUGIN-SAW", schema_type_path.name)
                    return None, None, None
            plugin = Plugin()
            """
        )
    )
    _dist(tmp_path, "myplug", "[pydantic]\nmyplug = myplug:plugin\n")
    out = _python(USE_A_MODEL, extra_path=tmp_path)
    assert out[0] == "False"  # the lookup is pydantic's own
    assert "PLUGIN-SAW" in out and out[out.index("PLUGIN-SAW") + 1] == "Model"
    assert out[-1] == "1"


def test_the_stand_in_hands_any_other_name_to_the_real_loader() -> None:
    out = _python(
        """
        from lute_kernel.pydantic_plugins import skip_lookup_when_none
        print(skip_lookup_when_none())
        import sys
        stand_in = sys.modules["pydantic.plugin._loader"]
        print(stand_in.PYDANTIC_ENTRY_POINT_GROUP, callable(stand_in.entry_points))
        """
    )
    assert out == ["True", "pydantic", "True"]
