"""A site profile rebuilt from what its validation gave is the profile validation gives, without building a schema.

Every shipped profile and generated ones are loaded cold (parse, validate, keep) and warm (rebuilt
with ``model_construct``) and compared: values, which fields the file set (model by model), the
file it came from. A fresh interpreter loading a kept profile builds no pydantic schema and does
not import PyYAML; an invalid profile is refused every time and never kept; an edited profile is
validated again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import yaml
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from lute_kernel import parse_cache, parse_memo
from lute_kernel.errors import ConfigError
from lute_kernel.site_files import available_sites
from lute_kernel.sites import SiteProfile, load_site


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("LUTE_NO_PARSE_CACHE", raising=False)
    parse_memo.disable()
    yield


def _shape(model: BaseModel) -> Dict[str, Any]:
    """Every value and, model by model, the fields that were set."""
    out: Dict[str, Any] = {"set": sorted(model.model_fields_set)}
    for name in type(model).model_fields:
        value = getattr(model, name)
        out[name] = _shape(value) if isinstance(value, BaseModel) else value
    return out


def _same(cold: SiteProfile, warm: SiteProfile) -> None:
    assert warm == cold
    assert _shape(warm) == _shape(cold)
    assert (warm.source, warm.reference, warm.socket_root()) == (cold.source, cold.reference, cold.socket_root())
    assert warm.model_dump() == cold.model_dump()


@pytest.mark.parametrize("name", available_sites())
def test_every_shipped_profile_comes_back_as_validated(name: str) -> None:
    cold = load_site(name)
    assert os.listdir(parse_cache.cache_dir())
    _same(cold, load_site(name))


_flags = st.lists(st.sampled_from(["--containall", "--cleanenv", "--no-home", "--writable-tmpfs", "--nv"]), max_size=3)
_profiles = st.fixed_dictionaries(
    {},
    optional={
        "runtime": st.sampled_from(["local", "apptainer"]),
        "launcher": st.sampled_from(["direct", "srun", "mpirun"]),
        "kill_grace_seconds": st.floats(0, 100, allow_nan=False),
        "env_allowlist": st.lists(st.from_regex(r"[A-Z][A-Z_]{0,6}\*?", fullmatch=True), max_size=3),
        "ipc_max_bytes": st.integers(1, 2**40),
        "apptainer": st.fixed_dictionaries({}, optional={"exec_flags": _flags, "mpi_shm": st.booleans()}),
    },
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_profiles)
def test_generated_profiles_come_back_as_validated(tmp_path: Path, data: Dict[str, Any]) -> None:
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump(data))
    os.environ["LUTE_NO_PARSE_CACHE"] = "1"
    try:
        validated = load_site(str(path))
    finally:
        del os.environ["LUTE_NO_PARSE_CACHE"]
    _same(validated, load_site(str(path)))  # validates and keeps
    _same(validated, load_site(str(path)))  # rebuilt from what was kept


def test_a_kept_profile_builds_no_schema_in_a_fresh_interpreter(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("runtime: apptainer\napptainer:\n  exec_flags: [--containall]\n")
    code = (
        "import sys; from lute_kernel.sites import SiteProfile, load_site;"
        f" p = load_site({str(path)!r}); print(p.runtime, p.apptainer.exec_flags[0],"
        " SiteProfile.__pydantic_complete__, 'yaml' in sys.modules)"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO) for _ in "ab"]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.split() == ["apptainer", "--containall", "True", "True"]
    assert runs[1].stdout.split() == ["apptainer", "--containall", "False", "False"]


def test_an_invalid_profile_is_refused_every_time_and_never_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("runtime: docker\n")
    messages = []
    for _ in range(2):
        with pytest.raises(ConfigError) as caught:
            load_site(str(path))
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "runtime" in messages[0]
    assert not os.path.isdir(parse_cache.cache_dir()) or os.listdir(parse_cache.cache_dir()) == []


def test_an_edited_profile_is_validated_again(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("kill_grace_seconds: 3\n")
    assert load_site(str(path)).kill_grace_seconds == 3
    path.write_text("kill_grace_seconds: 4\n")
    assert load_site(str(path)).kill_grace_seconds == 4
    path.write_text("kill_grace_seconds: -1\n")
    with pytest.raises(ConfigError):
        load_site(str(path))


def test_a_kept_profile_for_other_fields_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lute_kernel import site_memo

    path = tmp_path / "site.yaml"
    path.write_text("runtime: apptainer\n")
    load_site(str(path))
    kept: Dict[str, Any] = {}
    monkeypatch.setattr(parse_cache, "load", lambda *a, **k: kept)
    for damaged in ({"values": {}, "set": [], "models": {}}, {"values": {"runtime": "local"}}):
        kept.clear()
        kept.update(damaged)
        assert site_memo.kept_profile(SiteProfile, path.read_text(), "site") is None
