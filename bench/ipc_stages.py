"""P3's breakdown: the cost of each step of one small IPC message, measured in one process.

Owns timing, per ``log`` message: ``encode`` (and ``json.dumps`` alone), the DEALER's send
(zero-copy, as the client sends, and copied), the ROUTER's receive (as ``receive_ready`` reads:
``NOBLOCK`` until nothing waits; zero-copy and copied), admission (token check + decode, for a bound
rank), and decode's parts (the bounded JSON parse, ``json.loads`` alone, the header checks). The
same per message of a full ``batch`` (512 log messages, as the worker's flusher sends a flood):
``batch_body`` on the Task's thread, ``encode_batch``, admission of the batch, its parse and its
checks. The sender's and the receiver's sums bound the rate two processes can reach (``bound_*``).
Each figure is the best of a few rounds (the machine is shared). Measures; never asserts.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

LOG_BODY = {"level": "INFO", "logger": "lute.task.Bench", "message": "Processed event 1 of run 0014: 12 peaks found"}


ROUNDS = 5


def _per_message_us(step: Callable[[], Any], count: int, per_call: int = 1) -> float:
    """Microseconds per message of ``step`` (which handles ``per_call`` messages): the best of ROUNDS."""
    calls = max(count // per_call, 1)
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        best = min(best, time.perf_counter() - t0)
    return best / (calls * per_call) * 1e6


def batch_stages(count: int = 20_000) -> Dict[str, float]:
    """Microseconds per small ``log`` message inside a full batch, for each step (one process)."""
    from lute_kernel.ipc.admission import Admission
    from lute_kernel.ipc.bounded_json import load_header
    from lute_kernel.ipc.protocol import MAX_BATCH, batch_body, encode, encode_batch
    from lute_kernel.ipc.schema import check_batch

    bodies = [{**LOG_BODY, "message": f"Processed event {i} of run 0014: 12 peaks found"} for i in range(MAX_BATCH)]
    items = [("log", batch_body(body)) for body in bodies]
    head = encode_batch(items)
    token = secrets.token_hex(16)
    admission = Admission(token, 1 << 30)
    identity = b"w" + bytes(15)
    admission.admit([identity, token.encode(), *encode("hello", {"pid": 1, "python": "3"})])
    frames = [identity, token.encode(), head]
    parsed = load_header(head, max_header_bytes=64 << 20)
    out: Dict[str, float] = {"batch_header_bytes_per_message": len(head) / MAX_BATCH}
    out["batch_body_us"] = _per_message_us(lambda: [batch_body(body) for body in bodies], count, MAX_BATCH)
    out["encode_batch_us"] = _per_message_us(lambda: encode_batch(items), count, MAX_BATCH)
    out["admit_batch_us"] = _per_message_us(lambda: admission.admit(frames), count, MAX_BATCH)
    out["load_batch_us"] = _per_message_us(lambda: load_header(head, max_header_bytes=64 << 20), count, MAX_BATCH)
    out["json_loads_batch_us"] = _per_message_us(lambda: json.loads(head), count, MAX_BATCH)
    out["check_batch_us"] = _per_message_us(lambda: check_batch(parsed["body"]), count, MAX_BATCH)
    out["batch_sender_us"] = out["batch_body_us"] + out["encode_batch_us"]
    out["batch_bound_msg_per_s"] = 1e6 / max(out["batch_sender_us"], out["admit_batch_us"])
    return out


def stages(count: int = 20_000) -> Dict[str, float]:
    """Microseconds per small ``log`` message for each step, measured in this process (no second process)."""
    import zmq

    from lute_kernel.ipc.admission import Admission
    from lute_kernel.ipc.bounded_json import load_header
    from lute_kernel.ipc.protocol import decode, encode
    from lute_kernel.ipc.schema import check_header

    body = dict(LOG_BODY)  # what IpcLogHandler sends
    frames = encode("log", body)
    head = bytes(frames[0])
    token = secrets.token_hex(16)
    out: Dict[str, float] = {"header_bytes": float(len(head))}
    out["encode_us"] = _per_message_us(lambda: encode("log", body), count)
    out["json_dumps_us"] = _per_message_us(lambda: json.dumps({"v": 2, "body": body}), count)
    run_dir = Path(tempfile.mkdtemp(prefix="lute-bench-"))
    context = zmq.Context()
    router, dealer = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    for sock in (router, dealer):
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.LINGER, 0)
    try:
        endpoint = f"ipc://{run_dir}/s"
        router.bind(endpoint)
        dealer.connect(endpoint)
        parts = [token.encode(), head]
        for copy, key in ((False, "send_zero_copy_us"), (True, "send_copy_us")):
            out[key] = _per_message_us(lambda copy=copy: dealer.send_multipart(parts, copy=copy), count)
        received: List[Any] = []
        router.poll(5000)
        t0 = time.perf_counter()
        while len(received) < count:  # as receive_ready reads: NOBLOCK until nothing is waiting
            try:
                received.append(router.recv_multipart(zmq.NOBLOCK, copy=False))
            except zmq.Again:
                if not router.poll(5000):
                    break
        out["receive_us"] = (time.perf_counter() - t0) / max(len(received), 1) * 1e6
        t0 = time.perf_counter()
        copied = 0
        while copied < count:
            try:
                router.recv_multipart(zmq.NOBLOCK)
                copied += 1
            except zmq.Again:
                if not router.poll(5000):
                    break
        out["receive_copy_us"] = (time.perf_counter() - t0) / max(copied, 1) * 1e6
    finally:
        router.close()
        dealer.close()
        context.term()
        shutil.rmtree(run_dir, ignore_errors=True)
    admission = Admission(token, 1 << 30)
    hello = encode("hello", {"pid": 1, "python": "3"})
    identity = received[0][0]
    admission.admit([identity, received[0][1], *hello])  # bind the rank, as a real run does first
    sample = received[: min(len(received), count)]
    messages = iter(sample * ROUNDS)
    out["admit_us"] = _per_message_us(lambda: admission.admit(next(messages)), len(sample))
    out["decode_us"] = _per_message_us(lambda: decode([head]), count)
    out["load_header_us"] = _per_message_us(lambda: load_header(head, max_header_bytes=64 << 20), count)
    out["json_loads_us"] = _per_message_us(lambda: json.loads(head), count)
    parsed = json.loads(head)
    out["check_header_us"] = _per_message_us(lambda: check_header(parsed, 0), count)
    out["sender_us"] = out["encode_us"] + out["send_zero_copy_us"]
    out["receiver_us"] = out["receive_us"] + out["admit_us"]
    out["bound_msg_per_s"] = 1e6 / max(out["sender_us"], out["receiver_us"])
    out.update(batch_stages(count))
    return out
