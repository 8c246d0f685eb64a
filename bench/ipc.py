"""P3: IPC throughput, the real IpcClient (child process) -> the real IpcServer (this process).

Three measurements, then where a small message's time goes:
- small messages: ``log``-sized messages (the body the worker's log handler sends), msg/s;
- big arrays: 8 MB float64 arrays as ``progress`` data (as TestSocket sends them), MB/s;
- the whole kernel: ``lute-kernel run TestSocket`` with 8 MB arrays, MB/s over the run.

The socket is ``ipc://<tmp run dir, 0700>/s`` as in the executor; the parent decodes every
message with the real protocol (``IpcServer.receive_ready``). As in a real run, the child says
``hello`` and waits for ``params``; the clock runs from sending ``params`` until ``bye`` has been
received and every message before it decoded, so process start-up (and the sender importing numpy and
making its array, ~0.25 s: once a quarter of the arrays' window) is not counted in the first
two. The child waits for an answer to its ``bye`` before it closes: without it, libzmq sometimes
drops the last message after a flood (the kernel's ROUTER has RCVHWM 1000; a peer that closes
while that pipe is full loses what the engine still held — seen here about once in 20 streams of
20 000 messages, never with RCVHWM 0). ``stages`` times each step of one small message in this
process (encode, the DEALER's send, the ROUTER's receive, admission = token check + decode, and
decode's parts: the bounded JSON parse and the header checks), alone and per message of a full
batch (what a flood really sends): the sender's and the receiver's sums bound the rate two
processes can reach.

    python bench/ipc.py [--messages 100000] [--arrays 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BenchmarkFailed, bench_env, load, lute_kernel_cmd, write_config  # noqa: E402
from ipc_stages import stages  # noqa: E402

TARGET_MSG_S = 100_000
TARGET_MB_S = 1_000
ARRAY_VALUES = 1_000_000  # float64: 8 MB
MB = 1e6

SENDER = r"""
import os, sys, time
from lute_kernel.ipc.client import IpcClient

endpoint, token, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode != "log":  # set-up, before the clock starts: importing numpy alone takes ~0.1 s
    import numpy as np
    data = np.random.default_rng(0).random(int(sys.argv[5]))
client = IpcClient(endpoint, token=token)
client.send("hello", {"pid": os.getpid(), "python": sys.version.split()[0]})
client.receive(60_000)  # the "params" reply: the parent's clock starts when it sends it
t0 = time.perf_counter()
if mode == "log":
    for i in range(count):
        client.send("log", {"level": "INFO", "logger": "lute.task.Bench",  # what IpcLogHandler sends
                            "message": f"Processed event {i} of run 0014: 12 peaks found"})
else:
    for i in range(count):
        client.send("progress", {"done": i + 1, "total": count, "message": f"array {i}", "data": data})
