"""The warm kernel's wire and address: any packet decodes to a request or a ProtocolError; keys and directories."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
from pathlib import Path
from typing import List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lute_kernel.cli import MAYBE_WARM
from lute_kernel.warm import protocol
from lute_kernel.warm.address import (
    FLOWS,
    MAX_SUN_PATH,
    RUN,
    UnsafeDirectory,
    base_directory,
    bind_or_connect,
    check_private,
    make_private,
    server_key,
    warm_disabled,
    warm_kind,
)
from lute_kernel.warm.freshness import changed, fingerprint

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
RUN_FIELDS = st.fixed_dictionaries(
    {"op": st.just("run")},
    optional={
        "argv": JSON,
        "env": JSON,
        "umask": JSON,
        "process_start": JSON,
        "streams": JSON,
        "limits": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | JSON.map(lambda v: json.dumps(v).encode())
    | RUN_FIELDS.map(lambda v: json.dumps(v).encode())
)
def test_any_packet_is_a_request_or_a_protocol_error(packet: bytes) -> None:
    try:
        request = protocol.decode_request(packet)
    except protocol.ProtocolError:
        return
    assert isinstance(request, (protocol.RunRequest, protocol.SignalRequest, protocol.SimpleRequest))


FINITE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(FINITE_JSON)
def test_a_packet_is_what_json_dumps_writes(value: object) -> None:
    """The command encodes without importing json (its start-up): the bytes are json's, surrogates and all."""
    assert protocol.encode(value) == json.dumps(value, separators=(",", ":")).encode()  # type: ignore[arg-type]
    assert json.loads(protocol.encode(value)) == json.loads(json.dumps(value))  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"x": [float("-inf")]}])
def test_nan_and_infinity_are_not_packets(value: object) -> None:
    with pytest.raises(ValueError):
        protocol.encode({"v": value})


@pytest.mark.parametrize("value", [{1: "a"}, {"a": {1, 2}}, {"a": b"bytes"}, {"a": object()}])
def test_what_json_cannot_hold_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        protocol.encode(value)  # type: ignore[arg-type]


def test_an_environment_with_undecodable_bytes_travels_back_to_the_same_bytes() -> None:
    raw = os.fsdecode(b"caf\xe9-\xff")  # what os.environ holds for bytes that are not UTF-8 (surrogateescape)
    packet = protocol.encode({"env": {"X": raw}})
    assert os.fsencode(json.loads(packet)["env"]["X"]) == b"caf\xe9-\xff"


