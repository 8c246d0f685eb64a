"""Summary text and payload reduction (lute_kernel.summaries); eLog posting against a real local HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Iterator, List
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from lute_kernel.elog import post_run_parameters
from lute_kernel.summaries import describe_array, merge_summaries, payload_for_db, summary_dict, summary_text


@pytest.mark.parametrize(
    ("summary", "text"),
    [
        ({"a": 1, "b": "x"}, "a: 1;b: x"),
        ({"values_written": 100}, "values_written: 100"),
        ({}, ""),
        (None, ""),
        ("Test Finished.", "Test Finished."),
        (3.5, "3.5"),
    ],
)
def test_summary_text(summary: Any, text: str) -> None:
    assert summary_text(summary) == text


def test_summary_dict() -> None:
    assert summary_dict({"a": 1}) == {"a": 1}
    assert summary_dict("text") is None
    assert summary_dict(None) is None


def test_describe_array() -> None:
    assert describe_array(np.zeros(8000)) == "ndarray float64 (8000,)"
    assert describe_array(np.zeros((2, 3), dtype=np.float32)) == "ndarray float32 (2, 3)"


def test_payload_for_db_describes_arrays_wherever_they_are() -> None:
    payload = {
        "arr": np.arange(3),
        "list": [np.zeros((2, 2), dtype=np.uint8), 1, "s"],
        "tuple": (1.5, None),
        "nested": {"deep": np.ones(4, dtype=np.float32)},
        5: "int key",
    }
    assert payload_for_db(payload) == {
        "arr": "ndarray int64 (3,)",
        "list": ["ndarray uint8 (2, 2)", 1, "s"],
        "tuple": [1.5, None],
        "nested": {"deep": "ndarray float32 (4,)"},
        "5": "int key",
    }
    json.dumps(payload_for_db(payload))


def test_payload_for_db_keeps_json_and_stringifies_the_rest() -> None:
    assert payload_for_db("/work/out.txt") == "/work/out.txt"
    assert payload_for_db(None) is None
    assert payload_for_db({"a": [1, 2.5, True]}) == {"a": [1, 2.5, True]}
    assert payload_for_db({1, 2}) == "{1, 2}"


def test_merge_summaries() -> None:
    assert merge_summaries({"a": 1}, {}) == {"a": 1}
    assert merge_summaries("done", {}) == "done"
    assert merge_summaries({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    assert merge_summaries({"a": 1}, {"a": 9}) == {"a": 9}
    assert merge_summaries("Test Finished.", {"lines[out.txt]": 3}) == {
        "summary": "Test Finished.",
        "lines[out.txt]": 3,
    }
    assert merge_summaries("", {"b": 2}) == {"b": 2}
    assert merge_summaries(None, {"b": 2}) == {"b": 2}
    original = {"a": 1}
    merge_summaries(original, {"b": 2})
    assert original == {"a": 1}


class Recorder(BaseHTTPRequestHandler):
    requests: List[Dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        parts = urlsplit(self.path)
        type(self).requests.append(
            {
                "path": parts.path,
                "query": parse_qs(parts.query),
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def elog(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    class Handler(Recorder):
        requests: List[Dict[str, Any]] = []
        status = 200

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def base_url(server: HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_post_run_parameters(elog: Any) -> None:
    problem = post_run_parameters(base_url(elog) + "/", "xpptut15", 14, {"values_written": 100, "name": "x"})
    assert problem is None
    assert elog.RequestHandlerClass.requests == [
        {
            "path": "/xpptut15/ws/add_run_params",
            "query": {"run_num": ["14"]},
            "content_type": "application/json",
            "body": {"values_written": "100", "name": "x"},
        }
    ]


def test_http_error_is_returned_as_text(elog: Any) -> None:
    elog.RequestHandlerClass.status = 500
    problem = post_run_parameters(base_url(elog), "xpptut15", "0014", {"a": 1})
    assert problem == f"eLog post to {base_url(elog)}/xpptut15/ws/add_run_params failed: HTTP 500"
    assert elog.RequestHandlerClass.requests[0]["query"] == {"run_num": ["0014"]}


def test_connection_refused_is_returned_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    problem = post_run_parameters(f"http://127.0.0.1:{port}", "exp", 1, {"a": 1})
    assert problem is not None
    assert problem.startswith(f"eLog post to http://127.0.0.1:{port}/exp/ws/add_run_params failed: ")
    assert "Connection refused" in problem
    assert not problem.endswith("HTTP 500")
