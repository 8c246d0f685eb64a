"""``flow run`` runs its flow in the foreground: no Prefect heartbeats (their thread holds the run's end up to
a second) unless the user asks for them; a deployment's run keeps Prefect's own setting."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Optional

import pytest

pytestmark = [pytest.mark.prefect]


def heartbeat_seen(monkeypatch: pytest.MonkeyPatch, *, foreground: bool, asked: Optional[str]) -> Optional[int]:
    from prefect.settings import get_current_settings

    import flows.deployments
    from lute_kernel.cli.flow_common import PrefectSettings

    monkeypatch.setattr(flows.deployments, "api_problem", lambda url: None)  # no server needed here
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    for name in ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"):
        monkeypatch.delenv(name, raising=False)
    if asked is not None:
        monkeypatch.setenv(asked, "60")
    site = SimpleNamespace(name="local", flows=SimpleNamespace(api_url=None))
    settings = PrefectSettings(site, foreground=foreground)
    settings.__enter__()
    try:
        value = get_current_settings().flows.heartbeat_frequency
        return None if value is None else int(value)
    finally:
        settings.__exit__(None, None, None)


def test_a_foreground_flow_run_sends_no_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    assert heartbeat_seen(monkeypatch, foreground=True, asked=None) is None


@pytest.mark.parametrize("name", ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"])
def test_heartbeats_the_user_asks_for_are_kept(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    assert heartbeat_seen(monkeypatch, foreground=True, asked=name) == 60


def test_other_commands_keep_prefects_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import get_current_settings

    default = get_current_settings().flows.heartbeat_frequency
    assert heartbeat_seen(monkeypatch, foreground=False, asked=None) == default


def _temporary_server_wait(monkeypatch: pytest.MonkeyPatch, asked: Optional[str]) -> int:
    from prefect.settings import get_current_settings

    from lute_kernel.cli.flow_common import PrefectSettings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    if asked is not None:
        monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", asked)
    if get_current_settings().api.url:
        pytest.skip("a Prefect profile names a server here: no temporary one would start")
    settings = PrefectSettings(SimpleNamespace(name="local", flows=SimpleNamespace(api_url=None)), foreground=True)
    settings.__enter__()
    try:
        return int(get_current_settings().server.ephemeral.startup_timeout_seconds)
    finally:
        settings.__exit__(None, None, None)


def test_a_temporary_server_gets_time_to_start_on_a_loaded_node(monkeypatch: pytest.MonkeyPatch) -> None:
    from lute_kernel.cli.flow_common import TEMPORARY_SERVER_START_S

    assert _temporary_server_wait(monkeypatch, None) == TEMPORARY_SERVER_START_S
    assert _temporary_server_wait(monkeypatch, "33") == 33  # the user's own setting wins