def test_a_well_formed_run_request_decodes_typed() -> None:
    message = {
        "op": "run",
        "argv": ["lute-kernel", "run", "Test", "-c", "c.yaml"],
        "env": {"HOME": "/root", "LUTE_PROFILE": "1"},
        "umask": 0o022,
        "process_start": 12.5,
        "streams": {
            "stdout": {"encoding": "utf-8", "errors": "strict", "line_buffering": True, "write_through": False}
        },
        "limits": {"RLIMIT_NOFILE": [1024, 4096]},
        "ignored": [int(signal.SIGHUP)],
    }
    request = protocol.decode_request(protocol.encode(message))
    assert isinstance(request, protocol.RunRequest)
    assert request.argv[2] == "Test" and request.umask == 0o022 and request.limits["RLIMIT_NOFILE"] == (1024, 4096)
    assert request.streams["stdout"].line_buffering is True
    assert request.ignored == (signal.SIGHUP,)
    message.pop("ignored")  # a command that ignored nothing
    assert protocol.decode_request(protocol.encode(message)).ignored == ()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        {"op": "run", "argv": [], "env": {}, "umask": 0},
        {"op": "run", "argv": ["x\0y"], "env": {}, "umask": 0},
        {"op": "run", "argv": ["x"], "env": {"A=B": "c"}, "umask": 0},
        {"op": "run", "argv": ["x"], "env": {}, "umask": 0o1777},
        {"op": "run", "argv": ["x"], "env": {}, "umask": True},
        {"op": "run", "argv": ["x"], "env": {}, "umask": 0, "ignored": [int(signal.SIGKILL)]},
        {"op": "run", "argv": ["x"], "env": {}, "umask": 0, "ignored": "SIGHUP"},
        {"op": "run", "argv": ["x"], "env": {}, "umask": 0, "ignored": [True]},
        {"op": "run", "argv": ["x"], "env": {}, "umask": 0, "ignored": [1] * 10},
        {"op": "signal", "signum": int(signal.SIGKILL)},
        {"op": "bogus"},
    ],
)
def test_requests_out_of_shape_are_refused(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_request(protocol.encode(bad))


def test_the_key_follows_python_s_path_environment_and_slurm_job() -> None:
    base = {"HOME": "/root"}
    assert server_key(base) == server_key({**base, "LUTE_PROFILE": "1"})  # the command's own settings travel
    assert server_key(base) != server_key({**base, "PYTHONPATH": "/elsewhere"})
    assert server_key(base) != server_key({**base, "SLURM_JOB_ID": "42"})
    assert server_key(base) != server_key({**base, "LD_LIBRARY_PATH": "/opt/lib"})
    assert server_key(base) != server_key({**base, "LC_ALL": "C"})
    before = server_key(base)
    sys.path.insert(0, "/another/place")
    try:
        moved = server_key(base)
    finally:
        sys.path.remove("/another/place")
    assert moved != before


def test_the_directory_must_be_private(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    make_private(str(mine))
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    mine.chmod(0o755)
    with pytest.raises(UnsafeDirectory):
        check_private(str(mine))
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(UnsafeDirectory):
        check_private(str(link))


def test_an_xdg_runtime_dir_not_ours_is_passed_over(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)
    assert base_directory({"XDG_RUNTIME_DIR": str(open_dir), "TMPDIR": str(tmp_path)}) == str(
        tmp_path / f"lute-kernel-{os.getuid()}"
    )
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert base_directory({"XDG_RUNTIME_DIR": str(private)}) == str(private / "lute-kernel")


def test_lute_warm_turns_it_off() -> None:
    assert warm_disabled({"LUTE_WARM": "0"}) and warm_disabled({"LUTE_WARM": "off"})
    assert not warm_disabled({}) and not warm_disabled({"LUTE_WARM": "1"})


def test_a_socket_path_over_the_unix_limit_still_binds_and_connects(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "warm.sock")
    assert len(path) > MAX_SUN_PATH
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as server:
        bind_or_connect(server, path, bind=True)
        server.listen(1)
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as client:
            bind_or_connect(client, path)
            conn, _ = server.accept()
            with conn:
                client.send(b"hello")
                assert conn.recv(10) == b"hello"


def test_a_changed_imported_file_is_noticed(tmp_path: Path) -> None:
    module = tmp_path / "warm_probe_module.py"
    module.write_text("X = 1\n")
    quiet = module.stat().st_mtime_ns - 10**10  # written long enough ago to be trusted (`file_stamps`)
    os.utime(module, ns=(quiet, quiet))
    sys.path.insert(0, str(tmp_path))
    try:
        import warm_probe_module  # noqa: F401

        snapshot = fingerprint()
        assert changed(snapshot) is None
        info = module.stat()
        os.utime(module, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
        assert changed(snapshot) == str(module)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("warm_probe_module", None)


def test_a_flows_server_is_another_server_keyed_by_what_import_prefect_reads() -> None:
    base = {"HOME": "/root", "PREFECT_API_URL": "http://127.0.0.1:4200/api"}
    assert server_key(base, FLOWS) != server_key(base, RUN)
    assert server_key(base) == server_key({**base, "PREFECT_API_URL": "http://elsewhere/api"})  # run: not read
    for name, value in (("PREFECT_API_URL", "http://elsewhere/api"), ("PREFECT_HOME", "/x"), ("HOME", "/h")):
        assert server_key(base, FLOWS) != server_key({**base, name: value}, FLOWS), name
    assert server_key(base, FLOWS) != server_key({**base, "DO_NOT_TRACK": "1"}, FLOWS)
    assert server_key(base, FLOWS) == server_key({**base, "LUTE_PROFILE": "1"}, FLOWS)


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["lute-kernel", "run", "Test"], RUN),
        (["lute-kernel", "validate", "Test"], RUN),
        (["lute-kernel", "explain", "Test"], RUN),
        (["lute-kernel", "rerun", "3"], RUN),
        (["lute-kernel", "flow", "run", "dag.yaml"], FLOWS),
        (["lute-kernel", "flow", "show", "dag.yaml"], None),
        (["lute-kernel", "flow"], None),
        (["lute-kernel", "tasks"], None),
        (["lute-kernel", "--help"], None),
        (["lute-kernel"], None),
    ],
)
def test_which_warm_kernel_serves_a_command(argv: List[str], kind: Optional[str]) -> None:
    assert warm_kind(argv) == kind
    if kind is not None:  # the CLI looks further only for these first arguments
        assert argv[1] in MAYBE_WARM
    assert {a for a in MAYBE_WARM if warm_kind(["lute-kernel", a, "run"]) is None} == set()


