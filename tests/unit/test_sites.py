"""Site profiles (lute_kernel.sites)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from lute_kernel.errors import ConfigError
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
    assert load_site() == SiteProfile(
        name="local",
        description="Local machine: local runtime, direct launcher.",
        runtime="local",
        launcher="direct",
        run_dir_root=None,
        kill_grace_seconds=5.0,
        env_allowlist=[],
        elog_url=None,
        ipc_max_bytes=1 << 30,
        images=ImageSettings(trust_host_ca=True, run_from="sandbox"),  # image builds here trust the host's extra CAs
        slurm=SlurmSettings(partition="debug", poll_seconds=0.5),  # scripts/start-slurm.sh's one-node cluster
        mpi=MpiSettings(srun_mpi="pmi2", cpu_bind=None, oversubscribe=False),
        flows=FlowSettings(  # DAGs name S3DF's partitions: flow steps go to the one-node cluster's, overcommitted
            work_pool="lute-local", partition="debug", sbatch_args=["--overcommit"], retry_delay_s=1, poll_seconds=1
        ),
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
    assert load_site() == SiteProfile(name="bare")
    other = load_site("other")
    assert other.socket_root() == Path("/scratch/r") and other.elog_url == "http://elog"
    assert available_sites() == ["bare", "other"]
