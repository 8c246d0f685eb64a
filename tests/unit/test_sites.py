"""Site profiles (lute_kernel.sites)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lute_kernel.errors import ConfigError, InputError
from lute_kernel.sites import (
    DEFAULT_SITE,
    FlowSettings,
    ImageSettings,
    MpiSettings,
    SiteProfile,
    SlurmSettings,
    available_sites,
    load_site,
    sites_dir,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_site_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUTE_SITE", raising=False)
    monkeypatch.delenv("LUTE_SITES_DIR", raising=False)


@pytest.fixture
def own_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "sites"
    folder.mkdir()
    monkeypatch.setenv("LUTE_SITES_DIR", str(folder))
    return folder


def test_default_site_is_local() -> None:
    assert DEFAULT_SITE == "local"
    assert sites_dir() == REPO / "config" / "sites"
    loaded = load_site()
    assert loaded.source == str(REPO / "config" / "sites" / "local.yaml") and loaded.reference == "local"
    assert (
        loaded.model_dump()
        == SiteProfile(
            name="local",
            description="Local machine: local runtime, direct launcher.",
            runtime="local",
            launcher="direct",
            run_dir_root=None,
            kill_grace_seconds=5.0,
            env_allowlist=[],
            elog_url=None,
            ipc_max_bytes=1 << 30,
            images=ImageSettings(
                trust_host_ca=True, run_from="sandbox"
            ),  # image builds here trust the host's extra CAs
            slurm=SlurmSettings(partition="debug", poll_seconds=0.5),  # scripts/start-slurm.sh's one-node cluster
            mpi=MpiSettings(srun_mpi="pmi2", srun_mpi_offered=["pmi2", "pmix"], cpu_bind=None, oversubscribe=False),
            flows=FlowSettings(  # DAGs name S3DF's partitions: flow steps go to the one-node cluster's, overcommitted
                work_pool="lute-local", partition="debug", sbatch_args=["--overcommit"], retry_delay_s=1, poll_seconds=1
            ),
        ).model_dump()
    )
    assert load_site().socket_root() == Path(tempfile.gettempdir())


def test_lute_site_picks_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTE_SITE", "s3df")
    site = load_site()
    assert site.name == "s3df"
    assert (site.run_dir_root, site.kill_grace_seconds, site.env_allowlist) == ("/tmp", 30.0, ["SIT_*", "PS_*"])
    assert site.socket_root() == Path("/tmp")
    assert load_site("local").name == "local"  # an explicit name beats LUTE_SITE


def test_repo_profiles_all_validate() -> None:
    names = available_sites()
    assert {"local", "s3df"} <= set(names)
    for name in names:
        assert load_site(name).name == name


def test_unknown_site_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_site("nersc")
    assert info.value.message == f"unknown site 'nersc' (known: {', '.join(available_sites())})"
    assert info.value.path == str(REPO / "config" / "sites" / "nersc.yaml")
    assert info.value.exit_code == 2


def test_unknown_site_in_an_empty_folder(own_sites: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown site 'local' \(known: none\)"):
        load_site()


def test_an_unknown_key_in_a_profile_is_named(own_sites: Path) -> None:
    (own_sites / "lab.yaml").write_text("runtime: local\nkill_grace_secs: 3\n")
    with pytest.raises(ConfigError) as info:
        load_site("lab")
    assert info.value.message == "invalid site profile: kill_grace_secs: Extra inputs are not permitted"
    assert info.value.path == str(own_sites / "lab.yaml")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("runtime: docker\n", "runtime: Input should be 'local' or 'apptainer'"),
        ("launcher: flux\n", "launcher: Input should be 'direct', 'srun' or 'mpirun'"),
        ("kill_grace_seconds: -1\n", "kill_grace_seconds: Input should be greater than or equal to 0"),
        ("ipc_max_bytes: 0\n", "ipc_max_bytes: Input should be greater than 0"),
    ],
)
def test_bad_values_are_named(own_sites: Path, text: str, problem: str) -> None:
    (own_sites / "lab.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_site("lab")
    assert info.value.message == f"invalid site profile: {problem}"


def test_invalid_yaml(own_sites: Path) -> None:
    (own_sites / "lab.yaml").write_text("runtime: [local\n")
    with pytest.raises(ConfigError, match="site profile is not valid YAML"):
        load_site("lab")


def test_an_empty_profile_means_defaults(own_sites: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (own_sites / "bare.yaml").write_text("")
    (own_sites / "other.yaml").write_text("run_dir_root: /scratch/r\nelog_url: http://elog\n")
    monkeypatch.setenv("LUTE_SITE", "bare")
    assert load_site().model_dump() == SiteProfile(name="bare").model_dump()
    other = load_site("other")
    assert other.socket_root() == Path("/scratch/r") and other.elog_url == "http://elog"
    assert available_sites() == ["bare", "other"]


# --- a site's own file, and broken profiles: always a ConfigError naming the file, never a traceback ---


def test_a_profile_named_by_path(tmp_path: Path) -> None:
    path = tmp_path / "my-cluster.yaml"
    path.write_text("runtime: apptainer\nmpi:\n  srun_mpi_offered: [pmix]\n")
    site = load_site(str(path))
    assert (site.name, site.runtime, site.mpi.offered_srun_mpi()) == ("my-cluster", "apptainer", ["pmix"])
    assert site.source == str(path) and site.reference == str(path)  # what --site needs to load it again
    assert load_site(site.reference).model_dump() == site.model_dump()
    with pytest.raises(ConfigError) as info:
        load_site(str(tmp_path / "absent.yaml"))
    assert info.value.message == "site profile does not exist" and info.value.path == str(tmp_path / "absent.yaml")


def test_lute_site_path_comes_before_the_shipped_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "local.yaml").write_text("description: my own local\n")
    single = tmp_path / "lab.yml"
    single.write_text("kill_grace_seconds: 1\n")
    monkeypatch.setenv("LUTE_SITE_PATH", f"{folder}:{single}:{tmp_path / 'missing'}")
    assert load_site().description == "my own local"
    assert load_site("lab").kill_grace_seconds == 1.0 and load_site("lab").reference == "lab"
    assert load_site("s3df").source == str(REPO / "config" / "sites" / "s3df.yaml")
    assert {"lab", "local", "s3df"} <= set(available_sites())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- runtime: local\n", "a site profile is a mapping of settings (runtime: …, mpi: …), not a list"),
        ("just words\n", "a site profile is a mapping of settings (runtime: …, mpi: …), not a str"),
        ("12\n", "a site profile is a mapping of settings (runtime: …, mpi: …), not a int"),
        ("kill_grace_seconds: !!float abc\n", "site profile is not valid YAML: ValueError: "),
        ("runtime: [local\n", "site profile is not valid YAML: "),
        ("a: !!python/object:os.system x\n", "site profile is not valid YAML: "),
        ("kill_grace_seconds: '5'\n", "invalid site profile: kill_grace_seconds: Input should be a valid number"),
        ("kill_grace_seconds: true\n", "invalid site profile: kill_grace_seconds: Input should be a valid number"),
        ("ipc_max_bytes: 1.5\n", "invalid site profile: ipc_max_bytes: Input should be a valid integer"),
        ("env_allowlist: SIT_*\n", "invalid site profile: env_allowlist: Input should be a valid list"),
        ("mpi: 3\n", "invalid site profile: mpi: Input should be a valid dictionary or instance of MpiSettings"),
        (
            "mpi:\n  srun_mpi_ofered: [pmi2]\n",
            "invalid site profile: mpi.srun_mpi_ofered: Extra inputs are not permitted",
        ),
        ("apptainer:\n  binds: [1]\n", "invalid site profile: apptainer.binds.0: Input should be a valid string"),
        ("description: 123\n", "invalid site profile: description: Input should be a valid string"),
        ("1: x\n", "invalid site profile: 1: Keys should be strings"),
    ],
)
def test_broken_profiles_name_the_file_and_field(own_sites: Path, text: str, message: str) -> None:
    (own_sites / "lab.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_site("lab")
    assert info.value.message.startswith(message), info.value.message
    assert info.value.path == str(own_sites / "lab.yaml") and info.value.exit_code == 2


def test_many_problems_are_summarised(own_sites: Path) -> None:
    (own_sites / "lab.yaml").write_text("".join(f"k{i}: 1\n" for i in range(1000)))
    with pytest.raises(ConfigError) as info:
        load_site("lab")
    assert info.value.message.endswith("; … and 995 more") and len(info.value.message) < 400


def test_files_that_are_not_profiles(own_sites: Path, tmp_path: Path) -> None:
    (own_sites / "bin.yaml").write_bytes(b"runtime: \xff\xfe\n")
    (own_sites / "big.yaml").write_text("#" * (2 << 20))
    os.mkfifo(own_sites / "fifo.yaml")  # would be read forever
    (own_sites / "dir.yaml").mkdir()
    expected = {
        "bin": "site profile is not UTF-8 text (invalid start byte at byte 9)",
        "big": "site profile is larger than 1048576 bytes: not a profile",
        "fifo": "site profile is not a regular file",
    }
    for name, message in expected.items():
        with pytest.raises(ConfigError) as info:
            load_site(str(own_sites / f"{name}.yaml"))
        assert info.value.message == message
    for name in ("dir", str(own_sites / "dir.yaml")):
        with pytest.raises(ConfigError, match="not a regular file"):
            load_site(name)
    with pytest.raises(ConfigError, match="cannot read the site profile"):
        load_site(str(tmp_path / "nul\0.yaml"))


@given(text=st.text(max_size=300))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_loads_or_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        site = load_site(str(path))
    except ConfigError as exc:
        assert exc.path == str(path) and exc.exit_code == 2
    else:
        assert site.name == "fuzz"


FIELD_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)


@given(data=st.dictionaries(st.sampled_from([*SiteProfile.model_fields, "bogus"]), FIELD_VALUES, max_size=5))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_values_of_the_real_fields_load_or_name_the_field(tmp_path: Path, data: Dict[str, Any]) -> None:
    path = tmp_path / "fields.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_site(str(path))
    except ConfigError as exc:
        assert exc.path == str(path)
        assert exc.message.startswith(("invalid site profile: ", "a site profile is a mapping"))
        assert any(f"{key}" in exc.message for key in data)


# --- run_dir_root, checked before a run -------------------------------------------------------------


def test_a_good_run_dir_root(tmp_path: Path) -> None:
    assert SiteProfile(name="t", run_dir_root=str(tmp_path)).check_run_dir_root() == tmp_path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda tmp: str(tmp / "missing"), "does not exist"),
        (lambda tmp: "relative/runs", "is not an absolute path"),
        (lambda tmp: str(tmp / "file"), "is not a folder"),
        (lambda tmp: str(tmp / ("d" * 80)), "is too long: the run's socket path would be"),
        (lambda tmp: str(tmp / "nul\0x"), "holds a NUL character"),
    ],
)
def test_bad_run_dir_roots_are_config_errors_naming_the_field(
    own_sites: Path, tmp_path: Path, make: Callable[[Path], str], problem: str
) -> None:
    (tmp_path / "file").write_text("")
    (tmp_path / ("d" * 80)).mkdir()
    root = make(tmp_path)
    (own_sites / "lab.yaml").write_text(yaml.safe_dump({"run_dir_root": root}))
    site = load_site("lab")  # loading works: images commands never need the run folder
    with pytest.raises(ConfigError) as info:
        site.check_run_dir_root()
    assert info.value.key == "run_dir_root" and info.value.path == str(own_sites / "lab.yaml")
    assert info.value.message.startswith(f"{root!r} {problem}")
    assert info.value.exit_code == 2


def test_a_long_root_is_fine_over_tcp(tmp_path: Path) -> None:
    (tmp_path / ("d" * 90)).mkdir()
    site = SiteProfile(name="t", run_dir_root=str(tmp_path / ("d" * 90)), mpi=MpiSettings(transport="tcp"))
    assert site.check_run_dir_root() == tmp_path / ("d" * 90)


def test_an_unwritable_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere: pretend otherwise
    with pytest.raises(ConfigError, match="is not writable by this user"):
        SiteProfile(name="t", run_dir_root=str(tmp_path)).check_run_dir_root()


def test_tmpdir_is_checked_when_the_site_sets_no_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    with pytest.raises(InputError) as info:
        SiteProfile(name="t").check_run_dir_root()
    assert str(info.value).startswith(f"TMPDIR '{tmp_path / 'gone'}' (where run directories go") and not isinstance(
        info.value, ConfigError
    )
    assert str(info.value).endswith("does not exist")