def test_the_auto_started_server_of_flows_serves_flows() -> None:
    from lute_kernel.warm.autostart import serve_command

    script = ["/venv/bin/python", "/venv/bin/lute-kernel", "flow", "run", "dag.yaml"]
    argv = ["/venv/bin/lute-kernel", "flow", "run", "dag.yaml"]
    expected = [sys.executable, "/venv/bin/lute-kernel", "serve", "--flows", "--detach"]
    assert serve_command(script, argv, FLOWS) == expected


def test_the_auto_started_server_is_this_invocation_s_own() -> None:
    from lute_kernel.warm.autostart import serve_command

    script = ["/venv/bin/python", "/venv/bin/lute-kernel", "run", "Test", "-c", "c.yaml"]
    assert serve_command(script, ["/venv/bin/lute-kernel", "run", "Test", "-c", "c.yaml"]) == [
        sys.executable,
        "/venv/bin/lute-kernel",
        "serve",
        "--detach",
    ]
    module = ["python3", "-X", "dev", "-m", "lute_kernel.cli", "run", "Test", "-c", "c.yaml"]
    assert serve_command(module, ["/x/cli/__main__.py", "run", "Test", "-c", "c.yaml"]) == [
        sys.executable,
        "-X",
        "dev",
        "-m",
        "lute_kernel.cli",
        "serve",
        "--detach",
    ]
    assert serve_command(["python3", "-c", "code"], ["-c", "run"]) is None


def test_the_server_warms_the_caches_a_first_validation_fills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lute_kernel.task_index as task_index
    from lute_kernel.runtimes.apptainer import SPAWN_ENV_ALLOWLIST
    from lute_kernel.runtimes.base import _matcher
    from lute_kernel.warm.server import warm_caches

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    task_index.cached_entry_points("lute_kernel.tasks")  # the file exists (a command ran before)
    monkeypatch.setattr(task_index, "_read", {})
    _matcher.cache_clear()
    warm_caches()
    assert str(tmp_path / "lute-kernel" / "task-index.json") in task_index._read  # read once, here
    assert _matcher.cache_info().currsize >= 2 and _matcher(tuple(SPAWN_ENV_ALLOWLIST))


def test_warming_the_caches_never_stops_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import lute_kernel.sites as sites
    from lute_kernel.warm.server import warm_caches

    def broken(site: object) -> object:
        raise RuntimeError("a site profile that does not load")

    monkeypatch.setattr(sites, "load_site", broken)
    warm_caches()  # the command loads (and reports) its site itself
