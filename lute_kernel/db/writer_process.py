"""The run path's database writes in a process of their own, started before the kernel's imports.

Owns the ``lute-kernel run`` process's row writer: `start` forks a small process first thing,
which imports the database layer (peewee and ``lute_kernel.db.writer``, ~15 ms) on the other
core while the kernel imports, validates and spawns; `begin_run` and `finish_run` then hand it
each row and wait for its answer, so neither the RUNNING row nor the final one waits for that
import. The writes, their transactions and their errors are exactly ``lute_kernel.db.writer``'s:
the process calls those functions and sends back the row id or the error (its type and message).

Whenever the process cannot take a row — never started (a library caller, a flow, a warm
kernel, ``LUTE_NO_WRITER_PROCESS=1``), gone, or the record holds something JSON would not carry
back unchanged — the row is written in this process as before. Messages are JSON lines on two
pipes (never pickle); the process ignores SIGINT, SIGTERM and SIGHUP (the kernel decides when a
run ends) and ends when its request pipe closes, that is when the kernel ends. Must not be used
by Tasks or the worker: only the executor records runs.
"""

from __future__ import annotations

import os
import signal
import sys

from lute_kernel.db.row_json import decode_fields, encode_fields, raise_error

TYPE_CHECKING = False  # not typing's: this module is imported before anything else of a `run`
if TYPE_CHECKING:
    from typing import IO, Any, Dict, Mapping, Optional

    from lute_kernel.db.connection import PathLike
    from lute_kernel.db.records import RunRecord

    RecordFields = Mapping[str, Any]
    """`RunRecord`'s fields by name: what the kernel has of a row before (and without) the dataclass."""

__all__ = ["PendingRow", "begin_run", "begin_run_soon", "finish_run", "running", "start", "stop"]

_DISABLE = "LUTE_NO_WRITER_PROCESS"


class _WriterProcess:
    """The kernel's handle on its writer process: its pid, both pipes, and the request awaiting its reply."""

    def __init__(self, pid: int, requests: IO[bytes], replies: IO[bytes]) -> None:
        import threading  # imported by the kernel long before its first row

        self.pid = pid
        self.requests = requests
        self.replies = replies
        self.lock = threading.Lock()
        self.waiting: Optional[PendingReply] = None
        """The request sent last, until its reply is read (the process answers in order)."""

    def send(self, request: Dict[str, Any]) -> Optional[PendingReply]:
        """Send one request; return what will hold its reply, or None when the process is gone."""
        import json

        with self.lock:
            if self.waiting is not None:
                self._read(self.waiting)
            pending = PendingReply(self)
            try:
                self.requests.write(json.dumps(request).encode("utf-8") + b"\n")
                self.requests.flush()
            except OSError:  # EPIPE: the process is gone
                return None
            self.waiting = pending
            return pending

    def reply_to(self, pending: PendingReply) -> Optional[Dict[str, Any]]:
        """Wait for the reply ``pending`` stands for; None when the process went away first."""
        with self.lock:
            if self.waiting is pending:
                self._read(pending)
            return pending.reply

    def _read(self, pending: PendingReply) -> None:
        import json

        self.waiting = None
        try:
            line = self.replies.readline()
        except OSError:
            line = b""
        pending.reply = json.loads(line) if line else None

    def close(self) -> None:
        """Close the request pipe (the process then ends) and reap it."""
        for stream in (self.requests, self.replies):
            try:
                stream.close()
            except OSError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


class PendingReply:
    """The writer process's reply to one request, once read (None: the process went away)."""

    def __init__(self, process: _WriterProcess) -> None:
        self.process = process
        self.reply: Optional[Dict[str, Any]] = None


_process: Optional[_WriterProcess] = None


def running() -> bool:
    """Return True when this process has a writer process to hand rows to."""
    return _process is not None


def start() -> bool:
    """Fork the writer process unless it would not help; return True when one is running.

    Only from a single-threaded process that has not imported peewee yet (a warm kernel's
    command already has it), and not when ``LUTE_NO_WRITER_PROCESS`` is set.
    """
    global _process
    if _process is not None:
        return True
    threading = sys.modules.get("threading")
    if (
        os.environ.get(_DISABLE) not in (None, "", "0")
        or "peewee" in sys.modules
        or not hasattr(os, "fork")
        or (threading is not None and threading.active_count() > 1)
    ):
        return False
    request_r, request_w = os.pipe()  # non-inheritable: an exec'd Task never holds them
    reply_r, reply_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process to spare (a limit on processes): the rows are written here
        for fd in (request_r, request_w, reply_r, reply_w):
            os.close(fd)
        return False
    if pid == 0:  # pragma: no cover - runs in the child, measured through the parent's tests
        code = 1
        try:
            os.close(request_w)
            os.close(reply_r)
            code = _serve(request_r, reply_w)
        finally:
            os._exit(code)
    os.close(request_r)
    os.close(reply_w)
    from lute_kernel.descendants import started  # the executor imports it anyway

    started(pid)  # the kernel's own child, not an orphan a run's sweep should kill
    _process = _WriterProcess(pid, os.fdopen(request_w, "wb"), os.fdopen(reply_r, "rb"))
    return True


