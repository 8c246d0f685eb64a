"""The ARP's status counters (flows.arp) and the eLog's run documents (flows.run_info), against a real HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from flows.arp import ArpContext, post_counters, status_items
from flows.run_info import fetch_run_info


class _Recorder(BaseHTTPRequestHandler):
    calls: List[Tuple[str, str, Dict[str, str], Any]] = []
    answers: Dict[str, Tuple[int, Any]] = {}

    def _answer(self, body: Any) -> None:
        self.calls.append((self.command, self.path, dict(self.headers), body))
        status, data = self.answers.get(self.path, (200, {"success": True}))
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self._answer(json.loads(self.rfile.read(length) or b"null"))

    def do_GET(self) -> None:
        self._answer(None)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http() -> Iterator[Tuple[str, type[_Recorder]]]:
    _Recorder.calls, _Recorder.answers = [], {}
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder
    server.shutdown()
    server.server_close()


def test_the_arps_variables_come_from_its_environment_and_the_token_stays_hidden() -> None:
    env = {
        "JID_UPDATE_COUNTERS": "http://x/c",
        "ARP_JOB_ID": "j1",
        "ARP_LOCATION": "S3DF",
        "Authorization": "Bearer s3",
    }
    arp = ArpContext.from_env(env)
    assert arp.public() == {"jid_update_counters": "http://x/c", "arp_root_job_id": "j1", "arp_location": "S3DF"}
    assert arp.authorization == "Bearer s3" and "s3" not in repr(arp)
    assert ArpContext.from_env({"ARP_ROOT_JOB_ID": "r", "ARP_JOB_ID": "j"}).arp_root_job_id == "r"


def test_status_items_are_upstreams() -> None:
    assert status_items("Test", "RUNNING") == {"Test status": "RUNNING"}
    assert status_items("TestSocket", "COMPLETED", {"arrays": 10}) == {"TestSocket status": "COMPLETED", "arrays": "10"}
    assert status_items("T", "COMPLETED", "values_read: 100;rate: 2") == {
        "T status": "COMPLETED",
        "values_read": "100",
        "rate": "2",
    }
    assert status_items("T", "COMPLETED", "Test Finished.") == {"T status": "COMPLETED"}


def test_counters_are_posted_with_the_token(http: Tuple[str, type[_Recorder]]) -> None:
    url, recorder = http
    arp = ArpContext(jid_update_counters=f"{url}/jid/counters/42", authorization="Bearer s3")
    assert post_counters(arp, {"Test status": "RUNNING"}) is None
    ((method, path, headers, body),) = recorder.calls
    assert (method, path, headers["Authorization"], body) == (
        "POST",
        "/jid/counters/42",
        "Bearer s3",
        [{"key": "Test status", "value": "RUNNING"}],
    )
    recorder.answers["/jid/counters/42"] = (500, {})
    assert post_counters(arp, {"a": "b"}) == "posting the run's status to the eLog failed: HTTP 500"
    assert post_counters(ArpContext(), {"a": "b"}) is None  # outside the ARP: nothing to post
    dead = ArpContext(jid_update_counters="http://127.0.0.1:9/c", authorization="Bearer s3")
    problem = post_counters(dead, {"a": "b"})
    assert problem and "ConnectionError" in problem and "s3" not in problem


def test_the_run_type_and_daq_come_from_the_run_document(http: Tuple[str, type[_Recorder]]) -> None:
    url, recorder = http
    recorder.answers["/mfx100/ws/runs/12"] = (200, {"success": True, "value": {"type": "DARK", "params": {"a": 1}}})
    recorder.answers["/rix101/ws/runs/3"] = (
        200,
        {"success": True, "value": {"type": "DATA", "params": {"DAQ/drp/hsd": 1}}},
    )
    assert fetch_run_info(url, "mfx100", "12", "Bearer t") == fetch_run_info(url, "mfx100", "12")
    info = fetch_run_info(url, "mfx100", "12", "Bearer t")
    assert (info.run_type, info.daq) == ("DARK", "daq1")
    assert recorder.calls[0][2]["Authorization"] == "Bearer t"
    assert (fetch_run_info(url, "rix101", "3").run_type, fetch_run_info(url, "rix101", "3").daq) == ("DATA", "daq2")
    recorder.answers["/xpp1/ws/runs/1"] = (404, {"success": False})
    assert "gave no run document (HTTP 404)" in fetch_run_info(url, "xpp1", "1").note
    assert fetch_run_info(None, "x", "1").note == "no eLog configured (flows.elog_runs_url)"
    assert fetch_run_info(url, None, "1").note.startswith("the flow run has no experiment")
    assert "did not answer" in fetch_run_info("http://127.0.0.1:9", "x", "1").note
