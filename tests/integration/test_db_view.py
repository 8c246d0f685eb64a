"""`lute-kernel db view` on the DB of real runs: Textual's pilot drives it headless, tmux runs it for real.

The viewer must never write or lock the database: its reads leave the files as they were, and a writer
in another process that refuses to wait at all (``busy_timeout`` 0: any lock would fail it at once)
commits thousands of times while the viewer reloads as fast as it can.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Tuple

import pytest
from conftest import REPO, run_cli
from e2e import isolated_env, rows
from rich.console import Console
from textual.css.query import NoMatches
from textual.widgets import DataTable, Input, Static, TabbedContent

from lute_kernel.cli.view import DbView, is_racy
from lute_kernel.db import RunRecord, begin_run
from lute_kernel.file_stamps import RACY_NS

pytestmark = [pytest.mark.integration]

WRITES = 2000
WRITER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)  # never waits for a lock
con.execute("PRAGMA busy_timeout = 0")
con.execute("CREATE TABLE IF NOT EXISTS WriterProbe (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER)")
print("ready", flush=True)
for n in range(int(sys.argv[2])):
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO WriterProbe (n) VALUES (?)", (n,))
    con.execute("COMMIT")
print("done", flush=True)
"""


@pytest.fixture
def real_db(make_config: Callable[..., Path], work_dir: Path, cli_env: Dict[str, str], tmp_path: Path) -> Path:
    """A lute.db of real runs: Test twice (one FAILED), TestWriteOutput, TestReadOutput; a LOST row."""
    env = isolated_env(cli_env, tmp_path / "t")
    ok = make_config(
        {"Test": {"compound_var": {"int_var": 3}, "sleep_secs": 0}, "TestWriteOutput": {}, "TestReadOutput": {}}
    )
    bad = make_config({"Test": {"compound_var": {"int_var": 3}, "sleep_secs": 0, "throw_error": True}})
    for task, config, code in (
        ("Test", ok, 0),
        ("Test", bad, 1),
        ("TestWriteOutput", ok, 0),
        ("TestReadOutput", ok, 0),
    ):
        done = run_cli("run", task, "-c", str(config), env=env)
        assert done.returncode == code, done.stdout + done.stderr
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    header = {"title": "t", "experiment": "xpptut15", "run": 14, "date": "2026/11/22", "task_timeout": 60}
    begin_run(  # a kernel that died with its Task running
        work_dir,
        RunRecord("TestWriteOutput", header, {"outfile_name": "lost.txt"}, "RUNNING", "", None, pid=int(dead.stdout)),
    )
    return work_dir


def text_of(renderable: Any, width: int = 160) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def files_state(work_dir: Path) -> List[Tuple[str, str]]:
    return [
        (path.name, hashlib.sha256(path.read_bytes()).hexdigest())
        for path in sorted(work_dir.glob("lute.db*"))
        if not path.name.endswith("-shm")  # the WAL index: shared memory readers map, never data
    ]


def run_pilot(work_dir: Path, body: Callable[[DbView, Any], Any], **options: Any) -> None:
    async def main() -> None:
        app = DbView(work_dir, **options)
        async with app.run_test(size=(180, 45)) as pilot:
            await pilot.pause()
            await body(app, pilot)

    asyncio.run(main())


def test_tabs_rows_statuses_detail_and_filter(real_db: Path) -> None:
    before = files_state(real_db)

    async def body(app: DbView, pilot: Any) -> None:
        tabs = app.query_one("#tabs", TabbedContent)
        panes = [pane.id for pane in tabs.query("TabPane")]
        assert panes == [f"tab-{t}" for t in ("Test", "TestReadOutput", "TestWriteOutput", "gen_cfg", "exec_cfg")]
        test = app.query_one("#table-Test", DataTable)
        assert [test.get_row_at(i)[0].plain for i in range(test.row_count)] == ["2", "1"]  # newest first
        statuses = [test.get_row_at(i)[2] for i in range(2)]
        assert [(s.plain, s.style) for s in statuses] == [("FAILED", "bold red"), ("COMPLETED", "green")]
        detail = text_of(app.query_one("#detail", Static).content)
        assert "Test #2" in detail
        for column in rows(real_db, "Test")[1]:
            assert column in detail, column  # every column of the row …
        assert "gen_cfg.experiment" in detail and "exec_cfg.env" in detail  # … and its header and environment
        assert "Testing Error!" in detail

        tabs.active = "tab-TestWriteOutput"
        await pilot.pause()
        written = app.query_one("#table-TestWriteOutput", DataTable)
        assert [written.get_row_at(i)[2].plain for i in range(written.row_count)] == ["LOST", "COMPLETED"]
        assert "TestWriteOutput #2" in text_of(app.query_one("#detail", Static).content)

        app.query_one("#filter", Input).value = "status:COMPLETED"
        await pilot.pause()
        assert app.query_one("#table-Test", DataTable).row_count == 1
        assert written.row_count == 1 and written.get_row_at(0)[0].plain == "1"
        app.query_one("#filter", Input).value = "lost.txt"
        await pilot.pause()
        assert written.row_count == 1 and written.get_row_at(0)[0].plain == "2"
        assert app.query_one("#table-Test", DataTable).row_count == 0
        await pilot.press("escape")

    run_pilot(real_db, body, poll_seconds=0)
    assert files_state(real_db) == before  # read, never written