def stop() -> None:
    """End the writer process (if any) and wait for it; later rows are written in this process."""
    global _process
    if _process is not None:
        process, _process = _process, None
        process.close()


def _serve(request_fd: int, reply_fd: int) -> int:  # pragma: no cover - the child's loop
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):  # a reader of the kernel's output must not wait for this process too
        os.dup2(devnull, target)
    import json

    from lute_kernel.db import writer

    with os.fdopen(request_fd, "rb") as requests, os.fdopen(reply_fd, "wb") as replies:
        for line in requests:
            replies.write(json.dumps(_answer(writer, json.loads(line))).encode("utf-8") + b"\n")
            replies.flush()
    return 0


def _answer(writer: Any, request: Dict[str, Any]) -> Dict[str, Any]:
    """Do one request with ``lute_kernel.db.writer``; return ``{"ok": …}`` or ``{"error": [type, message]}``."""
    try:
        record = decode_fields(request["record"])
        if request["op"] == "begin":
            return {"ok": writer.begin_run(request["work_dir"], record)}
        writer.finish_run(request["work_dir"], request["row_id"], record)
        return {"ok": None}
    except Exception as exc:
        return {"error": [type(exc).__name__, str(exc)]}


def _send(request: Dict[str, Any], fields: RecordFields) -> Optional[PendingReply]:
    """Hand ``request`` carrying ``fields`` to the writer process; None: write it here instead."""
    process = _process
    encoded = encode_fields(fields) if process is not None else None
    if process is None or encoded is None:
        return None
    pending = process.send({**request, "record": encoded})
    if pending is None:  # gone: every later row is written here
        stop()
    return pending


def _reply(pending: Optional[PendingReply]) -> Optional[Dict[str, Any]]:
    """The reply ``pending`` stands for; None when there is none (write here instead)."""
    if pending is None:
        return None
    reply = pending.process.reply_to(pending)
    if reply is None:
        stop()
    return reply


def _record(fields: RecordFields) -> RunRecord:
    from lute_kernel.db.records import RunRecord

    return RunRecord(**fields)


class PendingRow:
    """A RUNNING row handed to the writer process (or to be written here): `row_id` waits for it."""

    def __init__(self, work_dir: PathLike, fields: RecordFields) -> None:
        self.work_dir = work_dir
        self.fields = fields
        self._pending = _send({"op": "begin", "work_dir": os.fspath(work_dir)}, fields)

    def row_id(self) -> int:
        """The row's id once written (here, if the writer process could not take it)."""
        reply = _reply(self._pending)
        if reply is None:
            from lute_kernel.db.writer import begin_run as write_here

            return write_here(self.work_dir, _record(self.fields))
        if "error" in reply:
            raise_error(reply["error"])
        return int(reply["ok"])


def begin_run_soon(work_dir: PathLike, fields: RecordFields) -> PendingRow:
    """Hand a run's RUNNING row (`RunRecord`'s fields by name) to the writer process now; wait for it later.

    Without a writer process the row is written when ``row_id()`` is called, as `begin_run` would.
    """
    return PendingRow(work_dir, fields)


def begin_run(work_dir: PathLike, fields: RecordFields) -> int:
    """``lute_kernel.db.writer.begin_run`` of ``RunRecord(**fields)``, in the writer process when there is one."""
    return PendingRow(work_dir, fields).row_id()


def finish_run(work_dir: PathLike, row_id: int, fields: RecordFields) -> None:
    """``lute_kernel.db.writer.finish_run`` of ``RunRecord(**fields)``, in the writer process when there is one."""
    reply = _reply(_send({"op": "finish", "work_dir": os.fspath(work_dir), "row_id": row_id}, fields))
    if reply is None:
        from lute_kernel.db.writer import finish_run as write_here

        write_here(work_dir, row_id, _record(fields))
    elif "error" in reply:
        raise_error(reply["error"])