client.send("bye", {"exit_code": 0, "send_s": time.perf_counter() - t0})
client.receive(60_000)  # the parent's ack: closing before it may lose the bye (libzmq drops what a full pipe holds)
client.close()
"""


def stream(mode: str, count: int, array_values: int = 0) -> Dict[str, Any]:
    """Have a child send ``count`` messages; receive and decode them all; return counts and time."""
    import zmq

    from lute_kernel.ipc.server import SOCKET_NAME, IpcServer

    run_dir = Path(tempfile.mkdtemp(prefix="lute-bench-"))  # mkdtemp makes it 0700, like the executor's
    server = IpcServer(run_dir, secrets.token_hex(16))
    child = subprocess.Popen(
        [sys.executable, "-c", SENDER, server.endpoint, server.token, mode, str(count), str(array_values)],
        env=bench_env(),
    )
    poller = zmq.Poller()
    poller.register(server.socket, zmq.POLLIN)
    received = nbytes = largest_batch = 0
    start = end = sender_s = 0.0
    checksum = 0.0
    try:
        while not end:
            if not poller.poll(60_000):
                raise BenchmarkFailed(
                    f"ipc benchmark: no message for 60 s (child exit code {child.poll()}; {received} {mode}"
                    f" messages received, params sent: {bool(start)}; dropped: {server.rejection_note()})"
                )
            batch = server.receive_ready()  # decodes every message waiting now
            largest_batch = max(largest_batch, len(batch))
            for identity, message in batch:
                if message.kind == "hello":
                    server.send(identity, "params", {})
                    start = time.perf_counter()
                elif message.kind == "bye":
                    end = time.perf_counter()
                    server.send(identity, "bye", {"exit_code": 0})
                    sender_s = float(message.body.get("send_s", 0.0))
                else:
                    received += 1
                    nbytes += message.nbytes
                    if message.arrays:
                        checksum += float(message.arrays[0][-1])  # touch the data that arrived
        if child.wait(60) != 0:
            raise BenchmarkFailed(f"ipc benchmark: sender failed with {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
        server.close(run_dir / SOCKET_NAME)
        shutil.rmtree(run_dir, ignore_errors=True)
    if received != count:
        raise BenchmarkFailed(f"ipc benchmark: sent {count} {mode} messages, received {received}")
    seconds = end - start
    return {
        "messages": received,
        "bytes": nbytes,
        "seconds": seconds,
        "msg_per_s": received / seconds,
        "mb_per_s": nbytes / MB / seconds,
        "sender_busy_s": sender_s,
        "largest_receive_batch": largest_batch,
    }


def repeated(mode: str, count: int, repeats: int, array_values: int = 0) -> Dict[str, Any]:
    """``stream`` ``repeats`` times; the run with the median rate, and every rate."""
    key = "msg_per_s" if mode == "log" else "mb_per_s"
    runs = sorted((stream(mode, count, array_values) for _ in range(max(repeats, 1))), key=lambda r: r[key])
    result = dict(runs[len(runs) // 2])
    result["rates"] = [round(r[key], 1) for r in runs]
    return result


def through_kernel(num_arrays: int) -> Dict[str, Any]:
    """``lute-kernel run TestSocket`` sending ``num_arrays`` 8 MB arrays; MB/s over the run."""
    with tempfile.TemporaryDirectory(prefix="lute-bench-") as tmp:
        config = write_config(Path(tmp), {"TestSocket": {"array_size": ARRAY_VALUES, "num_arrays": num_arrays}})
        argv = [*lute_kernel_cmd(), "run", "TestSocket", "-c", str(config)]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=bench_env(), cwd=REPO)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchmarkFailed(f"TestSocket run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    match = re.search(r"COMPLETED in ([0-9.]+) s", proc.stdout)
    task_s = float(match.group(1)) if match else wall
    data_mb = num_arrays * ARRAY_VALUES * 8 / MB
    return {
        "cmd": " ".join(argv[-4:-2]) + f" (array_size {ARRAY_VALUES}, num_arrays {num_arrays})",
        "data_mb": data_mb,
        "wall_s": wall,
        "task_s": task_s,
        "mb_per_s_wall": data_mb / wall,
        "mb_per_s_task": data_mb / task_s,
    }


def report(result: Dict[str, Any]) -> None:
    """Print the results for people."""
    small, big, kernel, cost = (
        result["small_messages"],
        result["big_arrays"],
        result["through_kernel"],
        result["stages"],
    )
    print(
        "P3 ipc: IpcClient in a child -> IpcServer here, every message decoded"
        f" (load {result['load'][0]} -> {result['load'][1]})"
    )
    print(
        f"  small log messages: {small['messages']:,} in {small['seconds']:.3f} s = {small['msg_per_s']:,.0f} msg/s"
        f" (median of {small['rates']}; target >= {TARGET_MSG_S:,}); sender busy {small['sender_busy_s']:.2f} s,"
        f" largest batch {small['largest_receive_batch']}"
    )
    print(
        f"    per message, in one process (us): sender = encode {cost['encode_us']:.1f} (json.dumps alone"
        f" {cost['json_dumps_us']:.1f}) + send {cost['send_zero_copy_us']:.1f} (copy=True: {cost['send_copy_us']:.1f})"
        f" = {cost['sender_us']:.1f}; receiver = receive {cost['receive_us']:.1f}"
        f" (copy=True: {cost['receive_copy_us']:.1f}) + admission {cost['admit_us']:.1f}"
        f" (decode {cost['decode_us']:.1f} = bounded parse {cost['load_header_us']:.1f} [json.loads alone"
        f" {cost['json_loads_us']:.1f}] + header checks {cost['check_header_us']:.1f}) = {cost['receiver_us']:.1f};"
        f" bound {cost['bound_msg_per_s']:,.0f} msg/s"
    )
    print(
        f"    per message in a batch of 512 (us): sender = batch_body {cost['batch_body_us']:.2f} + encode_batch"
        f" {cost['encode_batch_us']:.2f} = {cost['batch_sender_us']:.2f};"
        f" receiver = admission {cost['admit_batch_us']:.2f}"
        f" (bounded parse {cost['load_batch_us']:.2f} [json.loads alone {cost['json_loads_batch_us']:.2f}] + checks"
        f" {cost['check_batch_us']:.2f} + a Message each); {cost['batch_header_bytes_per_message']:.0f} bytes each;"
        f" bound {cost['batch_bound_msg_per_s']:,.0f} msg/s"
    )
    print(
        f"  8 MB float64 arrays: {big['messages']} ({big['bytes'] / MB:,.0f} MB) in {big['seconds']:.3f} s"
        f" = {big['mb_per_s']:,.0f} MB/s (median of {big['rates']}; target >= {TARGET_MB_S:,})"
    )
    print(
        f"  whole kernel, {kernel['cmd']}: {kernel['mb_per_s_task']:,.0f} MB/s over the Task's run"
        f" ({kernel['task_s']:.2f} s), {kernel['mb_per_s_wall']:,.0f} MB/s over the command ({kernel['wall_s']:.2f} s)"
    )


def rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """P3's two rows, and the whole-kernel figure."""
    small, big, kernel = result["small_messages"], result["big_arrays"], result["through_kernel"]
    return [
        {
            "id": "P3",
            "measure": "small IPC messages, worker -> kernel",
            "kernel": f"{small['msg_per_s']:,.0f} msg/s",
            "baseline": "-",
            "ratio": None,
            "target": f">= {TARGET_MSG_S:,} msg/s",
            "verdict": "meets" if small["msg_per_s"] >= TARGET_MSG_S else "MISSES",
            "load": result["load"],
        },
        {
            "id": "P3",
            "measure": "8 MB arrays, worker -> kernel",
            "kernel": f"{big['mb_per_s']:,.0f} MB/s",
            "baseline": "-",
            "ratio": None,
            "target": f">= {TARGET_MB_S:,} MB/s",
            "verdict": "meets" if big["mb_per_s"] >= TARGET_MB_S else "MISSES",
            "load": result["load"],
        },
        {
            "id": "-",
            "measure": f"`run TestSocket`, {kernel['data_mb']:,.0f} MB in 8 MB arrays",
            "kernel": f"{kernel['mb_per_s_task']:,.0f} MB/s (Task), {kernel['mb_per_s_wall']:,.0f} MB/s (command)",
            "baseline": "-",
            "ratio": None,
            "target": "-",
            "verdict": "-",
            "load": None,
        },
    ]


def run(messages: int = 100_000, arrays: int = 100, kernel_arrays: int = 50, repeats: int = 3) -> Dict[str, Any]:
    """Run the measurements."""
    before = load()
    result = {
        "small_messages": repeated("log", messages, repeats),
        "big_arrays": repeated("progress", arrays, repeats, ARRAY_VALUES),
        "stages": stages(),
        "through_kernel": through_kernel(kernel_arrays),
    }
    result["load"] = [before, load()]
    return result


def main(argv: Sequence[str] = ()) -> int:
    """Command line: run, print, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="small messages to send")
    parser.add_argument("--arrays", type=int, default=100, help="8 MB arrays to send (socket only)")
    parser.add_argument("--kernel-arrays", type=int, default=50, help="8 MB arrays TestSocket sends")
    parser.add_argument("--repeats", type=int, default=3, help="streams of each kind (the median is kept)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(list(argv))
    result = run(args.messages, args.arrays, args.kernel_arrays, args.repeats)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
