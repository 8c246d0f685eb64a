"""The check that a Prefect server answers before a flow starts: one message per way it can fail."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator

import pytest

from flows.deployments import api_problem


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_server_that_answers_has_no_problem(server: str) -> None:
    assert api_problem(f"{server}/api") is None
    assert api_problem(f"{server}/api/") is None


def test_an_answer_other_than_200_is_named(server: str) -> None:
    assert api_problem(f"{server}/other") == f"HTTP 404 from {server}/other/health"


def test_nobody_listening_is_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        problem = api_problem(f"http://127.0.0.1:{port}/api", timeout_s=5)
    assert problem is not None and problem.startswith("URLError:") and "refused" in problem


@pytest.mark.parametrize("url", ["ftp://host/api", "127.0.0.1:4200/api", "", "file:///etc/passwd"])
def test_only_http_urls_are_asked(url: str) -> None:
    assert api_problem(url) == f"not an http(s) URL: {url!r}"


def test_a_malformed_url_is_a_problem_not_a_crash() -> None:
    problem = api_problem("http://[::1/api")
    assert problem is not None and problem.startswith("ValueError:")
