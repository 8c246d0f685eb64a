"""IPC throughput: the real IpcClient (child process) -> the real IpcServer (this process).

Three measurements:
- small messages: ``log``-sized messages (the body the worker's log handler sends), msg/s;
- big arrays: 8 MB float64 arrays as ``progress`` data (as TestSocket sends them), MB/s;
- the whole kernel: ``lute-kernel run TestSocket`` with 8 MB arrays, MB/s over the run.

The socket is ``ipc://<tmp run dir, 0700>/s`` as in the executor; the parent decodes every
message with the real protocol (``IpcServer.receive_ready``). As in a real run, the child says
``hello`` and waits for ``params``; the clock runs from sending ``params`` until ``bye`` has been
received and every message before it decoded, so process start-up is not counted in the first two.

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
from typing import Any, Dict, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import bench_env, lute_kernel_cmd, write_config  # noqa: E402

TARGET_MSG_S = 50_000
TARGET_MB_S = 500
ARRAY_VALUES = 1_000_000  # float64: 8 MB
MB = 1e6

SENDER = r"""
import os, sys, time
from lute_kernel.ipc.client import IpcClient

endpoint, token, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = IpcClient(endpoint, token=token)
client.send("hello", {"pid": os.getpid(), "python": sys.version.split()[0]})
client.receive(60_000)  # the "params" reply: the parent's clock starts when it sends it
t0 = time.perf_counter()
if mode == "log":
    for i in range(count):
        client.send("log", {"level": "INFO", "logger": "lute.task.Bench",
                            "message": f"Processed event {i} of run 0014: 12 peaks found", "time": time.time()})
else:
    import numpy as np
    data = np.random.default_rng(0).random(int(sys.argv[5]))
    for i in range(count):
        client.send("progress", {"done": i + 1, "total": count, "message": f"array {i}", "data": data})
client.send("bye", {"exit_code": 0, "send_s": time.perf_counter() - t0})
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
                raise SystemExit(f"ipc benchmark: no message for 60 s (child exit code {child.poll()})")
            batch = server.receive_ready()  # decodes every message waiting now
            largest_batch = max(largest_batch, len(batch))
            for identity, message in batch:
                if message.kind == "hello":
                    server.send(identity, "params", {})
                    start = time.perf_counter()
                elif message.kind == "bye":
                    end = time.perf_counter()
                    sender_s = float(message.body.get("send_s", 0.0))
                else:
                    received += 1
                    nbytes += message.nbytes
                    if message.arrays:
                        checksum += float(message.arrays[0][-1])  # touch the data that arrived
        if child.wait(60) != 0:
            raise SystemExit(f"ipc benchmark: sender failed with {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
        server.close(run_dir / SOCKET_NAME)
        shutil.rmtree(run_dir, ignore_errors=True)
    if received != count:
        raise SystemExit(f"ipc benchmark: sent {count} {mode} messages, received {received}")
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


def codec_cost(count: int = 20_000) -> Dict[str, float]:
    """Microseconds to encode and to decode one log message in-process (no socket): the protocol's share."""
    from lute_kernel.ipc.protocol import decode, encode

    body = {"level": "INFO", "logger": "lute.task.Bench", "message": "Processed event 1 of run 0014", "time": 0.0}
    t0 = time.perf_counter()
    for _ in range(count):
        frames = encode("log", body)
    t1 = time.perf_counter()
    for _ in range(count):
        decode(frames)
    t2 = time.perf_counter()
    return {"encode_us": (t1 - t0) / count * 1e6, "decode_us": (t2 - t1) / count * 1e6}


def small_messages(count: int) -> Dict[str, Any]:
    """``log`` messages, one JSON frame each (~150 bytes)."""
    result = stream("log", count)
    result["target_msg_per_s"] = TARGET_MSG_S
    result.update(codec_cost())
    return result


def big_arrays(count: int) -> Dict[str, Any]:
    """``progress`` messages each carrying one 8 MB float64 array as a raw frame."""
    result = stream("progress", count, ARRAY_VALUES)
    result["array_mb"] = ARRAY_VALUES * 8 / MB
    result["target_mb_per_s"] = TARGET_MB_S
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
        raise SystemExit(f"TestSocket run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
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
    small, big, kernel = result["small_messages"], result["big_arrays"], result["through_kernel"]
    verdict = {True: "meets", False: "MISSES"}
    print("ipc (IpcClient in a child -> IpcServer here, ipc:// socket in a 0700 tmp dir, every message decoded):")
    print(
        f"  small log messages: {small['messages']} in {small['seconds']:.3f} s = {small['msg_per_s']:,.0f} msg/s"
        f" ({verdict[small['msg_per_s'] >= TARGET_MSG_S]} the {TARGET_MSG_S:,} msg/s target;"
        f" largest batch per receive_ready call: {small['largest_receive_batch']})"
    )
    print(
        f"    sender busy {small['sender_busy_s']:.3f} s; in-process cost per message:"
        f" encode {small['encode_us']:.1f} us, decode {small['decode_us']:.1f} us"
    )
    print(
        f"  8 MB float64 arrays: {big['messages']} ({big['bytes'] / MB:,.0f} MB) in {big['seconds']:.3f} s"
        f" = {big['mb_per_s']:,.0f} MB/s ({verdict[big['mb_per_s'] >= TARGET_MB_S]} the {TARGET_MB_S} MB/s target;"
        f" largest batch: {big['largest_receive_batch']})"
    )
    print(
        f"  whole kernel, {kernel['cmd']}: {kernel['data_mb']:,.0f} MB;"
        f" {kernel['mb_per_s_task']:,.0f} MB/s over the Task's run ({kernel['task_s']:.2f} s),"
        f" {kernel['mb_per_s_wall']:,.0f} MB/s over the whole command ({kernel['wall_s']:.2f} s,"
        " includes start-up and generating the random arrays)"
    )


def run(messages: int = 100_000, arrays: int = 100, kernel_arrays: int = 50) -> Dict[str, Any]:
    """Run the three measurements."""
    return {
        "small_messages": small_messages(messages),
        "big_arrays": big_arrays(arrays),
        "through_kernel": through_kernel(kernel_arrays),
    }


def main(argv: Sequence[str] = ()) -> int:
    """Command line: run, print, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000, help="small messages to send")
    parser.add_argument("--arrays", type=int, default=100, help="8 MB arrays to send (socket only)")
    parser.add_argument("--kernel-arrays", type=int, default=50, help="8 MB arrays TestSocket sends")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(list(argv) or None)
    result = run(args.messages, args.arrays, args.kernel_arrays)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