def test_a_run_next_door_shows_up(
    real_db: Path, make_config: Callable[..., Path], cli_env: Dict[str, str], tmp_path: Path
) -> None:
    config = make_config({"TestSocket": {"num_arrays": 1, "array_size": 10}})

    async def body(app: DbView, pilot: Any) -> None:
        assert not app.query("#table-TestSocket")
        done = await asyncio.to_thread(
            run_cli, "run", "TestSocket", "-c", str(config), env=isolated_env(cli_env, tmp_path / "u")
        )
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 30
        while not app.query("#table-TestSocket"):  # the viewer stats the files every 50 ms
            assert time.monotonic() < deadline, "the new Task table never appeared"
            await pilot.pause(0.05)
        table = app.query_one("#table-TestSocket", DataTable)
        # The tab may first have shown the RUNNING row (read while the run ran): the commit that
        # completed it shows up within a few polls.
        while (table.row_count, table.get_row_at(0)[2].plain if table.row_count else None) != (1, "COMPLETED"):
            assert time.monotonic() < deadline, f"the run never showed COMPLETED: {table.get_row_at(0)}"
            await pilot.pause(0.05)
        assert app.reloads >= 1

    run_pilot(real_db, body, poll_seconds=0.05)


class FrozenClock:
    """Stands in for the viewer's ``time`` module: a wall clock the test moves by hand."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def time_ns(self) -> int:
        return self.now_ns


def test_a_commit_that_leaves_the_files_signature_as_it_was_still_shows(
    real_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File times move in clock ticks and a checkpoint rewrites pages in place: two commits can leave
    the same size and time. A read made while the files were that fresh is repeated once they are quiet."""
    import sqlite3

    import lute_kernel.cli.view as view
    import lute_kernel.db as db

    written_ns = time.time_ns()
    frozen = ((4096, written_ns), (0, 0))  # what stat says whatever is committed
    monkeypatch.setattr(db, "change_signature", lambda work_dir: frozen)
    clock = FrozenClock(written_ns + RACY_NS // 10)
    monkeypatch.setattr(view, "time", clock)

    def set_status(status: str) -> None:
        with sqlite3.connect(real_db / "lute.db") as con:
            con.execute('UPDATE Test SET "result.task_status" = ? WHERE id = 2', (status,))

    def shown(app: DbView) -> str:
        table = app.query_one("#table-Test", DataTable)
        return str(table.get_row_at(table.get_row_index("2"))[2].plain)

    async def body(app: DbView, pilot: Any) -> None:
        assert shown(app) == "FAILED"
        set_status("COMPLETED")
        await app.check_for_changes()  # the first read was racy: read again
        assert shown(app) == "COMPLETED"
        clock.now_ns = written_ns + 2 * RACY_NS
        set_status("FAILED")
        await app.check_for_changes()  # the read before was racy too: once more, now a settled one
        assert shown(app) == "FAILED"
        reloads = app.reloads
        await app.check_for_changes()  # settled and unchanged: nothing is read
        assert app.reloads == reloads

    run_pilot(real_db, body, poll_seconds=0)


@pytest.mark.parametrize("age_ns", [0, 1, RACY_NS - 1, RACY_NS, RACY_NS + 1, 10**12])
def test_a_read_is_racy_only_while_a_file_is_fresh(age_ns: int) -> None:
    now = 10**18
    assert is_racy(((1, now - age_ns), (0, 0)), now) == (age_ns < RACY_NS)
    assert is_racy(((1, now - 10**12), (7, now - age_ns)), now) == (age_ns < RACY_NS)
    assert not is_racy(None, now)


def test_a_writer_never_waits_for_the_viewer(real_db: Path) -> None:
    async def body(app: DbView, pilot: Any) -> None:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(real_db / "lute.db"), str(WRITES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        reloads = 0
        while writer.poll() is None:  # read as hard as the viewer can while the writer commits
            await app.reload()
            reloads += 1
        out, err = writer.communicate()
        assert writer.returncode == 0, err  # "database is locked" would have ended it at once
        assert out.strip() == "done" and reloads > 0
        await app.reload()
        assert app.query_one("#table-WriterProbe", DataTable).row_count == WRITES

    run_pilot(real_db, body, poll_seconds=0)


@pytest.fixture
def tmux(tmp_path: Path) -> str:
    """The socket of a tmux server of the test's own (in tmp_path: nothing left behind)."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is needed in CI (.ci/run installs it)")
        pytest.skip("tmux is not installed")
    return str(tmp_path / "tmux.sock")


def test_for_real_in_tmux(real_db: Path, tmux: str, cli_env: Dict[str, str], tmp_path: Path) -> None:
    env = dict(cli_env, PYTHONPATH=str(REPO), TERM="xterm-256color", COLORTERM="truecolor")
    argv = [sys.executable, "-m", "lute_kernel.cli", "db", "view", "-w", str(real_db)]
    start = ["tmux", "-S", tmux, "new-session", "-d", "-s", "view", "-x", "170", "-y", "34", *argv]
    subprocess.run(start, check=True, env=env, timeout=30)
    try:
        deadline = time.monotonic() + 60
        screen = ""
        while not all(text in screen for text in ("FAILED", "prov.kernel_version", "Quit")):  # table, detail, keys
            assert time.monotonic() < deadline, f"the viewer never showed the table:\n{screen}"
            time.sleep(0.1)  # tmux has no event to wait on: look at the pane again
            screen = capture(tmux)
        assert "Test" in screen and "TestWriteOutput" in screen and "FAILED" in screen and "COMPLETED" in screen
        assert "read-only" in screen
        styled = capture(tmux, "-e")
        (tmp_path / "db-view.ansi").write_text(styled)
        keep_png(styled, tmp_path)
        subprocess.run(["tmux", "-S", tmux, "send-keys", "-t", "view", "q"], check=True, timeout=30)
        deadline = time.monotonic() + 30
        while subprocess.run(["tmux", "-S", tmux, "has-session", "-t", "view"], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "q did not quit the viewer"
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "-S", tmux, "kill-server"], capture_output=True, timeout=30)


def capture(server: str, *options: str) -> str:
    done = subprocess.run(
        ["tmux", "-S", server, "capture-pane", "-p", *options, "-t", "view"], capture_output=True, text=True, timeout=30
    )
    return done.stdout


def keep_png(ansi: str, tmp_path: Path) -> None:
    """Render the captured screen (ANSI colours) to a PNG with chromium, for the README, when asked."""
    folder = os.environ.get("LUTE_SCREENSHOTS")
    from chromium import chromium_binary, screenshot_file

    if not folder or chromium_binary() is None:
        return
    from rich.text import Text

    console = Console(record=True, width=170, file=io.StringIO(), color_system="truecolor")
    console.print(Text.from_ansi(ansi), no_wrap=True, crop=True)
    html = tmp_path / "db-view.html"
    html.write_text(console.export_html(inline_styles=True, code_format=_PAGE))
    png = screenshot_file(html, tmp_path / "db-view.png", tmp_path / "profile", width=1360, height=580)
    Path(folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, Path(folder) / "db-view.png")


_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #1e1e1e; color: {foreground}; }}
pre {{ margin: 8px; font: 13px/1.2 "DejaVu Sans Mono", monospace; }}
pre span {{ display: inline-block; }}
</style></head><body><pre><code>{code}</code></pre></body></html>"""


def test_a_refresh_under_way_when_the_viewer_closes_ends_quietly(real_db: Path) -> None:
    async def main() -> None:
        app = DbView(real_db, poll_seconds=0)
        async with app.run_test(size=(180, 45)) as pilot:
            await pilot.pause()
        await app.check_for_changes()  # closed: a poll that fires now does nothing
        await app.reload()  # a refresh that was under way finds no widgets: it ends, no traceback

    asyncio.run(main())


_QUEUED = [  # every handler of the viewer, with the message it handles (only the fields it reads)
    ("on_data_table_row_highlighted", SimpleNamespace(data_table=SimpleNamespace(id="table-Test"), row_key="1")),
    ("on_tabbed_content_tab_activated", SimpleNamespace()),
    ("on_input_changed", SimpleNamespace(value="status:FAILED")),
    ("action_focus_filter", None),
    ("action_clear_filter", None),
    ("action_reload", None),
    ("check_for_changes", None),
    ("reload", None),
]


@pytest.mark.parametrize(("name", "message"), _QUEUED, ids=[name for name, _ in _QUEUED])
def test_a_message_handled_after_the_viewer_closed_ends_quietly(real_db: Path, name: str, message: Any) -> None:
    """Messages and timers still queued at close are handled with the widgets gone (seen in CI)."""

    async def main() -> None:
        app = DbView(real_db, poll_seconds=0)
        async with app.run_test(size=(180, 45)) as pilot:
            await pilot.pause()
        result = getattr(app, name)(*([] if message is None else [message]))
        if asyncio.iscoroutine(result):
            await result

    asyncio.run(main())


def test_a_missing_widget_while_shown_still_raises(real_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        app = DbView(real_db, poll_seconds=0)
        async with app.run_test(size=(180, 45)) as pilot:
            await pilot.pause()
            monkeypatch.setattr(app, "_tables", lambda: ["NoSuchTable"])
            with pytest.raises(NoMatches):
                app.on_input_changed(SimpleNamespace(value=""))  # type: ignore[arg-type]

    asyncio.run(main())
