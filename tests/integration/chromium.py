"""Headless Chromium for the tests, driven over the DevTools protocol on a pipe; a PNG reader.

``Chromium`` starts Debian's ``chromium`` headless in a fresh, empty profile with every background
service off (no network of its own), and talks CDP over ``--remote-debugging-pipe`` (fds 3 and 4,
NUL-separated JSON): no port, no websocket client. A page is opened, its console messages,
exceptions, log entries and network requests are collected, JavaScript is evaluated, screenshots
are taken. ``png_pixels`` decodes the screenshots (8-bit RGB/RGBA, what Chromium writes) with zlib
alone, so a test can count the pixels that are not white.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
]

# Chromium reads commands on fd 3 and writes replies on fd 4: this shim puts the pipes there.
_SHIM = (
    "import os, sys\n"
    "r, w = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))\n"
    "os.dup2(r, 3); os.dup2(w, 4)\n"
    "os.set_inheritable(3, True); os.set_inheritable(4, True)\n"  # dup2 onto itself keeps close-on-exec
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)


def chromium_binary() -> Optional[str]:
    """Return the chromium on PATH (Debian's package), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """One headless browser; use as a context manager."""

    def __init__(self, profile: Path, *, width: int = 1400, height: int = 1000) -> None:
        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("chromium is not installed (apt-get install chromium; .ci/run does)")
        profile.mkdir(parents=True, exist_ok=True)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        argv = [
            sys.executable,
            "-c",
            _SHIM,
            str(to_browser_r),
            str(from_browser_w),
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            argv, pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.width, self.height = width, height
        self.events: List[Dict[str, Any]] = []
        self._replies: Dict[int, Dict[str, Any]] = {}
        self._arrived: queue.Queue[Optional[Dict[str, Any]]] = queue.Queue()
        self._ids = itertools.count(1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Ask the browser to quit, then make sure it did."""
        if self.proc.poll() is None:
            try:
                self._send({"id": next(self._ids), "method": "Browser.close"})
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        os.close(self._to_browser)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def _read(self) -> None:
        buffered = b""
        while True:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                break
            buffered += chunk
            *messages, buffered = buffered.split(b"\0")
            for raw in messages:
                self._arrived.put(json.loads(raw))
        os.close(self._from_browser)
        self._arrived.put(None)

    def _send(self, message: Dict[str, Any]) -> None:
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, *, timeout: float = 60.0) -> Dict[str, Any]:
        """Send one command (to the page's session once one is attached) and return its result."""
        ident = next(self._ids)
        message: Dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + timeout
        while ident not in self._replies:
            self._pump(deadline, f"no reply to {method}")
        reply = self._replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: Dict[str, Any] = reply.get("result", {})
        return result

    def _pump(self, deadline: float, what: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"chromium: {what} in time")
        try:
            message = self._arrived.get(timeout=remaining)
        except queue.Empty:
            return
        if message is None:
            raise AssertionError(
                f"chromium exited: {self.proc.stderr.read().decode()[-2000:] if self.proc.stderr else ''}"
            )
        if "id" in message:
            self._replies[message["id"]] = message
        else:
            self.events.append(message)

    def open(self, url: str, *, timeout: float = 60.0) -> None:
        """Open ``url`` in a new page (console, log and network recorded) and wait for its load event."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", timeout=timeout)

    def wait_event(self, method: str, *, timeout: float = 60.0) -> Dict[str, Any]:
        """Return the first recorded event named ``method``, waiting for it if needed."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self._pump(deadline, f"no {method}")

    def evaluate(self, expression: str) -> Any:
        """Return the value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, *, timeout: float = 60.0) -> Any:
        """Evaluate ``expression`` until it is truthy (each evaluation after the events seen so far)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            # Let the page work: wait for any message from the browser (or a short while), then ask again.
            try:
                message = self._arrived.get(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                message = None
            if message is not None and "id" not in message:
                self.events.append(message)
            if time.monotonic() > deadline:
                raise AssertionError(f"{expression} never became true")

    def problems(self) -> List[str]:
        """Return the console errors and warnings, exceptions, error log entries and network requests seen."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails', {})}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:", "blob:", "about:")):
                    found.append(f"network request: {url}")
        return found

    def screenshot(self, path: Path, clip: Optional[Dict[str, float]] = None) -> Path:
        """Save a PNG of the viewport, or of ``clip`` (page coordinates: x, y, width, height)."""
        params: Dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


def screenshot_file(html: Path, png: Path, profile: Path, *, width: int = 1200, height: int = 800) -> Path:
    """Render a local HTML file to a PNG with chromium's own ``--screenshot`` (no protocol needed)."""
    binary = chromium_binary()
    assert binary is not None, "chromium is not installed"
    argv = [binary, *FLAGS[:-1], f"--user-data-dir={profile}", f"--window-size={width},{height}"]
    subprocess.run([*argv, f"--screenshot={png}", html.as_uri()], check=True, capture_output=True, timeout=120)
    return png


def png_pixels(path: Path) -> Tuple[int, int, List[Tuple[int, ...]]]:
    """Return (width, height, rows of pixel tuples) of an 8-bit RGB or RGBA PNG (non-interlaced)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, "only 8-bit RGB(A), non-interlaced"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: List[Tuple[int, ...]] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                best = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + best) & 0xFF
        rows.append(tuple(line))
        previous = line
    return width, height, rows


def non_white_pixels(path: Path, threshold: int = 235) -> int:
    """Return how many pixels of a PNG are not (nearly) white."""
    width, _, rows = png_pixels(path)
    channels = len(rows[0]) // width if rows else 3
    count = 0
    for row in rows:
        for x in range(width):
            pixel = row[x * channels : x * channels + 3]
            if min(pixel) < threshold:
                count += 1
    return count
