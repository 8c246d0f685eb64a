"""Upstream's header semantics (lute_kernel.header, validation.validate_header / header_with_defaults).

An empty experiment is ``$EXPERIMENT`` (else upstream's ``EXPX00000``), an empty or missing run is
``$RUN_NUM``'s number (``12`` or ``12_<stamp>``, an integer), an empty work_dir is the site's
``work_dir_default`` (S3DF: ``<data_root>/<hutch>/<experiment>/scratch``), which must exist: as
upstream, nothing creates it. The environment is the one given, never ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from lute_kernel.config import LoadedConfig, load_config
from lute_kernel.errors import ConfigError, InputError, WorkDirError
from lute_kernel.header import EXPERIMENT_PLACEHOLDER, WORKER_CONTEXT, AnalysisHeader, HeaderDefaults
from lute_kernel.sites import SiteProfile, load_site
from lute_kernel.validation import header_with_defaults, validate_header

EXPERIMENT = "mfxl1001021"


def write(tmp_path: Path, header: str) -> LoadedConfig:
    path = tmp_path / "c.yaml"
    path.write_text("%YAML 1.3\n---\n" + header + "...\n")
    return load_config(path, env={})


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    (root / "mfx" / EXPERIMENT / "scratch").mkdir(parents=True)
    return root


def s3df_env(data_root: Path, **more: str) -> Dict[str, str]:
    return {"LUTE_DATA_ROOT": str(data_root), "EXPERIMENT": EXPERIMENT, **more}


def test_the_shipped_s3df_default_is_the_experiments_scratch_folder(tmp_path: Path, data_root: Path) -> None:
    config = write(tmp_path, 'experiment: ""\nwork_dir: ""\n')
    header = validate_header(config, site=load_site("s3df"), env=s3df_env(data_root, RUN_NUM="12"))
    assert header.work_dir == str(data_root / "mfx" / EXPERIMENT / "scratch")
    assert (header.experiment, header.run) == (EXPERIMENT, 12)
    assert header.db_header()["run"] == 12


@pytest.mark.parametrize(
    ("run_num", "expected"),
    [("12", 12), ("12_20261122T101500", 12), ("0051_a_b", 51), ("", ""), (None, "")],
)
def test_a_missing_run_comes_from_run_num(
    tmp_path: Path, work_dir: Path, run_num: Optional[str], expected: object
) -> None:
    config = write(tmp_path, f"experiment: x\nwork_dir: {work_dir}\n")
    env = {} if run_num is None else {"RUN_NUM": run_num}
    assert validate_header(config, env=env).run == expected


def test_an_empty_run_comes_from_run_num_and_a_given_one_stays(tmp_path: Path, work_dir: Path) -> None:
    env = {"RUN_NUM": "12_stamp"}
    assert validate_header(write(tmp_path, f'run: ""\nwork_dir: {work_dir}\n'), env=env).run == 12
    assert validate_header(write(tmp_path, f"run: 7\nwork_dir: {work_dir}\n"), env=env).run == 7
    assert validate_header(write(tmp_path, f'run: "r7"\nwork_dir: {work_dir}\n'), env=env).run == "r7"


def test_a_run_num_that_is_no_run_number_names_the_run(tmp_path: Path, work_dir: Path) -> None:
    config = write(tmp_path, f"work_dir: {work_dir}\n")
    with pytest.raises(ConfigError) as info:
        validate_header(config, env={"RUN_NUM": "latest_1"})
    assert "run: run is empty and $RUN_NUM 'latest_1' does not start with a run number" in str(info.value)


@given(number=st.integers(min_value=0, max_value=2**62), stamp=st.text(max_size=20))
def test_run_num_is_its_first_part_as_an_integer(number: int, stamp: str) -> None:
    defaults = HeaderDefaults(env={"RUN_NUM": f"{number}_{stamp}"})
    assert defaults.run("") == number


@given(raw=st.text(min_size=1, max_size=30).filter(lambda s: not s.split("_")[0].strip().isdigit()))
def test_run_num_without_a_leading_number_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="does not start with a run number"):
        HeaderDefaults(env={"RUN_NUM": raw}).run("")


def test_an_empty_experiment_comes_from_experiment_else_upstreams_placeholder(tmp_path: Path, work_dir: Path) -> None:
    config = write(tmp_path, f'experiment: ""\nwork_dir: {work_dir}\n')
    assert validate_header(config, env={"EXPERIMENT": "xpptut15"}).experiment == "xpptut15"
    assert validate_header(config, env={}).experiment == EXPERIMENT_PLACEHOLDER
    named = write(tmp_path, f"experiment: mine\nwork_dir: {work_dir}\n")
    assert validate_header(named, env={"EXPERIMENT": "xpptut15"}).experiment == "mine"


def test_without_an_environment_nothing_is_filled_in(tmp_path: Path, work_dir: Path) -> None:
    header = validate_header(write(tmp_path, f"work_dir: {work_dir}\n"))
    assert (header.experiment, header.run) == ("", "")


def test_the_default_folder_must_exist_and_the_error_names_field_path_and_site(tmp_path: Path) -> None:
    config = write(tmp_path, 'experiment: mfxp00123\nwork_dir: ""\n')
    site = load_site("s3df")
    with pytest.raises(WorkDirError) as info:
        validate_header(config, site=site, env={"LUTE_DATA_ROOT": str(tmp_path)})
    folder = tmp_path / "mfx" / "mfxp00123" / "scratch"
    assert str(info.value) == (
        f"{config.path}:4: work_dir '{folder}' (work_dir is empty: the default of site 's3df' ({site.source})"
        " for experiment mfxp00123) does not exist"
    )
    assert not folder.exists()  # upstream does not create it, neither does the kernel


def test_a_site_without_a_default_names_work_dir(tmp_path: Path) -> None:
    config = write(tmp_path, 'experiment: x\nwork_dir: ""\n')
    site = load_site("local")
    with pytest.raises(WorkDirError) as info:
        validate_header(config, site=site, env={})
    assert str(info.value) == (
        f"{config.path}:4: work_dir is empty and site 'local' ({site.source}) has no work_dir_default:"
        " set work_dir in the config header"
    )


@pytest.mark.parametrize("experiment", ["a/b", "..", "x\\0y"])
def test_an_experiment_that_cannot_name_a_folder_is_refused(tmp_path: Path, experiment: str) -> None:
    config = write(tmp_path, f'experiment: "{experiment}"\nwork_dir: ""\n')
    with pytest.raises(WorkDirError, match="cannot name the site's default folder"):
        validate_header(config, site=load_site("s3df"), env={"LUTE_DATA_ROOT": str(tmp_path)})


def test_a_relative_data_root_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, 'experiment: x\nwork_dir: ""\n')
    with pytest.raises(InputError, match=r"\$LUTE_DATA_ROOT 'rel/ds' is not an absolute path"):
        validate_header(config, site=load_site("s3df"), env={"LUTE_DATA_ROOT": "rel/ds"})
    site = SiteProfile(name="x", data_root="rel", work_dir_default="{data_root}/{experiment}")
    with pytest.raises(ConfigError, match="data_root: 'rel' is not an absolute path"):
        validate_header(config, site=site, env={})


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("{data_root}/{hutc}/x", "unknown name {hutc}"),
        ("/d/{experiment:>9}", "{experiment} takes no format spec"),
        ("/d/{experiment!r}", "takes no format spec or conversion"),
        ("/d/{", "not a format pattern"),
    ],
)
def test_a_bad_pattern_in_a_profile_names_the_field(tmp_path: Path, pattern: str, problem: str) -> None:
    profile = tmp_path / "mine.yaml"
    profile.write_text(f'work_dir_default: "{pattern}"\n')
    with pytest.raises(ConfigError) as info:
        load_site(str(profile))
    assert "work_dir_default" in str(info.value) and problem in str(info.value)


def test_a_pattern_without_data_root_needs_none(tmp_path: Path) -> None:
    (tmp_path / "abc" / "abc1" / "w").mkdir(parents=True)
    site = SiteProfile(name="mine", work_dir_default=str(tmp_path) + "/{hutch}/{experiment}/w")
    header = validate_header(write(tmp_path, 'experiment: abc1\nwork_dir: ""\n'), site=site, env={})
    assert header.work_dir == str(tmp_path / "abc" / "abc1" / "w")


def test_the_worker_fills_nothing_in(tmp_path: Path) -> None:
    # The host resolved the header; the worker takes it as sent (its environment is the container's).
    defaults = HeaderDefaults(env={"RUN_NUM": "99", "EXPERIMENT": "other"}, work_dir_default="/nowhere/{experiment}")
    context = {**defaults.context(), **WORKER_CONTEXT}
    header = AnalysisHeader.model_validate({"experiment": "", "run": "", "work_dir": "/x"}, context=context)
    assert (header.experiment, header.run, header.work_dir) == ("", "", "/x")


def test_no_context_keeps_the_old_strictness() -> None:
    with pytest.raises(ValidationError, match="work_dir is empty; set it in the config header"):
        AnalysisHeader.model_validate({"work_dir": ""})


def test_config_show_header_fills_the_blanks_without_checking_the_folder(tmp_path: Path) -> None:
    config = write(tmp_path, 'experiment: ""\nwork_dir: ""\n')
    env = {"EXPERIMENT": EXPERIMENT, "RUN_NUM": "3_x", "LUTE_DATA_ROOT": "/no/such"}
    header = header_with_defaults(config, site=load_site("s3df"), env=env)
    assert (header["experiment"], header["run"], header["work_dir"]) == (
        EXPERIMENT,
        3,
        f"/no/such/mfx/{EXPERIMENT}/scratch",
    )
    assert header_with_defaults(config, site=load_site("local"), env={})["work_dir"] == ""
    with pytest.raises(ConfigError, match="RUN_NUM 'x' does not start"):
        header_with_defaults(config, site=None, env={"RUN_NUM": "x"})


def test_os_environ_is_not_read(tmp_path: Path, work_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_NUM", "77")
    monkeypatch.setenv("EXPERIMENT", "fromshell")
    header = validate_header(write(tmp_path, f"work_dir: {work_dir}\n"), env={"RUN_NUM": "5"})
    assert (header.experiment, header.run) == (EXPERIMENT_PLACEHOLDER, 5)
    assert os.environ["RUN_NUM"] == "77"
