"""R4: lute.db under 32 concurrent writer processes, some SIGKILLed mid-write.

Each writer records its runs as a kernel does (`begin_run` before launch, `finish_run` after) and
reports every row it began and finished on its own pipe. A quarter of them are SIGKILLed at
points chosen from those reports (right after a begin, right after a finish); one more is killed
while it holds the write lock inside a transaction that has just added a column. Afterwards:
``PRAGMA integrity_check`` is ok, every finished row is there and final, a killed writer left at
most its one RUNNING row (shown as LOST), and the killed transaction left nothing at all.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sqlite3
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest
from figures import record as record_figure

from lute_kernel.db import RunRecord, begin_run, db_path, display_status, finish_run, list_rows

pytestmark = pytest.mark.reliability

WRITERS = 32
RUNS_EACH = 20
HOLDER = WRITERS  # the extra writer killed inside its transaction
HOLDER_COLUMN = "only_the_killed_transaction"


def make_record(writer: int, n: int, status: str = "COMPLETED") -> RunRecord:
    parameters: Dict[str, Any] = {"writer": writer, "n": n, f"only_{writer % 3}": {"v": [n, writer]}}
    if writer == HOLDER:
        parameters[HOLDER_COLUMN] = 1
    return RunRecord(
        task_name="Concurrent",
        header={"experiment": "xpptut15", "run": n % 4},
        parameters=parameters,
        task_status=status,
        summary=f"writer {writer} run {n}",
        payload={"n": n},
        env={"LUTE_WRITER": str(writer % 2)},
    )


def _report(conn: Connection, event: str, row_id: int) -> None:
    conn.send_bytes(json.dumps([event, row_id]).encode())


def write_runs(work_dir: str, writer: int, conn: Connection) -> None:
    """One writer: RUNS_EACH runs, each begun and finished, every step reported."""
    for n in range(RUNS_EACH):
        row_id = begin_run(work_dir, make_record(writer, n))
        _report(conn, "began", row_id)
        finish_run(work_dir, row_id, make_record(writer, n))
        _report(conn, "finished", row_id)


def hold_the_write_lock(work_dir: str, conn: Connection) -> None:
    """Begin a run and stop inside its transaction, after its new column was added, until killed."""
    from lute_kernel.db import writer as db_writer

    real = db_writer.ensure_task_table

    def ensure_then_wait(*args: Any, **kwargs: Any) -> Any:
        model = real(*args, **kwargs)
        _report(conn, "in-transaction", 0)
        conn.recv_bytes()  # never answered: the parent kills this process here
        return model

    db_writer.ensure_task_table = ensure_then_wait  # type: ignore[assignment]
    begin_run(work_dir, make_record(HOLDER, 0))


def test_concurrent_writers_and_sigkill_lose_no_finished_row(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    chooser = random.Random(4)
    killed = set(range(0, WRITERS, 4))
    kill_at = {w: (chooser.choice(["began", "finished"]), chooser.randrange(1, RUNS_EACH)) for w in killed}
    conns: Dict[Connection, int] = {}
    procs: Dict[int, Any] = {}
    for writer in range(WRITERS + 1):
        ours, theirs = context.Pipe(duplex=True)
        if writer == HOLDER:
            proc = context.Process(target=hold_the_write_lock, args=(str(tmp_path), theirs))
        else:
            proc = context.Process(target=write_runs, args=(str(tmp_path), writer, theirs))
        proc.start()
        theirs.close()
        conns[ours], procs[writer] = writer, proc

    began: Dict[int, List[int]] = {w: [] for w in procs}
    finished: Dict[int, Set[int]] = {w: set() for w in procs}
    while conns:
        for conn in wait(list(conns)):
            assert isinstance(conn, Connection)
            writer = conns[conn]
            try:
                event, row_id = json.loads(conn.recv_bytes())
            except EOFError:
                del conns[conn]
                conn.close()
                continue
            if event == "began":
                began[writer].append(row_id)
            elif event == "finished":
                finished[writer].add(row_id)
            count = len(began[writer]) if event == "began" else len(finished[writer])
            if event == "in-transaction" or (writer in kill_at and kill_at[writer] == (event, count)):
                os.kill(procs[writer].pid, signal.SIGKILL)
    for proc in procs.values():
        proc.join()

    with sqlite3.connect(db_path(tmp_path)) as con:
        integrity = con.execute("PRAGMA integrity_check").fetchall()
        columns = [row[1] for row in con.execute('PRAGMA table_info("Concurrent")')]
    rows = list_rows(tmp_path, "Concurrent", limit=10_000)
    by_writer: Dict[int, List[Dict[str, Any]]] = {w: [r for r in rows if r["writer"] == w] for w in procs}

    as_promised = 0
    for writer, proc in procs.items():
        mine = {row["id"]: row for row in by_writer[writer]}
        final = {i for i, row in mine.items() if row["result.task_status"] == "COMPLETED" and row["valid_flag"] == 1}
        running = [row for row in mine.values() if row["result.task_status"] == "RUNNING"]
        if writer == HOLDER:
            ok = proc.exitcode == -signal.SIGKILL and not mine and HOLDER_COLUMN not in columns
        elif writer in killed:
            ok = (
                proc.exitcode == -signal.SIGKILL
                and finished[writer] <= final
                and set(began[writer]) <= set(mine)
                and set(mine) == final | {row["id"] for row in running}
                and len(running) <= 1
                and all(display_status(row) == "LOST" and row["valid_flag"] == 0 for row in running)
            )
        else:
            ok = proc.exitcode == 0 and set(mine) == final == finished[writer] and len(final) == RUNS_EACH
        as_promised += bool(ok)
    tried = len(procs) + 1  # every writer, and the file's integrity
    as_promised += integrity == [("ok",)]
    lost = sum(display_status(row) == "LOST" for row in rows)
    print(f"R4: {len(rows)} rows, {lost} LOST, writers killed: {len(killed) + 1}")
    record_figure("R4 DB concurrency", tried, as_promised)
    assert integrity == [("ok",)]
    assert as_promised == tried, {w: (procs[w].exitcode, len(by_writer[w]), len(finished[w])) for w in procs}
